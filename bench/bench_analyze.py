"""The whole job against the flow table alone, as a user runs them: `apnstrace analyze` (report,
charts, tables, summary) vs `apnstrace flows --format parquet` on the same capture, in one run.

    .venv/bin/python bench/bench_analyze.py [--pcap bench/out/engine_2m.pcap] [--repeat 2]

Both are run as the installed command (a fresh process each time, so imports and numba
compilation count for both), pinned to one core; the best of --repeat is compared.
Target (issue 6): analyze <= 1.5x flows.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
APNSTRACE = Path(sys.executable).with_name("apnstrace")


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(["taskset", "-c", "0", str(APNSTRACE), *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pcap", type=Path, default=OUT / "engine_2m.pcap")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    if not args.pcap.exists():
        raise SystemExit(f"{args.pcap} is missing: build it with bench/make_capture.py")
    work = Path(tempfile.mkdtemp(prefix="apnstrace-bench-"))
    try:
        flows, full = [], []
        for _ in range(args.repeat):
            flows.append(timed(["flows", str(args.pcap), "--format", "parquet", "-o", str(work / "flows.parquet")]))
            full.append(timed(["analyze", str(args.pcap), "-o", str(work / "report")]))
        written = sorted(str(p.relative_to(work / "report")) for p in (work / "report").rglob("*") if p.is_file())
        size = (work / "report" / "report.html").stat().st_size
    finally:
        shutil.rmtree(work, ignore_errors=True)
    f, a = min(flows), min(full)
    print(f"capture {args.pcap.name} ({args.pcap.stat().st_size / 1e6:,.0f} MB), pinned to core 0, best of {args.repeat}")
    print(f"apnstrace flows --format parquet   {f:7.2f} s")
    print(f"apnstrace analyze -o DIR           {a:7.2f} s   ({len(written)} files, report.html {size / 1e6:.1f} MB)")
    print(f"analyze / flows                    {a / f:7.2f} x   (target <= 1.5 x)")


if __name__ == "__main__":
    if not shutil.which("taskset"):
        raise SystemExit("taskset (util-linux) is needed to pin the runs to one core")
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
