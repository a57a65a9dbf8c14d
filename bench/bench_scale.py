#!/usr/bin/env python3
"""Scale benchmark (issue 8): one capture vs the same capture rotated into files.

    python bench/bench_scale.py [--capture bench/out/engine_2m.pcap] [--files 20] [--modes single,workers,dask]

Cuts the capture into --files rotated files with `editcap -c` (in --split-dir), then runs:
  single   analyze() of the whole capture in this process (the reference)
  workers  analyze(parts, workers=N)   (N = --workers, default 2)
  dask     analyze(parts, dask="local", workers=N)
  ceiling  N independent processes at once, each analyze() of one contiguous slice of the files
           (balanced by bytes), no merge: what this machine gives two processes that share
           nothing but the hardware. Not a result (nothing is merged; no identical check), the
           bound any split of the work can reach here: the speedup of a free, perfect merge.
  bound    analyze(parts, workers=N) with the boundary work switched off: workers keep no
           packets and spill nothing, the merge replays no key. Not a result either (flows
           crossing files come out split), the speed of the per-file design if continuing a
           flow across files cost nothing: what any cheaper boundary merge can reach at most.
and prints, per mode, wall time, packets/s, packets/s per core, peak memory of the process
tree (sampled: the sum of RSS every 50 ms, which counts pages a forked worker shares with its
parent once per process, and the sum of USS, each page once, every second), CPU seconds of the process tree (cpu_s; sys_s its system share) (wall time on
a shared machine depends on the other load; the 1-minute load average before and after is
printed with each row), and whether flows, sequences, blocked, timing and courier equal the
reference's (every column, every row, flow_id order included).

Each mode runs in a fresh Python process (this script with --one), so no mode inherits the
memory of another; results come back as a pickle for the comparison. Compiled kernels are
cached on disk (numba), so before the timed modes one fresh process analyzes the first
rotated file: after a code change its first run compiles every kernel (about 20 s on this
2-core machine), which would otherwise be charged to whichever mode runs first. That
process's time is printed as the "warm-up" row (a cold cache's cost when it compiled).
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
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
    """Peak memory of a process plus its children: the sum of RSS every 50 ms, the sum of USS
    every second (USS reads /proc/PID/smaps, which costs enough CPU to slow the run if done
    as often: the USS peak may be missed by up to a second)."""

    def __init__(self, *pids: int) -> None:
        self.peak = self.peak_uss = 0
        self._roots = [psutil.Process(pid) for pid in pids] or [psutil.Process()]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        tick = 0
        while not self._stop.is_set():
            rss = uss = 0
            try:
                for proc in [p for root in self._roots for p in [root] + root.children(recursive=True)]:
                    if tick % 20 == 0:
                        info = proc.memory_full_info()
                        rss, uss = rss + info.rss, uss + info.uss
                    else:
                        rss += proc.memory_info().rss
            except psutil.Error:
                pass
            self.peak, self.peak_uss = max(self.peak, rss), max(self.peak_uss, uss)
            tick += 1
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


def run(mode: str, parts: list[Path], capture: Path | None, args) -> tuple[apnstrace.Result, dict]:
    """One mode in a fresh process (this script with --one): its result and figures."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.pickle"
        cmd = [sys.executable, __file__, "--one", mode, "--out", str(out), "--workers", str(args.workers),
               *map(str, [capture] if capture else parts)]
        load = os.getloadavg()[0]
        start = time.perf_counter()
        child = subprocess.Popen(cmd)
        with PeakRss(child.pid) as mem:
            child.wait()
        wall = time.perf_counter() - start
        if child.returncode:
            raise SystemExit(f"{mode} failed ({child.returncode})")
        with open(out, "rb") as f:
            result, inner_wall, (cpu, system) = pickle.load(f)
    return result, {"wall_s": round(inner_wall, 2), "process_wall_s": round(wall, 2), "cpu_s": round(cpu, 1),
                    "sys_s": round(system, 1),
                    "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2),
                    "peak_rss_mb": round(mem.peak / 2**20), "peak_uss_mb": round(mem.peak_uss / 2**20)}


def run_ceiling(parts: list[Path], args) -> tuple[list[apnstrace.Result], dict]:
    """--modes ceiling: --workers fresh processes at once, each over its own slice of the files."""
    slices = contiguous_slices(parts, args.workers)
    with tempfile.TemporaryDirectory() as tmp:
        outs = [Path(tmp) / f"slice{i}.pickle" for i in range(len(slices))]
        load = os.getloadavg()[0]
        start = time.perf_counter()
        children = [subprocess.Popen([sys.executable, __file__, "--one", "single", "--out", str(out), *map(str, chunk)])
                    for out, chunk in zip(outs, slices)]
        with PeakRss(*(c.pid for c in children)) as mem:
            for child in children:
                child.wait()
        wall = time.perf_counter() - start
        if any(c.returncode for c in children):
            raise SystemExit("ceiling: a slice failed")
        loaded = [pickle.load(open(out, "rb")) for out in outs]
    return [r for r, _, _ in loaded], {
        "wall_s": round(max(w for _, w, _ in loaded), 2), "process_wall_s": round(wall, 2),
        "cpu_s": round(sum(c for _, _, (c, _) in loaded), 1), "sys_s": round(sum(s for _, _, (_, s) in loaded), 1),
        "slice_wall_s": [round(w, 2) for _, w, _ in loaded],
        "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2),
        "peak_rss_mb": round(mem.peak / 2**20), "peak_uss_mb": round(mem.peak_uss / 2**20)}


