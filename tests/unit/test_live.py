"""Live capture without a network: packets -> RawBatch -> the same engine, the batching and
rolling timers, the pcap rotation, the live view, and the one-line setup errors."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import struct
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, SAMPLES, VENV_PYTHON

import apnstrace
from apnstrace.cli import cli
from apnstrace.live.backends import DUMPCAP_STATS, CaptureCounts
from apnstrace.live.batch import PAD, Batcher, Captured, to_raw_batch
from apnstrace.live.preflight import DEFAULT_BPF, check_bpf
from apnstrace.live.rolling import Every, PcapRotator
from apnstrace.live.view import PlainView, RichView, distill
from apnstrace.options import FlowOptions
from apnstrace.pipeline import Session
from apnstrace.reader import iter_batches
from apnstrace.site import Site
from apnstrace.stats import RunStats

CAPTURE = SAMPLES / "sequences_site.pcap"
SITE = Site.from_mdm_hosts(["mdm.example.com:8443"])


def captured_packets(path: Path) -> tuple[list[Captured], int]:
    """A capture file's records as a live backend would hand them over."""
    out, linktype = [], None
    for raw in iter_batches(path, RunStats()):
        linktype = int(raw.linktype[0])
        for off, cap, wire, ts in zip(raw.offset, raw.caplen, raw.wire_len, raw.ts):
            out.append(Captured(float(ts), raw.buf[off: off + cap].tobytes(), int(wire)))
    return out, linktype


# ---------------------------------------------------------------- batches into the engine

def test_raw_batch_layout():
    packets = [Captured(1.0, b"abc", 3), Captured(2.0, b"defgh", 60), Captured(3.0, b"", 0)]
    raw = to_raw_batch(packets, 1, 11, "live:x")
    assert raw.offset.tolist() == [0, 3, 8] and raw.caplen.tolist() == [3, 5, 0]
    assert raw.wire_len.tolist() == [3, 60, 0] and raw.record.tolist() == [11, 12, 13]
    assert raw.buf[:8].tobytes() == b"abcdefgh" and len(raw.buf) == 8 + PAD and not raw.buf[8:].any()
    assert raw.linktype.tolist() == [1, 1, 1] and raw.path == "live:x"


def test_live_batches_give_the_file_result():
    """Packets fed as live batches of 7 (snapshots in between) == analyze() on the file."""
    expected = apnstrace.analyze(CAPTURE, site=SITE)
    packets, linktype = captured_packets(CAPTURE)
    session = Session(FlowOptions(), SITE)
    for i in range(0, len(packets), 7):
        session.add(to_raw_batch(packets[i: i + 7], linktype, i + 1, "live:test"))
        if i % 35 == 0:
            session.snapshot()
    got = session.finish()
    for name in ("flows", "sequences", "blocked", "timing", "courier"):
        pd.testing.assert_frame_equal(getattr(got, name), getattr(expected, name), obj=name)


def test_batcher_due_by_count_bytes_and_age():
    b = Batcher(max_packets=3, max_bytes=100, max_age_s=0.5)
    assert not b.due(0.0)
    b.extend([Captured(1.0, b"x" * 10, 10)], now=10.0)
    assert not b.due(10.1) and b.due(10.5)                       # age
    b.take()
    b.extend([Captured(2.0, b"x", 1)] * 3, now=11.0)
    assert b.due(11.0)                                           # count
    b.take()
    b.extend([Captured(3.0, b"x" * 100, 100)], now=12.0)
    assert b.due(12.0)                                           # bytes
    assert b.records == 4 and len(b.take()) == 1 and b.records == 5


def test_batcher_orders_and_never_goes_back_in_time():
    b = Batcher()
    b.extend([Captured(5.0, b"b", 1), Captured(4.0, b"a", 1)], now=0.0)
    assert [p.data for p in b.take()] == [b"a", b"b"]
    b.extend([Captured(4.5, b"late", 4), Captured(6.0, b"c", 1)], now=1.0)
    got = b.take()
    assert [(p.ts, p.data) for p in got] == [(5.0, b"late"), (6.0, b"c")]   # clamped to the last batch's end


def test_every_counts_from_the_start_and_skips_missed_turns():
    e = Every(10.0, start=100.0)
    assert not e.due(105.0) and e.due(110.0) and not e.due(112.0)
    assert e.due(145.0)                      # 120, 130, 140 were missed: one report, next at 150
    assert not e.due(149.9) and e.due(150.0)


def test_pcap_rotation_reads_back_as_one_capture(tmp_path):
    packets, linktype = captured_packets(CAPTURE)
    span = packets[-1].ts - packets[0].ts
    rot = PcapRotator(tmp_path, seconds=span / 2.5, linktype=linktype)
    for i in range(0, len(packets), 5):
        rot.write(packets[i: i + 5])
    rot.close()
    files = sorted(tmp_path.glob("*.pcap"))
    assert files == sorted(rot.written) and len(files) >= 3 and not list(tmp_path.glob("*.part"))
    back = apnstrace.analyze(files, site=SITE)
    expected = apnstrace.analyze(CAPTURE, site=SITE)
    pd.testing.assert_frame_equal(back.flows, expected.flows)
    pd.testing.assert_frame_equal(back.sequences, expected.sequences)


