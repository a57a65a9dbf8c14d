#!/usr/bin/env python3
"""Engine benchmark: apnstrace vs dpkt, scapy, tshark and nfstream on the same capture.

Every tool does the same job -- read the capture and build bidirectional flows (unordered
protocol + endpoint pair) with packet and byte counts -- in its own subprocess. The parent
measures wall time around the subprocess (interpreter start, imports and JIT included: end to
end) and its peak RSS (os.wait4's ru_maxrss: the largest single process of the tool's process
tree), and also samples the summed RSS of the whole process tree (nfstream runs several
processes).

Usage:
  python bench/bench_engine.py                       # build bench/out/engine_2m.pcap if needed, run all
  python bench/bench_engine.py --packets 200000      # smaller capture (bench/out/engine_200k.pcap)
  python bench/bench_engine.py --only dpkt,tshark
  python bench/bench_engine.py --big                 # also a 5x capture, apnstrace only, memory
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out"
TOOLS = ("apnstrace", "dpkt", "scapy", "tshark", "nfstream")
SCAPY_SLICE = 50_000
PIN_CPU_DEFAULT = 0
ONE_THREAD_ENV = {k: "1" for k in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                   "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                                   "ARROW_NUM_THREADS", "POLARS_MAX_THREADS")}


# --------------------------------------------------------------------------- workers
# Each worker runs in its own process, prints one JSON line on stdout (last line) with
# frames read, flows, packets and bytes in flows, and the seconds spent in the job itself.

def _flow_add(flows: dict, proto: int, src: bytes, sport: int, dst: bytes, dport: int,
              wirelen: int) -> None:
    a, b = (src, sport), (dst, dport)
    key = (proto, a, b) if a <= b else (proto, b, a)
    f = flows.get(key)
    if f is None:
        flows[key] = [a, 1, 0, wirelen, 0]          # first sender, pkts fwd/rev, bytes fwd/rev
    elif f[0] == a:
        f[1] += 1
        f[3] += wirelen
    else:
        f[2] += 1
        f[4] += wirelen


def _flow_summary(flows: dict) -> dict:
    return {"flows": len(flows),
            "flow_pkts": sum(f[1] + f[2] for f in flows.values()),
            "flow_bytes": sum(f[3] + f[4] for f in flows.values())}


def work_dpkt(path: str, limit: int | None) -> dict:
    import dpkt

    t0 = time.perf_counter()
    flows: dict = {}
    frames = errors = 0
    Ethernet, IP, IP6, TCP, UDP = (dpkt.ethernet.Ethernet, dpkt.ip.IP, dpkt.ip6.IP6,
                                   dpkt.tcp.TCP, dpkt.udp.UDP)
    with open(path, "rb") as fh:
        reader = dpkt.pcap.Reader(fh)            # validates the global header
        if reader.datalink() != dpkt.pcap.DLT_EN10MB:
            raise SystemExit("dpkt worker handles Ethernet captures only")
        # dpkt.pcap.Reader yields (ts, buf) but not the original length, so walk the records
        # with dpkt's own record header class (the same thing Reader.__iter__ does).
        fh.seek(0)
        magic = fh.read(4)
        fh.seek(24)
        ph = dpkt.pcap.LEPktHdr if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else dpkt.pcap.PktHdr
        hlen = ph.__hdr_len__
        read = fh.read
        while True:
            if limit is not None and frames >= limit:
                break
            hb = read(hlen)
            if len(hb) < hlen:
                break
            hdr = ph(hb)
            buf = read(hdr.caplen)
            frames += 1
            try:
                ip = Ethernet(buf).data
            except (dpkt.UnpackError, struct.error, ValueError, IndexError):
                errors += 1
                continue
            if isinstance(ip, (IP, IP6)):
                l4 = ip.data
                if isinstance(l4, (TCP, UDP)):
                    _flow_add(flows, ip.p, ip.src, l4.sport,
                              ip.dst, l4.dport, hdr.len)
    res = {"frames": frames, "decode_errors": errors, **_flow_summary(flows)}
    res["work_s"] = time.perf_counter() - t0
    return res


def work_scapy(path: str, limit: int | None) -> dict:
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    from scapy.utils import RawPcapReader

    t0 = time.perf_counter()
    flows: dict = {}
    frames = errors = 0
    for buf, meta in RawPcapReader(path):
        if limit is not None and frames >= limit:
            break
        frames += 1
        try:
            pkt = Ether(buf)
        except Exception:  # noqa: BLE001 - scapy raises all sorts on junk
            errors += 1
            continue
        ip = pkt.getlayer(IP)
        if ip is None:
            ip = pkt.getlayer(IPv6)
        if ip is None:
            continue
        l4 = ip.payload
        if isinstance(l4, (TCP, UDP)):
            proto = ip.proto if isinstance(ip, IP) else ip.nh
            _flow_add(flows, proto, ip.src, l4.sport, ip.dst, l4.dport, meta.wirelen)
    res = {"frames": frames, "decode_errors": errors, **_flow_summary(flows)}
    res["work_s"] = time.perf_counter() - t0
    return res


def work_nfstream(path: str, limit: int | None, dissections: int, meters: int) -> dict:
    t0 = time.perf_counter()
    from nfstream import NFStreamer

    t1 = time.perf_counter()
    df = NFStreamer(source=path, statistical_analysis=False, n_dissections=dissections,
                    n_meters=meters).to_pandas()
    res = {"flows": int(len(df)),
           "flow_pkts": int(df["bidirectional_packets"].sum()) if len(df) else 0,
           "flow_bytes": int(df["bidirectional_bytes"].sum()) if len(df) else 0,
           "import_s": t1 - t0, "work_s": time.perf_counter() - t1}
    return res


def work_apnstrace(path: str, limit: int | None, cpu: int | None) -> dict:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    sys.path.insert(0, str(REPO / "src"))
    t0 = time.perf_counter()
    try:
        import apnstrace
        analyze = apnstrace.analyze
    except Exception as exc:  # noqa: BLE001 - report, don't crash the benchmark
        return {"error": f"import failed: {type(exc).__name__}: {exc}"}
    t1 = time.perf_counter()
    try:
        result = analyze([path])
        flows = result.flows
        res = {"flows": int(len(flows)),
               "flow_pkts": int(flows["pkts_c2s"].sum() + flows["pkts_s2c"].sum()),
               "flow_bytes": int(flows["bytes_c2s"].sum() + flows["bytes_s2c"].sum())}
    except Exception as exc:  # noqa: BLE001
        import traceback
        return {"error": f"analyze failed: {type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=8)}
    res["import_s"] = t1 - t0
    res["work_s"] = time.perf_counter() - t1
    res["affinity"] = sorted(os.sched_getaffinity(0))
    return res


def worker_main(args: argparse.Namespace) -> int:
    tool, path, limit = args.worker, args.pcap, args.limit
    if tool == "dpkt":
        res = work_dpkt(path, limit)
    elif tool == "scapy":
        res = work_scapy(path, limit)
    elif tool == "nfstream":
        res = work_nfstream(path, limit, args.nfstream_dissections, args.nfstream_meters)
    elif tool == "apnstrace":
        res = work_apnstrace(path, limit, None if args.no_pin else args.cpu)
    else:
        raise SystemExit(f"unknown worker {tool}")
    sys.stdout.write("\n" + json.dumps(res) + "\n")
    sys.stdout.flush()
    return 0


# --------------------------------------------------------------------------- measuring

class TreeRss(threading.Thread):
    """Samples the summed RSS of a process and all its descendants (from /proc).

    The descendant list is refreshed from a full /proc scan every `rescan` samples; in between
    only the known processes' statm files are read, to keep the sampler cheap.
    """

    def __init__(self, pid: int, interval: float = 0.05, rescan: int = 10) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.rescan, self.peak = pid, interval, rescan, 0
        self._halt = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def _descendants(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as fh:
                    stat = fh.read()
            except OSError:
                continue
            ppid = int(stat[stat.rfind(b")") + 2:].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
        out, todo = [], [self.pid]
        while todo:
            p = todo.pop()
            out.append(p)
            todo.extend(children.get(p, ()))
        return out

    def _rss(self, pids: list[int]) -> int:
        total = 0
        for p in pids:
            try:
                with open(f"/proc/{p}/statm", "rb") as fh:
                    total += int(fh.read().split()[1]) * self._page
            except (OSError, IndexError, ValueError):
                pass
        return total

    def run(self) -> None:
        pids: list[int] = [self.pid]
        n = 0
        while not self._halt.is_set():
            if n % self.rescan == 0:
                pids = self._descendants()
            n += 1
            self.peak = max(self.peak, self._rss(pids))
            self._halt.wait(self.interval)

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return self.peak


def measure(cmd: list[str], env: dict | None = None) -> dict:
    """Run cmd, return wall seconds, ru_maxrss (bytes), sampled tree RSS peak, exit, output."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        sampler = TreeRss(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        tree = sampler.stop()
        out.seek(0)
        err.seek(0)
        return {"wall_s": wall, "maxrss": usage.ru_maxrss * 1024, "tree_rss": tree,
                "rc": proc.returncode, "stdout": out.read().decode("utf-8", "replace"),
                "stderr": err.read().decode("utf-8", "replace")}