def contiguous_slices(parts: list[Path], n: int) -> list[list[Path]]:
    """The files cut into n contiguous runs of about equal bytes (each cut where the running
    total comes nearest to k/n of all bytes)."""
    import numpy as np
    ends = np.cumsum([p.stat().st_size for p in parts])
    cuts = [0] + [int(np.argmin(np.abs(ends - ends[-1] * k / n))) + 1 for k in range(1, n)] + [len(parts)]
    return [parts[a:b] for a, b in zip(cuts, cuts[1:]) if b > a]


def free_boundaries() -> None:
    """--modes bound: the per-file design without its boundary work (see the module doc). Set
    before the pool forks, so the workers run it too."""
    import numpy as np
    from apnstrace.scale import merge, partial
    partial._Keep.add = lambda self, *a, **k: None
    partial._Keep.joined = lambda self: {}
    merge.replay_plan = lambda summaries, options: ([np.empty(0, np.uint64) for _ in summaries],) * 2
    merge._check_clock = lambda parts, options: None
    merge._read_stepped_back_files_again = lambda *a, **k: None


def one(mode: str, paths: list[str], workers: int, out: str) -> None:
    """--one: analyze in this fresh process; pickle the result, wall time and CPU seconds
    (all, and the system's share)."""
    kwargs = {"workers": 1} if mode == "single" else {"workers": workers}
    if mode == "bound":
        free_boundaries()
    if mode == "dask":
        kwargs["dask"] = "local"
    start, (cpu, system) = time.perf_counter(), _cpu_seconds()
    result = apnstrace.analyze(paths, **kwargs)
    wall, (cpu_end, system_end) = time.perf_counter() - start, _cpu_seconds()
    with open(out, "wb") as f:
        pickle.dump((result, wall, (cpu_end - cpu, system_end - system)), f)


def warm_up(part: Path) -> None:
    """Fill the on-disk kernel cache (one fresh process over one file) before any timed mode."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import sys, apnstrace; apnstrace.analyze(sys.argv[1], workers=1)",
                    str(part)], check=True, env={**os.environ, "PYTHONPATH": str(HERE.parent / "src")})
    print(json.dumps({"mode": "warm-up", "file": part.name, "wall_s": round(time.perf_counter() - start, 2)}),
          flush=True)


def _cpu_seconds() -> tuple[float, float]:
    """CPU time of this process and of its finished children: user + system, and system alone
    (page faults: zeroing fresh memory and mapping file pages are much of a parallel run's extra
    CPU on a VM)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    system = me.ru_stime + kids.ru_stime
    return me.ru_utime + kids.ru_utime + system, system


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
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        one(args.one, args.paths, args.workers, args.out)
        return
    folder = args.split_dir or args.capture.with_name(args.capture.stem + f"_rot{args.files}")
    parts = split(args.capture, args.files, folder)
    warm_up(parts[0])
    ref, rows = None, []
    for mode in args.modes.split(","):
        if mode not in ("single", "workers", "dask", "ceiling", "bound"):
            raise SystemExit(f"unknown mode {mode}")
        whole = mode == "single" and not args.single_on_parts
        if mode == "ceiling":
            slices, figures = run_ceiling(parts, args)
            packets, flows, sequences = (sum(getattr(r, "stats").records for r in slices),
                                         sum(len(r.flows) for r in slices), sum(len(r.sequences) for r in slices))
        else:
            res, figures = run(mode, parts, args.capture if whole else None, args)
            packets, flows, sequences = res.stats.records, len(res.flows), len(res.sequences)
        cores = 1 if mode == "single" else args.workers
        row = {"mode": mode, "files": 1 if whole else len(parts), **figures, "packets": packets,
               "pkts_per_s": round(packets / figures["wall_s"]),
               "pkts_per_s_per_core": round(packets / figures["wall_s"] / cores),
               "pkts_per_cpu_s": round(packets / figures["cpu_s"]) if figures["cpu_s"] else None,
               "flows": flows, "sequences": sequences}
        if mode in ("ceiling", "bound"):
            row["speedup"] = round(ref_wall / figures["wall_s"], 2) if ref is not None else None
            rows.append(row)
            print(json.dumps(row), flush=True)
            continue
        if ref is None:
            ref, ref_wall = res, figures["wall_s"]
        else:
            row["identical"] = same(ref, res)
            row["speedup"] = round(ref_wall / figures["wall_s"], 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
        del res
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
