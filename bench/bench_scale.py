#!/usr/bin/env python3
"""Scale benchmark (issue 8): one capture vs the same capture rotated into files.

    python bench/bench_scale.py [--capture bench/out/engine_2m.pcap] [--files 20] [--modes single,workers,dask]

Cuts the capture into --files rotated files with `editcap -c` (in --split-dir), then runs:
  single   analyze() of the whole capture in this process (the reference)
  workers  analyze(parts, workers=N)   (N = --workers, default 2)
  dask     analyze(parts, dask="local", workers=N)
and prints, per mode, wall time, packets/s, packets/s per core, peak RSS of the process tree
(sampled), CPU seconds of the process tree (wall time on a shared machine depends on the other
load; the 1-minute load average is printed with each row), and whether flows, sequences, blocked, timing and courier equal the reference's
(every column, every row, flow_id order included).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

import apnstrace  # noqa: E402

TABLES = ("flows", "sequences", "blocked", "timing", "courier")


class PeakRss:
    """Peak resident memory of this process plus its children, sampled every 50 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            try:
                total = me.memory_info().rss + sum(c.memory_info().rss for c in me.children(recursive=True))
            except psutil.Error:
                total = 0
            self.peak = max(self.peak, total)
            time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def split(capture: Path, files: int, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    parts = sorted(folder.glob("part_*.pcap"))
    if len(parts) == files:
        return parts
    for old in parts:
        old.unlink()
    count = int(subprocess.run(["capinfos", "-c", "-M", "-T", "-r", str(capture)], capture_output=True,
                               text=True, check=True).stdout.split()[-1])
    per = -(-count // files)
    subprocess.run(["editcap", "-c", str(per), str(capture), str(folder / "part.pcap")], check=True)
    return sorted(folder.glob("part_*.pcap"))


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (user + system)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run(label: str, paths, **kwargs):
    with PeakRss() as rss:
        start, cpu = time.perf_counter(), cpu_seconds()
        result = apnstrace.analyze(paths, **kwargs)
        wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    return result, wall, cpu, rss.peak


def same(a, b) -> dict[str, bool]:
    out = {}
    for name in TABLES:
        try:
            pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
            out[name] = True
        except AssertionError:
            out[name] = False
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--capture", type=Path, default=HERE / "out" / "engine_2m.pcap")
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--split-dir", type=Path, default=None)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--modes", default="single,workers,dask")
    ap.add_argument("--single-on-parts", action="store_true",
                    help="reference: one process over the rotated files (not the whole capture)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    folder = args.split_dir or args.capture.with_name(args.capture.stem + f"_rot{args.files}")
    parts = split(args.capture, args.files, folder)
    modes = args.modes.split(",")
    ref, rows = None, []
    for mode in modes:
        if mode == "single":
            res, wall, cpu, peak = run(mode, parts if args.single_on_parts else [args.capture], workers=1)
            cores = 1
        elif mode == "workers":
            res, wall, cpu, peak = run(mode, parts, workers=args.workers)
            cores = args.workers
        elif mode == "dask":
            res, wall, cpu, peak = run(mode, parts, workers=args.workers, dask="local")
            cores = args.workers
        else:
            raise SystemExit(f"unknown mode {mode}")
        packets = res.stats.records
        row = {"mode": mode, "files": 1 if mode == "single" and not args.single_on_parts else len(parts),
               "wall_s": round(wall, 2), "packets": packets, "pkts_per_s": round(packets / wall),
               "pkts_per_s_per_core": round(packets / wall / cores), "cpu_s": round(cpu, 1),
               "pkts_per_cpu_s": round(packets / cpu) if cpu else None, "load_avg_1m": os.getloadavg()[0],
               "peak_rss_mb": round(peak / 2**20),
               "flows": len(res.flows), "sequences": len(res.sequences)}
        if ref is None:
            ref, ref_wall = res, wall
        else:
            row["identical"] = same(ref, res)
            row["speedup"] = round(ref_wall / wall, 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
        del res
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