# ---------------------------------------------------------------- view, counts

def test_view_shows_devices_pushes_and_blocked():
    result = apnstrace.analyze(CAPTURE, site=SITE)
    snap = distill(result, CaptureCounts(10, 0, None, "test"), tcp_timeout=300.0)
    assert len(snap.devices) == result.courier["device_ip"].nunique() > 0
    assert set(snap.events["event"]) >= {"push", "check-in"}
    assert snap.categories == {k: int(v) for k, v in result.flows["category"].value_counts().items()}
    from rich.console import Console
    console = Console(record=True, width=160)
    view = RichView(console)
    view.started("eth9", "scapy", DEFAULT_BPF)
    console.print(view.render(snap))
    text = console.export_text()
    assert "devices (APNs courier)" in text and "push" in text and "eth9" in text
    lines = []
    PlainView(stream=type("S", (), {"write": lambda self, t: lines.append(t), "flush": lambda self: None})()
              ).update(snap, "out/report.html")
    assert "pushes" in lines[0] and "dropped 0" in lines[0] and "out/report.html" in lines[0]


def test_dumpcap_drop_line():
    m = DUMPCAP_STATS.search("Packets received/dropped on interface 'veth0': 1200/37 "
                             "(pcap:30/dumpcap:7/flushed:0/ps_ifdrop:2) (96.9%)")
    assert m and m.group(1, 2, 6) == ("1200", "37", "2")


# ---------------------------------------------------------------- one-line errors, exit 2

def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_no_such_interface(runner, tmp_path):
    result = runner.invoke(cli, ["live", "-i", "nosuchif0", "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert one_line(result.stderr).startswith("apnstrace: error: no such interface: nosuchif0")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("bpf, why", [("tcp prt 5223", "syntax error"),
                                      ("tcp port 99999", "illegal port number 99999 > 65535")])
def test_bpf_syntax_error(runner, tmp_path, bpf, why):
    result = runner.invoke(cli, ["live", "-i", "lo", "--bpf", bpf, "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert one_line(result.stderr) == f"apnstrace: error: capture filter (BPF) '{bpf}' is not valid: {why}"


def test_default_bpf_compiles():
    check_bpf(DEFAULT_BPF, 1)


def test_no_permission_as_an_unprivileged_user():
    """Run as nobody (uid 65534) with setpriv: the packet socket is refused, and the message
    says what is needed. (Needs root to switch user, as CI runs.)"""
    if os.geteuid() != 0:
        pytest.fail("this test switches to an unprivileged user with setpriv: run it as root (CI does)")
    # pytest's tmp_path is private to root: nobody gets a folder of its own under /tmp, for
    # numba's cache and the report folder.
    home = Path(tempfile.mkdtemp(prefix="apnstrace-nobody-"))
    try:
        os.chmod(home, 0o777)
        env = dict(os.environ, HOME=str(home), NUMBA_CACHE_DIR=str(home / "numba"), PYTHONPATH=str(REPO / "src"))
        done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(VENV_PYTHON),
                               "-m", "apnstrace", "live", "-i", "lo", "--duration", "1", "-o", str(home / "out")],
                              capture_output=True, text=True, env=env, cwd=home, timeout=300)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert done.returncode == 2, done.stderr
    assert one_line(done.stderr) == ("apnstrace: error: no permission to capture (running as uid 65534): "
                                     "capturing needs root or the CAP_NET_RAW and CAP_NET_ADMIN capabilities")


def test_summary_json_carries_live_counts(tmp_path):
    """What run_live records: the backend's counts land in summary.json under "live"."""
    from apnstrace.report.folder import write_summary
    result = apnstrace.analyze(CAPTURE, site=SITE)
    result.stats.live = {"interface": "eth9", "backend": "scapy", **CaptureCounts(5, 2, None, "kernel").as_dict()}
    data = json.loads(write_summary(result, tmp_path / "summary.json").read_text())
    assert data["live"]["dropped"] == 2 and data["live"]["received"] == 5
    assert "live" not in apnstrace.analyze(CAPTURE, site=SITE).summary       # files: unchanged


def test_backlog_is_bounded_and_counted(monkeypatch):
    """A rate the engine cannot follow costs counted drops, not unbounded memory."""
    from apnstrace.live import backends
    monkeypatch.setattr(backends, "MAX_PENDING", 3)
    b = backends.ScapyBackend("lo", DEFAULT_BPF)
    for i in range(5):
        b._put(Captured(float(i), b"x", 1))
    assert len(b.take()) == 3 and b._overflow == 2
    b._put(Captured(9.0, b"x", 1))
    assert len(b.take()) == 1


