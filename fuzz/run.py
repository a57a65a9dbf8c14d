#!/usr/bin/env python3
"""Run fuzz targets one after another, each for a bounded time; report executions and findings.

  python fuzz/run.py                       # every target, FUZZ_SECONDS (default 60) each
  python fuzz/run.py reader tls --seconds 1800

Each target runs as `python fuzz/fuzz_<target>.py` (libFuzzer through atheris) on its working
corpus fuzz/out/<target>/corpus and seeds fuzz/out/<target>/seeds (fuzz/seeds.py makes them),
with a 10 s limit per input (a hang) and 3 GB of memory. Output goes to fuzz/out/<target>/log.txt;
a crash or hang leaves its input as fuzz/out/<target>/crash-* / timeout-* / oom-*. Exit status 1
when any target found something.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from common import HERE, OUT, TARGETS


def run(target: str, seconds: int) -> dict:
    work = OUT / target
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "seeds").is_dir():
        subprocess.run([sys.executable, str(HERE / "seeds.py")], check=True)
    before = set(work.glob("crash-*")) | set(work.glob("timeout-*")) | set(work.glob("oom-*"))
    log = work / "log.txt"
    began = time.monotonic()
    with open(log, "w") as out:
        code = subprocess.run([sys.executable, str(HERE / f"fuzz_{target}.py"), f"-max_total_time={seconds}",
                               "-timeout=10", "-rss_limit_mb=3072", "-print_final_stats=1"],
                              cwd=HERE, stdout=out, stderr=subprocess.STDOUT).returncode
    text = log.read_text(errors="replace")
    execs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", text)
    cov = re.findall(r"DONE\s+cov: (\d+)", text) or re.findall(r"cov: (\d+)", text)
    found = sorted((set(work.glob("crash-*")) | set(work.glob("timeout-*")) | set(work.glob("oom-*"))) - before)
    return {"target": target, "seconds": round(time.monotonic() - began), "exit": code,
            "executions": int(execs[-1]) if execs else None, "coverage": int(cov[-1]) if cov else None,
            "findings": [str(p.relative_to(HERE.parent)) for p in found]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", default=list(TARGETS), choices=TARGETS)
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", 60)))
    args = parser.parse_args()
    bad = False
    for target in args.targets or TARGETS:
        got = run(target, args.seconds)
        bad |= bool(got["findings"]) or got["exit"] != 0
        print(f"{got['target']}: {got['seconds']} s, {got['executions']} inputs, coverage {got['coverage']}, "
              f"exit {got['exit']}, findings {got['findings'] or 'none'}", flush=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
