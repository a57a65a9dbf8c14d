"""The flow table gives one answer whatever the chunking and however flows are batched out."""
from __future__ import annotations

import struct
from pathlib import Path

import pandas as pd
import pytest

import apnstrace
from apnstrace.flows import table as flow_table

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus" / "ndpi" / "pcap"
BUSY = ["1kxun.pcap", "rtsp.pcap", "ipsec_isakmp_esp.pcap", "synscan.pcap", "tls-appdata.pcap"]


@pytest.mark.parametrize("name", BUSY)
def test_small_chunks_and_small_output_batches_change_nothing(name: str, monkeypatch) -> None:
    capture = CORPUS / name
    whole = apnstrace.analyze([capture]).flows
    monkeypatch.setattr(flow_table, "ROWS_BATCH", 3)
    pieces = apnstrace.analyze([capture], options=apnstrace.FlowOptions(chunk_bytes=4096)).flows
    pd.testing.assert_frame_equal(whole, pieces)


def _udp_frame(sport: int, dport: int) -> bytes:
    payload = b"x" * 8
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    return ip + udp


def _raw_pcap(frames: list[tuple[float, bytes]]) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)]
    for ts, frame in frames:
        out.append(struct.pack("<IIII", int(ts), int(round((ts % 1) * 1e6)), len(frame), len(frame)) + frame)
    return b"".join(out)


def test_time_going_backwards_is_read_the_same_in_any_chunking(tmp_path: Path) -> None:
    """A at 200, A at 10, filler, A at 135: the last frame comes more than the 120 s UDP
    timeout after its predecessor by their own times, so it starts a second flow."""
    filler = [(200.0 + i * 0.001, _udp_frame(40000 + i, 53)) for i in range(300)]
    frames = [(200.0, _udp_frame(5000, 53)), (10.0, _udp_frame(5000, 53))] + filler + [(135.0, _udp_frame(5000, 53))]
    path = tmp_path / "backwards.pcap"
    path.write_bytes(_raw_pcap(frames))
    for chunk in (4096, 1 << 20):
        flows = apnstrace.analyze([path], options=apnstrace.FlowOptions(chunk_bytes=chunk)).flows
        a = flows[flows["client_port"] == 5000]
        assert sorted(a["pkts_c2s"].tolist()) == [1, 2], chunk
        assert a["ts_start"].min() == 10.0                      # the smallest time, not the first
    scapy = apnstrace.analyze([path], engine="scapy").flows
    assert sorted(scapy.loc[scapy["client_port"] == 5000, "pkts_c2s"].tolist()) == [1, 2]


def test_time_stepping_back_past_the_timeout_does_not_split_every_frame(tmp_path: Path) -> None:
    """The capture's time steps back 200 s (more than the UDP timeout) and stays there: the
    clock stands still until time catches up, so each key goes on as one flow (the rule used
    to compare the clock with the key's previous frame and split every later frame:
    cassandra.pcap in the corpus became 12 one-packet flows)."""
    before = [(1000.0 + i, _udp_frame(5000 + i % 3, 53)) for i in range(6)]          # 3 keys, 1000-1005
    after = [(806.0 + i, _udp_frame(5000 + i % 3, 53)) for i in range(30)]           # 806-835
    path = tmp_path / "stepped.pcap"
    path.write_bytes(_raw_pcap(before + after))
    for chunk in (4096, 1 << 20):
        flows = apnstrace.analyze([path], options=apnstrace.FlowOptions(chunk_bytes=chunk)).flows
        assert sorted(flows["pkts_c2s"].tolist()) == [12, 12, 12], chunk
    scapy = apnstrace.analyze([path], engine="scapy").flows
    assert sorted(scapy["pkts_c2s"].tolist()) == [12, 12, 12]


def test_a_forward_jump_of_the_clock_still_ends_idle_flows(tmp_path: Path) -> None:
    """Key A, then another key 500 s later (the clock moves on), then A again at its own old
    time: by the clock A was idle past the timeout, so A's late frame is a second flow."""
    frames = [(100.0, _udp_frame(5000, 53)), (600.0, _udp_frame(6000, 53)), (100.5, _udp_frame(5000, 53)),
              (100.6, _udp_frame(5000, 53))]
    path = tmp_path / "jump.pcap"
    path.write_bytes(_raw_pcap(frames))
    for engine in ("fast", "scapy"):
        flows = apnstrace.analyze([path], engine=engine).flows
        assert sorted(flows.loc[flows["client_port"] == 5000, "pkts_c2s"].tolist()) == [1, 2], engine


def test_assemble_leaves_dropped_rows_out_in_the_same_order() -> None:
    """assemble(drop=...) (scale/merge.py: the workers' rows of replayed keys) equals ordering
    the pieces without those rows."""
    import numpy as np
    from apnstrace.flows.finalize import HIDDEN, assemble
    session = apnstrace.pipeline.Session(apnstrace.FlowOptions(chunk_bytes=4096))
    from apnstrace.reader import iter_batches
    for raw in iter_batches(CORPUS / "1kxun.pcap", session.stats, 4096, 100.0):
        session.add(raw)
    pieces = session.table.finish_pieces()
    whole = assemble([p.copy() for p in pieces], keep_keys=True)
    half = len(whole) // 2
    halves = [whole.iloc[half:].reset_index(drop=True), whole.iloc[:half]]      # out of order
    drop = np.random.default_rng(8).random(len(whole)) < 0.3
    got = assemble([h.copy() for h in halves], keep_keys=True, drop=drop)
    expected = assemble([h[~d].reset_index(drop=True) for h, d in
                         zip(halves, np.split(drop, [len(halves[0])]))], keep_keys=True)
    assert got["ts_start"].is_monotonic_increasing
    assert 0 < len(got) < len(whole) and set(HIDDEN) <= set(got.columns)
    pd.testing.assert_frame_equal(got, expected)
