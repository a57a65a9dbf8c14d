"""Flow table benchmark: FlowTable.add's time per file as open flows pile up.

  python bench/bench_table.py /tmp/fleet10g_rot20/*.pcap          # files read in name order
  python bench/bench_table.py --repeat 3 bench/out/engine_2m.pcap

One Session reads the files in name order (as rotated files of one capture); each file's line
gives the table's time on it, the open flows after it, and the whole step's time (decode,
table, metadata, activity). The table's time per file should not grow with the open flows.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from apnstrace.pipeline import Session  # noqa: E402
from apnstrace.reader import iter_batches  # noqa: E402


def run(paths: list[str], verbose: bool) -> tuple[float, float]:
    session = Session()
    spent = [0.0]
    add = session.table.add

    def timed_add(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return add(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - t0

    session.table.add = timed_add
    start = time.perf_counter()
    for path in paths:
        t0, before = time.perf_counter(), spent[0]
        for raw in iter_batches(path, session.stats, session.options.chunk_bytes, session.options.max_gzip_ratio):
            session.add(raw)
        if verbose:
            print(f"  {Path(path).name:40s} step {time.perf_counter() - t0:6.2f} s  table {spent[0] - before:5.2f} s"
                  f"  open flows {session.table.open_flows:,}", flush=True)
    session.finish()
    return spent[0], time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--repeat", type=int, default=1, help="runs (the first warms the kernel cache)")
    args = ap.parse_args(argv)
    paths = sorted(args.paths)
    for i in range(args.repeat):
        table_s, total_s = run(paths, verbose=i == args.repeat - 1)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        print(f"run {i + 1}: FlowTable.add {table_s:.2f} s of {total_s:.2f} s (with finish), peak RSS {rss} MB",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
