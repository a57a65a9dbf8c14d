"""How much sequence building adds: the fleet capture through (a) the flow engine alone, (b) the
full analyze() without sequences and (c) the full analyze() with them, in one run, same process,
pinned to one core, best of --repeat.

    .venv/bin/python bench/bench_sequences.py [--pcap bench/out/fleet_2m.pcap] [--repeat 3] [--cpu 0]

Target (acceptance of the sequences feature): (c) - (b) <= 15 % of (a).
Builds the capture with bench/make_fleet_capture.py when it is missing; compares what was found
with what the generator planned (the .json beside the capture).
"""
from __future__ import annotations

import os

# one thread everywhere, before numpy / numba / pyarrow are imported
for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
             "NUMEXPR_NUM_THREADS", "ARROW_NUM_THREADS", "POLARS_MAX_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import gc  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import apnstrace  # noqa: E402
from apnstrace.decode import decode_chunk  # noqa: E402
from apnstrace.flows import FlowTable  # noqa: E402
from apnstrace.options import FlowOptions  # noqa: E402
from apnstrace.reader import iter_batches  # noqa: E402
from apnstrace.stats import RunStats  # noqa: E402

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
MDM_HOST = "mdm.example.com:8443"


def engine_only(path: Path) -> tuple[float, int]:
    """(a) read + decode + flow table, nothing else (as bench_classify.engine_only)."""
    start = time.perf_counter()
    stats, table = RunStats(), FlowTable(FlowOptions())
    for raw in iter_batches(path, stats):
        packets, _ = decode_chunk(raw, stats)
        table.add(packets)
    flows = table.finish()
    return time.perf_counter() - start, len(flows)


def can_switch_off() -> bool:
    return "sequences" in inspect.signature(apnstrace.analyze).parameters


def full(path: Path, site: apnstrace.Site, sequences: bool | None):
    """(b) sequences=False / (c) sequences=True; None: analyze() as it is (no switch yet)."""
    kwargs = {} if sequences is None else {"sequences": sequences}
    gc.collect()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = apnstrace.analyze(path, site=site, **kwargs)
    return time.perf_counter() - start, result


def found(result, plan: dict) -> list[str]:
    flows = result.flows
    lines = []
    courier = flows[flows["service"] == "apns-courier"]
    mdm = flows[flows["category"] == "mdm"]
    lines.append(f"flows: {len(flows):,}; courier flows {len(courier):,} "
                 f"(devices {courier['client_ip'].nunique():,}, planned {plan.get('devices', '?'):,}); "
                 f"mdm flows {len(mdm):,} (planned check-ins {plan.get('checkins', '?'):,})")
    seq = getattr(result, "sequences", None)
    if seq is None:
        lines.append("sequences: result.sequences does not exist yet")
        return lines
    outcome = seq["outcome"].astype("string")
    pushes = int(seq["push_ts"].notna().sum())
    checked = int((outcome == "checked_in").sum())
    fu = seq["followups"].astype("string").fillna("")
    with_fu = fu[fu != ""]
    lines.append(f"sequences: {len(seq):,} rows, devices {seq['device_ip'].nunique():,}; "
                 f"outcomes {dict(outcome.value_counts())}")
    lines.append(f"pushes     found {pushes:>7,}   planned {plan.get('pushes', 0):>7,}")
    lines.append(f"check-ins  found {checked:>7,}   planned {plan.get('checkins', 0):>7,}")
    lines.append(f"follow-ups found {int(with_fu.str.contains('sus').sum()):>7,} sus, "
                 f"{int(with_fu.str.contains('file_share').sum()):,} file_share   planned "
                 f"{plan.get('followups_swcdn', 0):,} swcdn, {plan.get('followups_smb', 0):,} smb "
                 f"(a device's follow-ups can land in one row)")
    if "provider_ts" in seq:
        lines.append(f"provider   found {int(seq['provider_ts'].notna().sum()):>7,}   planned "
                     f"{plan.get('provider_requests', 0):>7,}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pcap", type=Path, default=OUT / "fleet_2m.pcap")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cpu", type=int, default=0, help="core to pin to (default 0)")
    parser.add_argument("--engine-only", action="store_true", help="run (a) only")
    args = parser.parse_args()
    if not args.pcap.exists():
        if args.pcap != OUT / "fleet_2m.pcap":
            raise SystemExit(f"{args.pcap} is missing: build it with bench/make_fleet_capture.py --out ...")
        sys.path.insert(0, str(HERE))
        import make_fleet_capture
        make_fleet_capture.build(2_000_000, 5_000, args.pcap, 20240501, 3600)
    summary = args.pcap.with_suffix(".json")
    info = json.loads(summary.read_text()) if summary.exists() else {}
    plan = dict(info.get("planned", {}), devices=info.get("devices", 0))
    os.sched_setaffinity(0, {args.cpu})
    site = apnstrace.Site(mdm_hosts=[MDM_HOST])
    switch = can_switch_off()

    engine_only(args.pcap)                       # warm the page cache and the JIT
    if not args.engine_only:
        full(args.pcap, site, False if switch else None)
    base, without, with_ = [], [], []
    result = None
    for _ in range(args.repeat):
        seconds, flows = engine_only(args.pcap)
        base.append(seconds)
        if args.engine_only:
            continue
        if switch:
            without.append(full(args.pcap, site, False)[0])
            seconds, result = full(args.pcap, site, True)
            with_.append(seconds)
        else:
            seconds, result = full(args.pcap, site, None)
            without.append(seconds)

    packets = info.get("packets", 0)
    a = min(base)
    print(f"capture {args.pcap.name}: {packets:,} packets, {plan.get('devices', 0):,} devices, "
          f"{flows:,} flows; pinned to core {args.cpu}, best of {args.repeat}")
    print(f"(a) engine only                      {a:7.2f} s   ({packets / a / 1e6:.2f} M packets/s)")
    if args.engine_only:
        return
    b = min(without)
    if switch:
        c = min(with_)
        print(f"(b) analyze(sequences=False)         {b:7.2f} s")
        print(f"(c) analyze() with sequences         {c:7.2f} s")
        print(f"sequence building adds {100 * (c - b) / a:5.1f} % to the engine's time (target <= 15 %)   "
              f"[((c) - (b)) / (a)]")
    else:
        seq = "with" if hasattr(result, "sequences") else "without"
        print(f"(b) analyze() as it is ({seq} sequences: no sequences= switch yet)  {b:7.2f} s")
        print("(c) not run: apnstrace.analyze() has no sequences= parameter yet, so sequence building "
              "cannot be measured")
        print(f"    the rest of analyze() adds {100 * (b - a) / a:5.1f} % to the engine's time")
    for line in found(result, plan):
        print(line)


if __name__ == "__main__":
    main()
