"""Sustained live load: tcpreplay replays corpus captures into a veth at a fixed packet rate
for 60 s while `apnstrace live` captures on its peer; the highest rate with zero drops, and
apnstrace's memory over the run.

    .venv/bin/python bench/bench_live.py                            # ladder of rates, then bisect
    .venv/bin/python bench/bench_live.py --rates 5000,20000 --seconds 60 --backend tshark
    .venv/bin/python bench/bench_live.py --json bench/out/live.json

Needs root (network namespaces, tcpreplay; both installed with apt-get when missing). The
network is tests/live_lab.py's: nothing is added to the host's own namespace. Per run: drops,
RSS a second after each report rewrite (every 10 s) with the flows so far, and the RSS growth
per flow (least squares from the second report on). Figures only, no assertions: timing on a
shared machine is not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from live_lab import Lab, ensure_tool, wait_for_line  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus" / "ndpi" / "pcap"
DEFAULT_FILES = ("reddit.pcap", "netflix.pcap", "teams.pcap", "443-firefox.pcap", "instagram.pcap")
PYTHON = REPO / ".venv" / "bin" / "python"


def ethernet_pcaps(names) -> list[Path]:
    """Classic pcaps with Ethernet frames (what tcpreplay puts on a veth as they are)."""
    out = []
    for name in names:
        path = CORPUS / name
        head = path.read_bytes()[:24]
        if len(head) == 24 and head[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4"):
            endian = "<" if head[:4] == b"\xd4\xc3\xb2\xa1" else ">"
            if struct.unpack(endian + "I", head[20:24])[0] == 1:
                out.append(path)
    if not out:
        raise SystemExit("no Ethernet pcap among the chosen corpus files")
    return out


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def one_run(rate: int, seconds: float, files: list[Path], backend: str) -> dict:
    tcpreplay = ensure_tool("tcpreplay")
    with tempfile.TemporaryDirectory(prefix="apnstrace-bench-live-") as tmp, Lab() as lab:
        out = Path(tmp) / "out"
        live = lab.start(lab.in_device(str(PYTHON), "-m", "apnstrace", "live", "-i", lab.device_if, "--backend",
                                       backend, "--duration", str(seconds + 8), "--rotate-seconds", "10", "--quiet",
                                       "-o", str(out)), env=dict(os.environ, PYTHONPATH=str(REPO / "src")))
        wait_for_line(live, "capturing on", "apnstrace live")
        samples: list[tuple[float, float]] = []           # (s since capture start, RSS MB), every second
        reports: list[tuple[float, int]] = []             # (s, flows so far) at each report rewrite
        lines: list[str] = []
        done = threading.Event()
        t0 = time.monotonic()

        def sample() -> None:
            while not done.is_set():
                mb = rss_mb(live.pid)
                if mb is not None:
                    samples.append((time.monotonic() - t0, mb))
                done.wait(1.0)

        def read() -> None:             # one line per report rewrite: "... flows N ...; report updated"
            for line in live.stdout:
                lines.append(line.rstrip("\n"))
                m = re.search(r" flows (\d+) .*report updated", line)
                if m:
                    reports.append((time.monotonic() - t0, int(m.group(1))))

        threads = [threading.Thread(target=f, daemon=True) for f in (sample, read)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        replay = subprocess.run(lab.in_server(tcpreplay, "-i", lab.server_if, f"--pps={rate}", "--loop=0",
                                              f"--duration={int(seconds)}", "-K", *map(str, files)),
                                capture_output=True, text=True)
        live.wait(timeout=600)
        done.set()
        for t in threads:
            t.join(timeout=10)
        sent = re.search(r"Actual: (\d+) packets .*? sent in ([\d.]+) seconds", replay.stdout)
        rated = re.search(r"Rated: [\d.]+ Bps, [\d.]+ Mbps, ([\d.]+) pps", replay.stdout)
        summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
        info = summary.get("live", {})
        timeline = memory_timeline(reports[:-1], samples)       # the last report is the final one (after stop)
        during = [mb for t, mb in samples if 10 <= t <= seconds]     # after warm-up, while replaying
        return {
            "rate_pps": rate, "backend": backend, "seconds": seconds,
            "sent": int(sent.group(1)) if sent else None,
            "achieved_pps": float(rated.group(1)) if rated else None,
            "received": info.get("received"), "dropped": info.get("dropped"),
            "flows": summary.get("capture", {}).get("flows"),
            "rss_mb_start": round(during[0], 1) if during else None,
            "rss_mb_max": round(max(during), 1) if during else None,
            "rss_mb_end": round(during[-1], 1) if during else None,
            "timeline": timeline,
            "bytes_per_flow": bytes_per_flow(timeline),
            "exit": live.returncode, "tcpreplay_error": replay.stderr.strip()[-300:] if replay.returncode else "",
            "apnstrace_tail": lines[-1:],
        }


def memory_timeline(reports: list[tuple[float, int]], samples: list[tuple[float, float]]) -> list[dict]:
    """At each report rewrite (every 10 s): flows so far and RSS a second after it (the rewrite's
    memory handed back), so the series shows what the session holds, not a rewrite's peak."""
    out = []
    for t, flows in reports:
        after = [mb for s, mb in samples if t + 1.0 <= s <= t + 3.0]
        if after:
            out.append({"t": round(t, 1), "flows": flows, "rss_mb": round(after[0], 1)})
    return out