def run_worker(tool: str, pcap: Path, args: argparse.Namespace, limit: int | None = None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", tool, "--pcap", str(pcap),
           "--cpu", str(args.cpu), "--nfstream-dissections", str(args.nfstream_dissections),
           "--nfstream-meters", str(args.nfstream_meters)]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    if args.no_pin:
        cmd.append("--no-pin")
    env = dict(os.environ)
    if tool == "apnstrace":
        env.update(ONE_THREAD_ENV)
    if args.pin_all and tool != "apnstrace":
        cmd = ["taskset", "-c", str(args.cpu)] + cmd
    m = measure(cmd, env)
    res: dict = {"tool": tool}
    lines = [ln for ln in m["stdout"].splitlines() if ln.startswith("{")]
    if m["rc"] != 0 or not lines:
        tail = (m["stderr"].strip().splitlines() or ["(no output)"])[-1]
        res["error"] = f"exit {m['rc']}: {tail}"
    else:
        res.update(json.loads(lines[-1]))
    res.update(wall_s=m["wall_s"], maxrss=m["maxrss"], tree_rss=m["tree_rss"])
    return res


_SIZE = {"bytes": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}


def parse_tshark_conv(text: str) -> dict:
    """Sum the rows of tshark's -z conv tables. Byte columns are rounded by tshark (kB, MB)."""
    flows = pkts = 0
    nbytes = 0.0
    for line in text.splitlines():
        if "<->" not in line:
            continue
        tail = line.split("<->", 1)[1].split()[1:]      # drop endpoint B
        # frames, value, unit (<-), frames, value, unit (->), frames, value, unit (total), start, dur
        if len(tail) < 9:
            continue
        flows += 1
        pkts += int(tail[6].replace(",", ""))
        nbytes += float(tail[7].replace(",", "")) * _SIZE.get(tail[8], 1)
    return {"flows": flows, "flow_pkts": pkts, "flow_bytes": int(nbytes), "bytes_rounded": True}


