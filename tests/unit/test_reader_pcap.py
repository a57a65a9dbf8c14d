"""Classic pcap reading: byte orders, timestamp units, lengths, file order, chunk boundaries."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import (C4, LT_ETHERNET, LT_RAW, S4, T0_NS, TCP, UDP, Rec, conversation, ether, ip4, pcap,
                      pcapng, read_all, tcp, udp, write)

import apnstrace
from apnstrace.options import FlowOptions
from apnstrace.reader import order_by_time
from apnstrace.reader.stream import MAX_WIRE_LEN


# Timestamps with nanosecond digits, lengths that differ, one frame cut by the snap length.
VARIED = [
    Rec(T0_NS, ether(ip4(C4, S4, UDP, udp(5000, 53, b"a" * 10)))),
    Rec(T0_NS + 999, ether(ip4(S4, C4, UDP, udp(53, 5000, b"b" * 100)))),           # +0.999 us
    Rec(T0_NS + 1_234_567_891, ether(ip4(C4, S4, TCP, tcp(50000, 443, "S")))),
    Rec(T0_NS + 86_400 * 10**9 + 1, ether(ip4(C4, S4, UDP, udp(5000, 53, b"c" * 40)))[:50], 1514),
]


@pytest.mark.parametrize("nanos", [False, True], ids=["usec", "nsec"])
@pytest.mark.parametrize("big", [False, True], ids=["le", "be"])
def test_pcap_variants_give_the_same_records(tmp_path, nanos, big):
    path = write(tmp_path / "v.pcap", pcap(VARIED, nanos=nanos, big=big))
    rows, stats, _ = read_all(path)
    assert [r["record"] for r in rows] == [1, 2, 3, 4]
    assert [r["caplen"] for r in rows] == [len(v.data) for v in VARIED]
    assert [r["wire_len"] for r in rows] == [len(VARIED[0].data), len(VARIED[1].data), len(VARIED[2].data), 1514]
    assert [r["data"] for r in rows] == [v.data for v in VARIED]
    assert {r["linktype"] for r in rows} == {LT_ETHERNET}
    for row, rec in zip(rows, VARIED):
        exact = rec.ts_ns / 1e9
        assert row["ts"] == pytest.approx(exact, abs=1e-6)
        if not nanos:   # a microsecond file holds the time truncated to the microsecond
            assert row["ts"] == pytest.approx((rec.ts_ns // 1000) / 1e6, abs=1e-7)
    assert not stats.problems and not stats.malformed


def test_nanosecond_file_keeps_sub_microsecond_digits(tmp_path):
    # 999 ns apart: the same microsecond tick in a usec file, distinct in a nsec file.
    nsec, _, _ = read_all(write(tmp_path / "n.pcap", pcap(VARIED[:2], nanos=True)))
    usec, _, _ = read_all(write(tmp_path / "u.pcap", pcap(VARIED[:2], nanos=False)))
    assert nsec[1]["ts"] - nsec[0]["ts"] == pytest.approx(999e-9, abs=3e-7)
    # .123456789 -> .123456 and .123457788 -> .123457: one tick apart
    assert usec[1]["ts"] - usec[0]["ts"] == pytest.approx(1e-6, abs=3e-7)


def test_all_four_variants_agree_through_analyze(tmp_path):
    frames = conversation(8, payload=b"x" * 33)
    results = []
    for nanos in (False, True):
        for big in (False, True):
            path = write(tmp_path / f"{nanos}{big}.pcap", pcap(frames, nanos=nanos, big=big))
            results.append(apnstrace.analyze(path).flows)
    first = results[0]
    assert len(first) == 1
    assert first.loc[0, "pkts_c2s"] == 5 and first.loc[0, "pkts_s2c"] == 3
    for other in results[1:]:
        pd.testing.assert_frame_equal(other.drop(columns=["ts_start", "ts_end", "duration", "rtt_ms"]),
                                      first.drop(columns=["ts_start", "ts_end", "duration", "rtt_ms"]))
        np.testing.assert_allclose(other["ts_start"], first["ts_start"], atol=1e-6, rtol=0)
        np.testing.assert_allclose(other["ts_end"], first["ts_end"], atol=1e-6, rtol=0)


def test_fcs_bits_in_the_link_type_field_are_ignored(tmp_path):
    # LINKTYPE_ETHERNET with "FCS length 4 present" in the upper bits (0x1 << 28 | 4 << 28).
    path = write(tmp_path / "fcs.pcap", pcap(VARIED[:1], network=0x5000_0000 | LT_ETHERNET))
    rows, _, _ = read_all(path)
    assert rows[0]["linktype"] == LT_ETHERNET


def test_record_longer_than_snaplen_is_read_and_counted(tmp_path):
    frame = ether(ip4(C4, S4, UDP, udp(5000, 53, b"z" * 100)))    # 142 bytes
    path = write(tmp_path / "snap.pcap", pcap([(T0_NS, frame), (T0_NS + 1000, frame[:64])], snaplen=64))
    rows, stats, _ = read_all(path)
    assert [r["caplen"] for r in rows] == [142, 64]
    assert stats.malformed == {"caplen_over_snaplen": 1}
    assert not stats.problems


def test_orig_len_below_caplen_is_raised_and_absurd_orig_len_is_clamped(tmp_path):
    frame = ether(ip4(C4, S4, UDP, udp(5000, 53, b"q" * 20)))     # 62 bytes
    path = write(tmp_path / "orig.pcap", pcap([Rec(T0_NS, frame, 10), Rec(T0_NS + 1, frame, 0xFFFF_FFFF),
                                               Rec(T0_NS + 2, frame, 262_144)]))
    rows, stats, _ = read_all(path)
    assert [r["wire_len"] for r in rows] == [62, MAX_WIRE_LEN, 262_144]
    assert stats.malformed == {"orig_len_absurd": 1}


def test_empty_capture_gives_no_records_and_no_problem(tmp_path):
    rows, stats, _ = read_all(write(tmp_path / "empty.pcap", pcap([])))
    assert rows == [] and stats.problems == [] and stats.files == [str(tmp_path / "empty.pcap")]


# ---------------------------------------------------------------- several files

def _rotated(tmp_path: Path) -> list[Path]:
    """One TCP conversation split over three files, 100 s apart, plus a UDP flow in the last."""
    frames = conversation(9, step_ns=50 * 10**9, payload=b"p" * 10)
    a = write(tmp_path / "a.pcap", pcap(frames[:3]))
    b = write(tmp_path / "b.pcapng", pcapng(frames[3:6]))
    c = write(tmp_path / "c.pcap.gz", pcap(frames[6:] + [(frames[8][0] + 1, ether(ip4(C4, S4, UDP, udp(1, 2))))],
                                          nanos=True), gz=True)
    return [a, b, c]


def test_files_given_out_of_time_order_are_read_in_time_order(tmp_path):
    a, b, c = _rotated(tmp_path)
    junk = write(tmp_path / "0junk.pcap", b"not a capture at all")
    assert order_by_time([c, a, b]) == [a, b, c]
    assert order_by_time([b, c, a]) == [a, b, c]
    assert order_by_time([junk, c, a]) == [a, c, junk]      # unreadable files go last


@pytest.mark.parametrize("order", [(2, 0, 1), (1, 2, 0), (0, 1, 2)])
def test_a_flow_crossing_files_is_one_flow_whatever_the_order(tmp_path, order):
    paths = _rotated(tmp_path)
    result = apnstrace.analyze([paths[i] for i in order])
    assert result.stats.files == [str(p) for p in paths]
    flows = result.flows
    assert list(flows["transport"]) == ["tcp", "udp"]
    tcp_flow = flows.iloc[0]
    assert (tcp_flow["pkts_c2s"], tcp_flow["pkts_s2c"]) == (5, 4)
    assert tcp_flow["ts_start"] == pytest.approx(T0_NS / 1e9, abs=1e-6)
    assert tcp_flow["duration"] == pytest.approx(400.0, abs=1e-6)
    assert tcp_flow["state"] == "S1"


# ---------------------------------------------------------------- chunk boundaries

def _many_frames(count: int = 1200) -> list[tuple[int, bytes]]:
    """Many small flows with frame sizes that do not divide any chunk size evenly."""
    out = []
    for i in range(count):
        flow = i % 37
        size = (i * 97) % 700
        src, dst = f"10.1.{flow}.2", "17.57.146.20"
        if i % 3 == 0:
            seg = tcp(40000 + flow, 5223, "PA", seq=1000 + i * 700, payload=bytes([i % 251]) * size)
            frame = ether(ip4(src, dst, TCP, seg) if i % 2 else ip4(dst, src, TCP, tcp(5223, 40000 + flow, "A", seq=5)))
        else:
            frame = ether(ip4(src, dst, UDP, udp(30000 + flow, 53, b"d" * size)))
        out.append((T0_NS + i * 1_000_003, frame))
    return out


@pytest.mark.parametrize("kind", ["pcap", "pcap-nsec-be", "pcapng", "pcapng-be", "pcap.gz", "pcapng.gz"])
def test_small_and_large_chunks_give_identical_flows(tmp_path, kind):
    frames = _many_frames()
    if kind.startswith("pcapng"):
        data = pcapng(frames, big=kind.endswith("-be"))
    else:
        data = pcap(frames, nanos="nsec" in kind, big=kind.endswith("-be"))
    path = write(tmp_path / f"many.{kind}", data, gz=kind.endswith(".gz"))
    small_rows, _, small_batches = read_all(path, chunk_bytes=4096)
    large_rows, _, large_batches = read_all(path)
    assert large_batches == 1 and small_batches > 50          # the boundaries really were crossed
    assert small_rows == large_rows
    assert len(small_rows) == len(frames)

    small = apnstrace.analyze(path, options=FlowOptions(chunk_bytes=4096))
    large = apnstrace.analyze(path)
    pd.testing.assert_frame_equal(small.flows, large.flows)
    assert len(large.flows) == 74
    assert small.stats.as_dict() == large.stats.as_dict()
    assert large.stats.records == 1200 and large.stats.packets_in_flows == 1200


@pytest.mark.parametrize("kind", ["pcap", "pcapng", "pcap.gz"])
def test_batches_held_while_later_chunks_are_read_keep_their_values(tmp_path, kind):
    """The walkers write into columns kept from chunk to chunk (reader/stream._Scratch): a batch
    must own what it holds, or the next chunk would overwrite it under a consumer that keeps it."""
    from apnstrace.reader import iter_batches
    from apnstrace.stats import RunStats
    frames = _many_frames()
    data = pcapng(frames) if kind.startswith("pcapng") else pcap(frames)
    path = write(tmp_path / f"many.{kind}", data, gz=kind.endswith(".gz"))
    held = list(iter_batches(path, RunStats(), 4096))
    assert len(held) > 50
    rows = [{"record": int(b.record[i]), "ts": float(b.ts[i]), "caplen": int(b.caplen[i]),
             "wire_len": int(b.wire_len[i]), "linktype": int(b.linktype[i]),
             "data": b.buf[int(b.offset[i]): int(b.offset[i]) + int(b.caplen[i])].tobytes()}
            for b in held for i in range(len(b))]
    assert rows == read_all(path, chunk_bytes=4096)[0]
    assert [r["data"] for r in rows] == [frame for _, frame in frames]


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_record_bigger_than_the_chunk(tmp_path, fmt):
    big_frame = ether(ip4(C4, S4, UDP, udp(5000, 9999, bytes(range(256)) * 80)))    # 20 522 bytes
    frames = [(T0_NS, ether(ip4(C4, S4, UDP, udp(5000, 9999, b"s")))), (T0_NS + 1000, big_frame),
              (T0_NS + 2000, ether(ip4(S4, C4, UDP, udp(9999, 5000, b"t"))))]
    data = pcap(frames) if fmt == "pcap" else pcapng(frames)
    path = write(tmp_path / f"big.{fmt}", data)
    rows, stats, _ = read_all(path, chunk_bytes=4096)
    assert [r["caplen"] for r in rows] == [len(f) for _, f in frames]
    assert rows[1]["data"] == big_frame
    assert not stats.problems
    flows = apnstrace.analyze(path, options=FlowOptions(chunk_bytes=4096)).flows
    assert len(flows) == 1
    assert flows.loc[0, "bytes_c2s"] + flows.loc[0, "bytes_s2c"] == sum(len(f) for _, f in frames)


def test_chunk_bytes_below_4k_is_refused():
    with pytest.raises(ValueError, match="chunk_bytes must be at least 4 KiB"):
        FlowOptions(chunk_bytes=4095)
    assert FlowOptions(chunk_bytes=4096).chunk_bytes == 4096


def test_raw_ip_pcap(tmp_path):
    path = write(tmp_path / "raw.pcap", pcap([(T0_NS, ip4(C4, S4, UDP, udp(5353, 5353, b"m")))], LT_RAW))
    rows, _, _ = read_all(path)
    assert rows[0]["linktype"] == LT_RAW and rows[0]["caplen"] == 29
