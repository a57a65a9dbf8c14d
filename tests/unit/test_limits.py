"""Safety limits (FlowOptions): gzip expansion, open flows, reassembly bytes; each counted."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest
from conftest import C4, S4, T0_NS, TCP, UDP, ether, ip4, pcap, tcp, udp

import apnstrace
from apnstrace.cli import cli
from apnstrace.options import FlowOptions
from apnstrace.pipeline import Session
from apnstrace.reader import iter_batches
from apnstrace.stats import RunStats


def _bomb(path: Path, records: int = 400) -> Path:
    """A gzip pcap of `records` 65,535-byte frames of zeros: ~26 MB from ~26 KB (ratio ~1000)."""
    frame = ether(ip4(C4, S4, UDP, udp(50000, 9, bytes(65_535 - 42))))
    head = pcap([(T0_NS, frame)])
    body = head + (head[24:] * (records - 1))
    path.write_bytes(gzip.compress(body, compresslevel=9, mtime=0))
    return path


def test_gzip_bomb_is_refused_naming_the_file(tmp_path):
    path = _bomb(tmp_path / "bomb.pcap.gz")
    stats = RunStats()
    read = sum(len(b) for b in iter_batches(path, stats))
    assert 0 < read < 400                               # what came before the limit is kept
    assert stats.limits["gzip_expansion_refused"] == 1
    (problem,) = stats.problems
    assert problem.message.startswith(f"{path}, record {read + 1}: gzip data expands more than 250 times")
    assert "compression bomb" in problem.message and "\n" not in problem.message


def test_gzip_ratio_option_lets_a_trusted_file_through(tmp_path):
    path = _bomb(tmp_path / "bomb.pcap.gz")
    result = apnstrace.analyze(path, options=FlowOptions(max_gzip_ratio=5000))
    assert result.stats.records == 400 and not result.problems and not result.stats.limits


def test_gzip_bomb_on_the_command_line(tmp_path, runner):
    path = _bomb(tmp_path / "bomb.pcap.gz")
    got = runner.invoke(cli, ["flows", str(path), "--format", "csv", "-o", str(tmp_path / "f.csv")])
    assert got.exit_code == 2 and got.exception is None or isinstance(got.exception, SystemExit)
    errors = [line for line in got.output.splitlines() if line.startswith("apnstrace: error:")]
    assert len(errors) == 1 and str(path) in errors[0] and "compression bomb" in errors[0]
    assert "Traceback" not in got.output
    ok = runner.invoke(cli, ["flows", str(path), "--format", "csv", "-o", str(tmp_path / "g.csv"),
                             "--max-gzip-ratio", "5000"])
    assert ok.exit_code == 0, ok.output


def test_a_small_gzip_file_is_never_refused(tmp_path):
    """Below 16 MiB decompressed, even a very high ratio is fine (a tiny capture of zeros)."""
    path = _bomb(tmp_path / "small.pcap.gz", records=100)           # 6.5 MB
    result = apnstrace.analyze(path, options=FlowOptions(max_gzip_ratio=1))
    assert result.stats.records == 100 and not result.problems


def _udp_flows(count: int) -> bytes:
    """`count` UDP flows each sending one packet, then each a second one 50 s later."""
    first = [(T0_NS + i * 10**6, ether(ip4(C4, S4, UDP, udp(20000 + i, 53, b"q")))) for i in range(count)]
    again = [(T0_NS + 50 * 10**9 + i * 10**6, ether(ip4(C4, S4, UDP, udp(20000 + i, 53, b"r")))) for i in range(count)]
    return pcap(first + again)


def test_open_flows_are_bounded_and_the_oldest_expired_first(tmp_path):
    path = tmp_path / "many.pcap"
    path.write_bytes(_udp_flows(200))
    options = FlowOptions(max_open_flows=30, chunk_bytes=4096)
    session = Session(options, sequences=False)
    peak = 0
    for raw in iter_batches(path, session.stats, options.chunk_bytes):
        session.add(raw)
        peak = max(peak, session.table.open_flows)
    result = session.finish()
    assert peak <= 30
    # Every first packet's flow was finished before its second packet came: 400 one-packet flows.
    assert len(result.flows) == 400 and session.stats.limits["flows_expired_at_limit"] >= 370
    assert set(result.flows["pkts_c2s"]) == {1}
    # Without the limit the same capture gives 200 flows of 2 packets, nothing counted.
    whole = apnstrace.analyze(path, options=FlowOptions(chunk_bytes=4096), sequences=False)
    assert len(whole.flows) == 200 and not whole.stats.limits


def test_open_flow_limit_keeps_the_recently_active(tmp_path):
    """Flow 0 stays busy; the idle ones are expired around it, so it stays one flow."""
    frames = []
    for i in range(100):
        frames.append((T0_NS + i * 10**7, ether(ip4(C4, S4, UDP, udp(20000 + i, 53, b"q")))))
        frames.append((T0_NS + i * 10**7 + 1, ether(ip4(C4, S4, UDP, udp(19999, 53, b"busy")))))
    path = tmp_path / "busy.pcap"
    path.write_bytes(pcap(frames))
    result = apnstrace.analyze(path, options=FlowOptions(max_open_flows=5, chunk_bytes=4096), sequences=False)
    busy = result.flows[result.flows["client_port"] == 19999]
    assert len(busy) == 1 and int(busy["pkts_c2s"].iloc[0]) == 100
    assert result.stats.limits["flows_expired_at_limit"] > 0
    assert result.summary["capture"]["limits"]["flows_expired_at_limit"] > 0


def _tls_stream(segments: int, size: int) -> bytes:
    """A handshake, then a ClientHello announced at 60 KB (in full-size records) sent in `segments`
    payloads of `size` bytes: a stream that stays incomplete."""
    hello = b"\x16\x03\x01" + struct.pack("!H", 16_384) + b"\x01" + (59_996).to_bytes(3, "big")
    data = hello + bytes(segments * size - len(hello))
    frames = [ether(ip4(C4, S4, TCP, tcp(50000, 443, "S", seq=0))),
              ether(ip4(S4, C4, TCP, tcp(443, 50000, "SA", seq=0, ack=1))),
              ether(ip4(C4, S4, TCP, tcp(50000, 443, "A", seq=1, ack=1)))]
    for i in range(segments):
        frames.append(ether(ip4(C4, S4, TCP, tcp(50000, 443, "PA", seq=1 + i * size, ack=1,
                                                 payload=data[i * size:(i + 1) * size]))))
    return pcap([(T0_NS + i * 10**6, f) for i, f in enumerate(frames)])


def test_reassembly_bytes_are_capped_and_counted(tmp_path):
    path = tmp_path / "hello.pcap"
    path.write_bytes(_tls_stream(segments=10, size=1400))
    capped = apnstrace.analyze(path, options=FlowOptions(max_reassembly_bytes=4096))
    assert capped.stats.limits == {"reassembly_bytes_capped": 1}
    assert len(capped.flows) == 1 and int(capped.flows["pkts_c2s"].iloc[0]) == 12   # the flow itself is whole
    plain = apnstrace.analyze(path)
    assert not plain.stats.limits


def test_collector_never_holds_more_than_the_limit(tmp_path):
    path = tmp_path / "hello.pcap"
    path.write_bytes(_tls_stream(segments=11, size=9000))
    options = FlowOptions(max_reassembly_bytes=8192, chunk_bytes=4096)
    session = Session(options, sequences=False)
    most = 0
    for raw in iter_batches(path, session.stats, options.chunk_bytes):
        session.add(raw)
        held = [sum(map(len, s.segments.values())) for s in session.collector.streams.values()]
        most = max([most, *held])
    assert most <= 8192
    assert session.stats.limits["reassembly_bytes_capped"] == 1


@pytest.mark.parametrize("flag, value", [("--max-open-flows", "0"), ("--max-reassembly-bytes", "100"),
                                         ("--max-gzip-ratio", "0.5")])
def test_limit_flags_are_checked(runner, flag, value):
    got = runner.invoke(cli, ["flows", "sample_pcaps/hostile_strings.pcap", flag, value])
    assert got.exit_code == 2 and flag in got.output and "Traceback" not in got.output