def run_tshark(pcap: Path, args: argparse.Namespace) -> dict:
    exe = shutil.which("tshark")
    if not exe:
        return {"tool": "tshark", "error": "tshark not on PATH"}
    cmd = [exe, "-n", "-r", str(pcap), "-q", "-z", "conv,tcp", "-z", "conv,udp"]
    if args.pin_all:
        cmd = ["taskset", "-c", str(args.cpu)] + cmd
    m = measure(cmd)
    res: dict = {"tool": "tshark"}
    if m["rc"] != 0:
        tail = [ln for ln in m["stderr"].splitlines() if "dangerous" not in ln]
        res["error"] = f"exit {m['rc']}: {(tail or ['(no output)'])[-1]}"
    else:
        res.update(parse_tshark_conv(m["stdout"]))
    res.update(wall_s=m["wall_s"], maxrss=m["maxrss"], tree_rss=m["tree_rss"])
    return res


# --------------------------------------------------------------------------- capture

def label(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def count_frames(pcap: Path) -> int:
    """Frames in a classic pcap (header walk; cached next to the file)."""
    st = pcap.stat()
    side = pcap.with_name(pcap.name + ".count.json")
    try:
        c = json.loads(side.read_text())
        if c["size"] == st.st_size and c["mtime"] == st.st_mtime:
            return int(c["frames"])
    except (OSError, ValueError, KeyError):
        pass
    n = 0
    with open(pcap, "rb", buffering=1 << 20) as fh:
        gh = fh.read(24)
        endian = "<" if gh[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        rec = struct.Struct(endian + "8xI4x")
        while True:
            hb = fh.read(16)
            if len(hb) < 16:
                break
            fh.seek(rec.unpack(hb)[0], 1)
            n += 1
    try:
        side.write_text(json.dumps({"size": st.st_size, "mtime": st.st_mtime, "frames": n}))
    except OSError:
        pass
    return n


def ensure_capture(path: Path | None, packets: int) -> Path:
    if path is None:
        path = OUT / f"engine_{label(packets)}.pcap"
    if path.exists():
        return path
    sys.path.insert(0, str(HERE))
    import make_capture
    print(f"building {path} ({packets:,} packets) ...", flush=True)
    make_capture.build(packets, path, make_capture.DEFAULT_CORPUS, 60.0)
    return path


# --------------------------------------------------------------------------- report

def fmt_table(rows: list[dict], frames: int, ref_pps: float | None) -> str:
    head = ["tool", "packets", "flows", "pkts in flows", "seconds", "packets/s", "peak MB",
            "tree MB", "apnstrace x"]
    out = [head]
    for r in rows:
        if "error" in r:
            out.append([r["tool"], "-", "-", "-", f"{r.get('wall_s', 0):.2f}", "-", "-", "-",
                        "error*"])
            continue
        n = r.get("frames", frames)
        secs = r["wall_s"]
        pps = r.get("pps", n / secs if secs else 0.0)
        ratio = f"{ref_pps / pps:.1f}x" if ref_pps and pps and r["tool"] != "apnstrace" else "-"
        out.append([r["tool"] + r.get("note", ""), f"{n:,}", f"{r['flows']:,}",
                    f"{r['flow_pkts']:,}", f"{secs:.2f}", f"{pps:,.0f}",
                    f"{r['maxrss'] / 2**20:,.0f}", f"{r['tree_rss'] / 2**20:,.0f}", ratio])
    widths = [max(len(str(row[i])) for row in out) for i in range(len(head))]
    lines = []
    for j, row in enumerate(out):
        cells = [str(c).ljust(widths[i]) if i == 0 else str(c).rjust(widths[i])
                 for i, c in enumerate(row)]
        lines.append("  ".join(cells))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        if "error" in r:
            lines.append(f"* {r['tool']} FAILED: {r['error']}")
            if r.get("traceback"):
                lines.extend("    " + ln for ln in r["traceback"].rstrip().splitlines())
    return "\n".join(lines)


def bench(pcap: Path, tools: list[str], args: argparse.Namespace) -> list[dict]:
    frames = count_frames(pcap)
    size = pcap.stat().st_size
    print(f"\ncapture: {pcap} -- {frames:,} frames, {size / 1e6:,.1f} MB; "
          f"{os.cpu_count()} CPUs; python {sys.version.split()[0]}", flush=True)
    rows = []
    for tool in tools:
        print(f"  running {tool} ...", end="", flush=True)
        if tool == "tshark":
            r = run_tshark(pcap, args)
            r["frames"] = frames
        elif tool == "scapy":
            n = min(args.scapy_slice, frames)
            r = run_worker("scapy", pcap, args, limit=n)
            if "error" not in r:
                # extrapolate from the slice; wall time includes start-up, so use it for pps
                r["pps"] = r["frames"] / r["wall_s"]
                r["note"] = f" (first {n:,})"
        else:
            r = run_worker(tool, pcap, args)
            r.setdefault("frames", frames)
        print(f" {r['wall_s']:.1f} s" + (f"  [{r['error']}]" if "error" in r else ""), flush=True)
        rows.append(r)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=2_000_000,
                    help="capture size; uses/builds bench/out/engine_<N>.pcap (default 2,000,000)")
    ap.add_argument("--pcap", type=Path, default=None, help="use this capture instead")
    ap.add_argument("--only", default=",".join(TOOLS), help=f"comma list of {','.join(TOOLS)}")
    ap.add_argument("--big", action="store_true",
                    help="also build and run a 5x capture, apnstrace only (peak memory)")
    ap.add_argument("--scapy-slice", type=int, default=SCAPY_SLICE)
    ap.add_argument("--cpu", type=int, default=PIN_CPU_DEFAULT, help="core apnstrace is pinned to")
    ap.add_argument("--no-pin", action="store_true", help="do not pin apnstrace to one core")
    ap.add_argument("--pin-all", action="store_true", help="also pin every peer to --cpu (taskset)")
    ap.add_argument("--nfstream-dissections", type=int, default=0,
                    help="nfstream n_dissections (0: no nDPI, the same job as the others; its default is 20)")
    ap.add_argument("--nfstream-meters", type=int, default=1,
                    help="nfstream n_meters (default 1 metering process; nfstream's own default 0 = one per core)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--worker", choices=TOOLS, help=argparse.SUPPRESS)
    ap.add_argument("--limit", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        if args.pcap is None:
            ap.error("--worker needs --pcap")
        args.pcap = str(args.pcap)
        return worker_main(args)

    tools = [t.strip() for t in args.only.split(",") if t.strip()]
    bad = [t for t in tools if t not in TOOLS]
    if bad:
        ap.error(f"unknown tool(s) {bad}; choose from {','.join(TOOLS)}")
    pcap = ensure_capture(args.pcap, args.packets)
    rows = bench(pcap, tools, args)
    frames = count_frames(pcap)
    ref = next((r for r in rows if r["tool"] == "apnstrace" and "error" not in r), None)
    ref_pps = ref["frames"] / ref["wall_s"] if ref else None
    print()
    print(fmt_table(rows, frames, ref_pps))
    print()
    print("notes:")
    print("  packets/s = frames in the capture / wall seconds of the tool's subprocess, end to end"
          " (interpreter start, imports, JIT and output included); 'pkts in flows' = TCP/UDP frames"
          " the tool put in a flow.")
    print("  peak MB = ru_maxrss of the largest process (os.wait4); tree MB = sampled peak of the"
          " summed RSS of the tool's whole process tree (every 50 ms).")
    pin = "not pinned (--no-pin)" if args.no_pin else f"pinned to CPU {args.cpu} (os.sched_setaffinity) with numba/BLAS/arrow threads = 1"
    print(f"  apnstrace: apnstrace.analyze([path]).flows, default engine, {pin}.")
    if ref is None and "apnstrace" in tools:
        print("  apnstrace: NOT MEASURED -- " + next(r for r in rows if r["tool"] == "apnstrace")["error"]
              + "; the 'apnstrace x' column (apnstrace packets/s / peer packets/s) is empty.")
    elif ref is not None:
        target = "MET" if ref_pps >= 1_000_000 else "NOT met"
        print(f"  target >= 1,000,000 packets/s end to end on one core: {target} ({ref_pps:,.0f}/s;"
              f" import {ref.get('import_s', 0):.2f} s, analyze {ref.get('work_s', 0):.2f} s;"
              f" CPU affinity seen by the worker: {ref.get('affinity')}).")
    print("  dpkt, scapy: per-packet Python loop, Ethernet(+802.1Q) -> IP/IP6 -> TCP/UDP, dict of"
          " flows keyed by protocol + unordered endpoint pair, no timeouts; bytes = pcap orig_len.")
    print(f"  scapy: RawPcapReader + Ether() on the first {args.scapy_slice:,} frames only;"
          " packets/s extrapolated from that slice (start-up included), memory not comparable.")
    print("  tshark: tshark -n -r F -q -z conv,tcp -z conv,udp (full dissection, single pass);"
          " its byte columns are rounded (kB/MB), so its byte total is approximate; TCP"
          " conversations follow tcp.stream (split on port reuse).")
    print(f"  nfstream: NFStreamer(source=F, statistical_analysis=False, n_dissections="
          f"{args.nfstream_dissections}, n_meters={args.nfstream_meters}).to_pandas(); its defaults"
          " also apply: idle_timeout=120 s, active_timeout=1800 s (flows split on those),"
          " decode_tunnels=True (inner headers), accounting_mode=0 (link-layer bytes); it runs a"
          " reader and meter processes (see tree MB).")
    print("  capture: bench/make_capture.py replicates the corpus's Ethernet pcaps with per-copy"
          " shifted timestamps and remapped IPv4/IPv6 addresses; gaps clamped to 60 s, so no"
          " tool's idle timeout splits a flow on time.")

    results = {"capture": str(pcap), "frames": frames, "rows": rows}
    if args.big:
        big_n = 5 * frames
        big = ensure_capture(OUT / f"engine_{label(big_n)}.pcap", big_n)
        big_rows = bench(big, ["apnstrace"], args)
        r = big_rows[0]
        print()
        print(fmt_table(big_rows, count_frames(big), None))
        if "error" not in r:
            at1 = f" vs {ref['maxrss'] / 2**20:,.0f} MB at 1x" if ref else ""
            print(f"\n  5x capture: peak RSS {r['maxrss'] / 2**20:,.0f} MB"
                  f" (tree {r['tree_rss'] / 2**20:,.0f} MB){at1}")
            ok = max(r["maxrss"], r["tree_rss"]) / 2**20 < 1024
            print(f"  target peak memory < 1 GB regardless of capture size: {'MET' if ok else 'NOT met'}")
        results["big"] = {"capture": str(big), "rows": big_rows}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
