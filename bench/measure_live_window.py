"""What `live --keep-minutes` holds: a capture fed as a live Session, the report's result computed
every 5 minutes of capture time, with a window (flows older than it retired, as live/run.py
does at each report) or without. Prints what the session holds at the end, the result's time
and RSS (docs/live.md, "The window").

    .venv/bin/python bench/measure_live_window.py 600      # a 10-minute window
    .venv/bin/python bench/measure_live_window.py 0        # keep every flow
"""
from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from apnstrace.live.memory import release_unused
from apnstrace.options import FlowOptions
from apnstrace.pipeline import Session
from apnstrace.reader import iter_batches

OUT = Path(__file__).resolve().parent / "out"
EVERY_S = 300.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("keep_s", type=float, help="window in seconds of capture time; 0: keep all")
    parser.add_argument("--pcap", type=Path, default=OUT / "fleet_2m.pcap")
    args = parser.parse_args()
    session = Session(FlowOptions())
    next_at, retired, times = None, 0, []
    for raw in iter_batches(args.pcap, session.stats):
        session.add(raw)
        now = session.table.now
        next_at = now + EVERY_S if next_at is None else next_at
        if now < next_at:
            continue
        next_at += EVERY_S
        if args.keep_s:
            retired += len(session.retire_before(now - args.keep_s))
        start = time.perf_counter()
        result = session.snapshot()
        times.append(time.perf_counter() - start)
        reported = len(result.flows)
        del result
        release_unused()
    held = sum(len(p) for p in session.table.pieces) + session.table.open_flows
    rss = int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) // 1024
    print(f"keep={args.keep_s:.0f}s retired={retired} held_flows={held} "
          f"meta_rows={len(session.collector.table())} starts={len(session.activity.found.starts())} "
          f"flows_in_last_result={reported} result_s={[round(t, 2) for t in times]} rss_now={rss}MB "
          f"peak={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}MB")


if __name__ == "__main__":
    main()
