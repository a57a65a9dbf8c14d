"""scale/partial.py: what a worker spills is what it read (payload positions, key hash, clock)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from apnstrace.flows.keys import key_hash
from apnstrace.flows.table import FlowTable, frame_clock
from apnstrace.options import FlowOptions
from apnstrace.scale.partial import load_rows, run_file, spilled_uids
from conftest import T0_NS, ether, ip4, pcap, tcp, udp, write

C, S = "10.0.0.7", "192.0.2.44"
MS = 1_000_000


def _capture(tmp_path: Path) -> Path:
    """An open TCP connection with payloads of several sizes, an empty segment between them,
    and UDP datagrams on a second key (both left open at the end: both are spilled)."""
    frames = [(T0_NS, ip4(C, S, 6, tcp(51000, 443, "S", seq=10))),
              (T0_NS + 1 * MS, ip4(S, C, 6, tcp(443, 51000, "SA", seq=90, ack=11))),
              (T0_NS + 2 * MS, ip4(C, S, 6, tcp(51000, 443, "PA", seq=11, ack=91, payload=b"abc"))),
              (T0_NS + 3 * MS, ip4(S, C, 6, tcp(443, 51000, "A", seq=91, ack=14))),
              (T0_NS + 4 * MS, ip4(C, S, 17, udp(40000, 3478, b"hello udp"))),
              (T0_NS + 5 * MS, ip4(S, C, 6, tcp(443, 51000, "PA", seq=91, ack=14, payload=b"server says"))),
              (T0_NS + 6 * MS, ip4(C, S, 17, udp(40000, 3478, b"again")))]
    return write(tmp_path / "one.pcap", pcap([(t, ether(f)) for t, f in frames]))


def test_spilled_payload_positions_give_back_each_packets_bytes(tmp_path: Path) -> None:
    part = run_file(0, str(_capture(tmp_path)), FlowOptions(), None, None, True, str(tmp_path / "spill"))
    assert part.keys["kept"].all()
    cols, payload = load_rows(part.spill, part.keys["h"])
    assert len(cols["ts"]) == 7
    has = cols["payload_cap"] > 0
    got = [bytes(payload[o: o + c]) for o, c in zip(cols["payload_off"][has], cols["payload_cap"][has])]
    assert got == [b"abc", b"hello udp", b"server says", b"again"]
    assert (cols["payload_len"][~has] == 0).all()
    # The clock before each frame: the latest timestamp before it in the file.
    assert np.array_equal(cols["clock"][1:], np.maximum.accumulate(cols["ts"])[:-1])


def test_flow_table_gives_each_packets_key_hash_and_clock(tmp_path: Path) -> None:
    from apnstrace.decode import decode_chunk
    from apnstrace.reader import iter_batches
    from apnstrace.stats import RunStats
    stats = RunStats()
    raw = next(iter(iter_batches(_capture(tmp_path), stats, 1 << 20, 100.0)))
    pk, _ = decode_chunk(raw, stats)
    table = FlowTable(FlowOptions(), stats)
    table.now = T0_NS / 1e9 - 5.0
    now = table.now
    joined = table.add(pk)
    assert np.array_equal(joined.h, key_hash(pk.a_hi, pk.a_lo, pk.b_hi, pk.b_lo, pk.port_a, pk.port_b, pk.proto))
    assert np.array_equal(joined.clock, frame_clock(pk.ts, now))
    assert joined.clock[0] == now


def test_spilled_uids_are_the_sorted_distinct_uids_of_the_keys_packets(tmp_path: Path) -> None:
    """spilled_uids reads a spill folder's per-packet uids through a table: the same as np.unique
    over the packets of the wanted keys (several flows per key, keys not wanted, none at all)."""
    rng = np.random.default_rng(5)
    hashes = rng.integers(-2**63, 2**63 - 1, 300, dtype=np.int64)         # one per spilled key
    code = rng.integers(0, 300, 20_000)                                    # each packet's key
    uid = (code * 3 + rng.integers(0, 3, code.size)).astype(np.int64)     # up to 3 flows a key
    np.save(tmp_path / "key_h.npy", hashes)
    np.save(tmp_path / "code.npy", code)
    np.save(tmp_path / "uid.npy", uid)
    for wanted in (hashes[rng.choice(300, 40, replace=False)], hashes[:1], hashes[:0],
                   np.array([12345], np.int64)):
        expected = np.unique(uid[np.isin(hashes, wanted)[code]])
        got = spilled_uids(str(tmp_path), wanted)
        assert got.dtype == expected.dtype and np.array_equal(got, expected)


def _keys_per_packet(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The obvious way: factorize every packet's key hash (codes in order of first appearance)."""
    import pandas as pd
    code, uniques = pd.factorize(cols["h"])
    first = np.array([np.flatnonzero(code == k)[0] for k in range(len(uniques))], np.int64)
    last = np.array([np.flatnonzero(code == k)[-1] for k in range(len(uniques))], np.int64)
    return {"h": np.asarray(uniques, np.uint64), "proto": cols["proto"][first], "first_ts": cols["ts"][first],
            "last_ts": cols["ts"][last], "first": first, "code": code.astype(np.int64)}


def test_keys_found_among_flows_equal_keys_hashed_per_packet() -> None:
    """partial._keys numbers keys from the flows (uids) instead of every packet's hash: the same
    summary, whatever the order in which flows start and however many flows a key has (a key's
    later flow may start before another key's first packet)."""
    from apnstrace.scale.partial import _keys
    rng = np.random.default_rng(11)
    for trial in range(40):
        keys = int(rng.integers(1, 60))
        hashes = rng.integers(0, 2**63, keys, dtype=np.int64).astype(np.uint64)
        flows_of_key = rng.integers(1, 4, keys)
        flow_key = np.repeat(np.arange(keys), flows_of_key)          # each flow belongs to one key
        rng.shuffle(flow_key)
        n = int(rng.integers(1, 400))
        # Packets, and their flows' uids: numbered in order of first packet (across chunks the
        # flow table does), or in any order (within a chunk it numbers new flows as grouped).
        flow_of_packet = rng.integers(0, len(flow_key), n)
        _, uid = np.unique(flow_of_packet, return_inverse=True)
        if trial % 2:
            renumber = rng.permutation(uid.max() + 1)
        else:
            order_of_first = np.argsort(np.unique(flow_of_packet, return_index=True)[1], kind="stable")
            renumber = np.empty_like(order_of_first)
            renumber[order_of_first] = np.arange(len(order_of_first))
        uid = renumber[uid].astype(np.int64)
        cols = {"uid": uid, "h": hashes[flow_key[flow_of_packet]], "proto": rng.integers(0, 20, n),
                "ts": np.sort(rng.random(n))}
        got, expected = _keys(cols), _keys_per_packet(cols)
        for name, value in expected.items():
            assert got[name].dtype == value.dtype, (trial, name)
            assert np.array_equal(got[name], value), (trial, name)