def test_release_unused_after_a_report_is_harmless():
    from apnstrace.live.memory import _TRIM, release_unused
    release_unused()
    release_unused()
    if os.uname().sysname == "Linux" and os.path.exists("/lib/x86_64-linux-gnu/libc.so.6"):
        assert _TRIM is not None                  # glibc: malloc_trim found


def test_tshark_counts_captured_packets_it_never_decoded_as_dropped():
    """tshark spools behind dumpcap into a temporary file: when it is stopped still behind,
    what dumpcap captured and tshark never handed over is lost, and counted as dropped."""
    from apnstrace.live.backends import TsharkBackend
    backend = TsharkBackend("veth0", DEFAULT_BPF)
    backend._received = 1000
    backend._stderr += ["Packets received/dropped on interface '-': 1000/0 (pcap:0/dumpcap:0/flushed:0/ps_ifdrop:0)",
                        "Packets received/dropped on interface 'veth0': 1200/3 (pcap:3/dumpcap:0/flushed:0/ps_ifdrop:0)"]
    assert backend.counts().dropped == 3 + 200
    backend._stderr.reverse()                 # whichever prints last, our interface's line counts
    assert backend.counts().dropped == 203


def _pcap_stream(packets: list[tuple[float, bytes]], nanoseconds: bool, big_endian: bool) -> bytes:
    order = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nanoseconds else 0xA1B2C3D4
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 262144, 1)
    for ts, data in packets:
        sec = int(ts)
        frac = round((ts - sec) * (1e9 if nanoseconds else 1e6))
        out += struct.pack(order + "IIII", sec, frac, len(data), len(data) + 4) + data
    return out


@pytest.mark.parametrize("nanoseconds", [False, True])
@pytest.mark.parametrize("big_endian", [False, True])
def test_dumpcap_stream_records_split_anywhere(nanoseconds, big_endian):
    """dumpcap's pcap pipe arrives in reads of any size: records cut across reads come out whole."""
    from apnstrace.live.backends import DumpcapBackend, _pcap_header
    packets = [(1_700_000_000.25 + i, bytes([i]) * (60 + 7 * i)) for i in range(20)]
    stream = _pcap_stream(packets, nanoseconds, big_endian)
    header = _pcap_header(stream[:24])
    assert header is not None and header.linktype == 1
    for step in (1, 5, 16, 17, 100, len(stream)):
        backend = DumpcapBackend("veth0", DEFAULT_BPF, 1)
        pending = bytearray()
        for at in range(24, len(stream), step):
            pending += stream[at: at + step]
            del pending[:backend._records(pending, header)]
        assert not pending
        got = backend.take()
        assert [p.data for p in got] == [d for _, d in packets]
        assert [p.wire_len for p in got] == [len(d) + 4 for _, d in packets]
        assert [p.ts for p in got] == pytest.approx([t for t, _ in packets], abs=1e-6)
    assert _pcap_header(b"\x0a\x0d\x0d\x0a" + bytes(20)) is None         # pcapng is not what -P writes


def test_dumpcap_counts_read_its_interface_line():
    from apnstrace.live.backends import DumpcapBackend
    backend = DumpcapBackend("lo", DEFAULT_BPF, 1)
    backend._received = 500
    backend._stderr += ["Packets received/dropped on interface 'Loopback: lo': 510/10 "
                        "(pcap:4/dumpcap:6/flushed:0/ps_ifdrop:1) (98.0%)"]
    counts = backend.counts()
    assert (counts.received, counts.dropped, counts.interface_dropped) == (500, 10, 1)


def test_dumpcap_missing_is_one_sentence(monkeypatch):
    from apnstrace.live import backends
    monkeypatch.setattr(backends.shutil, "which", lambda name: None)
    with pytest.raises(backends.LiveSetupError, match="needs dumpcap"):
        backends.DumpcapBackend("lo", DEFAULT_BPF, 1).start()


@pytest.mark.parametrize("backend, dropped, hinted", [("scapy", 7, True), ("scapy", 0, False), ("dumpcap", 7, False)])
def test_drops_with_scapy_suggest_dumpcap(runner, tmp_path, monkeypatch, backend, dropped, hinted):
    import apnstrace.live as live
    from apnstrace.live.run import LiveOutcome
    assert shutil.which("dumpcap"), "dumpcap is missing: run `make test` (it installs Debian's tshark)"
    result = apnstrace.analyze(SAMPLES / "courier_push.pcap")
    monkeypatch.setattr(live, "run_live", lambda config, view: LiveOutcome(
        result, CaptureCounts(100, dropped, None, "test"), 1, [], "duration"))
    got = runner.invoke(cli, ["live", "-i", "lo", "--backend", backend, "--quiet", "-o", str(tmp_path / "out")])
    assert got.exit_code == 0, got.output
    assert f"{dropped} dropped" in got.output
    assert ("--backend dumpcap takes about three times" in got.output) == hinted