def bytes_per_flow(timeline: list[dict]) -> float | None:
    """RSS growth per flow from the first report (matplotlib loaded, caches warm) to the last
    before the stop: a least-squares slope, so one noisy sample does not decide it."""
    pts = timeline[1:] if len(timeline) > 3 else timeline
    if len(pts) < 2 or pts[-1]["flows"] == pts[0]["flows"]:
        return None
    n = len(pts)
    mx = sum(p["flows"] for p in pts) / n
    my = sum(p["rss_mb"] for p in pts) / n
    sxx = sum((p["flows"] - mx) ** 2 for p in pts)
    sxy = sum((p["flows"] - mx) * (p["rss_mb"] - my) for p in pts)
    return round(sxy / sxx * 1024 * 1024) if sxx else None


def show(run: dict) -> None:
    print(f"{run['rate_pps']:>8} pps  sent {run['sent']}  achieved {run['achieved_pps']} pps  received "
          f"{run['received']}  dropped {run['dropped']}  flows {run['flows']}  RSS MB start/max/end "
          f"{run['rss_mb_start']}/{run['rss_mb_max']}/{run['rss_mb_end']}  exit {run['exit']}", flush=True)
    series = "  ".join(f"{p['t']:.0f}s:{p['flows']}f/{p['rss_mb']:.0f}MB" for p in run["timeline"])
    print(f"          RSS after each report (s: flows / MB): {series}", flush=True)
    print(f"          growth per flow: {run['bytes_per_flow']} bytes" if run["bytes_per_flow"] is not None
          else "          growth per flow: n/a", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="2000,5000,10000,20000,40000", help="packets/s to try, ascending")
    ap.add_argument("--seconds", type=float, default=60.0, help="replay time per rate")
    ap.add_argument("--bisect", type=int, default=2, help="extra runs between the last clean and first lossy rate")
    ap.add_argument("--backend", choices=["scapy", "dumpcap", "tshark"], default="scapy")
    ap.add_argument("--files", default=",".join(DEFAULT_FILES), help="corpus captures to replay (Ethernet pcaps)")
    ap.add_argument("--json", type=Path, help="also write the runs here")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench_live.py needs root (network namespaces, tcpreplay)")
    files = ethernet_pcaps(args.files.split(","))
    print(f"replaying {', '.join(p.name for p in files)} for {args.seconds:.0f} s per rate, backend {args.backend}")
    runs, clean, lossy = [], None, None
    for rate in (int(r) for r in args.rates.split(",")):
        run = one_run(rate, args.seconds, files, args.backend)
        runs.append(run)
        show(run)
        if run["dropped"] == 0 and run["exit"] == 0:
            clean = rate
        else:
            lossy = rate
            break
    for _ in range(args.bisect if clean and lossy else 0):
        rate = (clean + lossy) // 2
        run = one_run(rate, args.seconds, files, args.backend)
        runs.append(run)
        show(run)
        clean, lossy = (rate, lossy) if run["dropped"] == 0 and run["exit"] == 0 else (clean, rate)
    print(f"highest rate with zero drops: {clean} pps" + (f" (first lossy: {lossy} pps)" if lossy else
                                                            " (no loss at any rate tried)"))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"runs": runs, "zero_drop_pps": clean, "first_lossy_pps": lossy}, indent=2))


if __name__ == "__main__":
    main()
