"""Open flows in slots: the key map and slot columns agree with plain Python models, and the
table reuses finished flows' slots instead of growing."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

import apnstrace
from apnstrace.flows import partials as P
from apnstrace.flows.keymap import MIN_SIZE, KeyMap
from apnstrace.flows.slots import Slots
from apnstrace.options import FlowOptions
from apnstrace.pipeline import Session
from apnstrace.reader import iter_batches


def _check_map(km: KeyMap, model: dict[int, int], probe: np.ndarray) -> None:
    assert len(km) == len(model)
    want = np.array([model.get(int(h), -1) for h in probe], np.int64)
    np.testing.assert_array_equal(km.find(probe), want)


def test_key_map_matches_a_dict_through_inserts_deletes_and_growth() -> None:
    rng = np.random.default_rng(7)
    # Keys sharing their low bits land in one probe run: deletion must shift the run back.
    crowded = (rng.integers(0, 1 << 40, 3000, dtype=np.uint64) << np.uint64(20)) | np.uint64(5)
    spread = rng.integers(0, np.iinfo(np.int64).max, 20000, dtype=np.int64).astype(np.uint64)
    pool = np.unique(np.concatenate([crowded, spread]))
    rng.shuffle(pool)
    km, model = KeyMap(), {}
    for step in range(40):
        absent = np.array([h for h in pool[rng.integers(0, len(pool), 900)] if int(h) not in model], np.uint64)
        absent = np.unique(absent)
        slots = rng.integers(0, 1 << 30, len(absent))
        km.insert(absent, slots)
        model.update(zip(absent.tolist(), slots.tolist()))
        present = np.array(list(model), np.uint64)
        gone = present[rng.random(len(present)) < 0.3] if step % 3 else present[: len(present) // 2]
        km.delete(np.concatenate([gone, pool[:5]]))            # absent keys are skipped
        for h in gone.tolist() + pool[:5].tolist():
            model.pop(int(h), None)
        _check_map(km, model, pool[rng.integers(0, len(pool), 3000)])
    assert len(km.keys) > MIN_SIZE and 2 * len(km) <= len(km.keys)
    km.insert(np.array(list(model)[:10], np.uint64), np.arange(10))   # present keys: overwritten
    model.update(zip(list(model)[:10], range(10)))
    _check_map(km, model, pool)


def test_slots_reuse_freed_slots_and_keep_columns_through_growth() -> None:
    s = Slots({"deadline": (np.float64, np.inf)})
    part = {name: np.arange(3000).astype(dtype) for name, dtype in P.FIELDS.items()}
    first = s.alloc(1000)
    s.write(first, part, np.arange(1000))
    s.more["deadline"][first] = 1.0
    s.release(first[::2])
    assert len(s) == 500 and np.isinf(s.more["deadline"][first[::2]]).all()
    again = s.alloc(500)
    assert set(again.tolist()) == set(first[::2].tolist())         # freed slots first
    more = s.alloc(2000)                                              # grows, keeps what was written
    assert len(set(more.tolist()) | set(again.tolist()) | set(first[1::2].tolist())) == 3000
    np.testing.assert_array_equal(s.cols["uid"][first[1::2]], np.arange(1000)[1::2])
    assert (s.more["deadline"][first[1::2]] == 1.0).all() and np.isinf(s.more["deadline"][more]).all()
    np.testing.assert_array_equal(s.live_slots(), np.sort(np.concatenate([first, more])))


def _udp_pcap(frames: list[tuple[float, int]]) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)]
    for ts, sport in frames:
        udp = struct.pack("!HHHH", sport, 53, 16, 0) + b"x" * 8
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                         bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])) + udp
        out.append(struct.pack("<IIII", int(ts), int(round((ts % 1) * 1e6)), len(ip), len(ip)) + ip)
    return b"".join(out)


def test_expired_flows_free_their_slots_for_later_flows(tmp_path: Path) -> None:
    """Waves of 400 one-packet flows, each wave past the UDP timeout of the one before: the
    table holds one wave at a time, so its slots stay near one wave's worth."""
    frames = [(1000.0 + wave * 200 + i * 0.01, 10000 + wave * 400 + i) for wave in range(10) for i in range(400)]
    path = tmp_path / "waves.pcap"
    path.write_bytes(_udp_pcap(frames))
    options = FlowOptions(chunk_bytes=4096)
    session = Session(options, sequences=False)
    for raw in iter_batches(path, session.stats, options.chunk_bytes):
        session.add(raw)
        table = session.table
        assert table.open_flows == len(table.index) == len(table.open["uid"]) <= 400 + 100
        np.testing.assert_array_equal(np.sort(table.open_column("uid")), np.sort(table.open["uid"]))
    assert table.slots.capacity <= 1024
    flows = session.finish().flows
    assert len(flows) == 4000 and set(flows["pkts_c2s"]) == {1}
    whole = apnstrace.analyze(path, options=FlowOptions(chunk_bytes=1 << 20), sequences=False).flows
    np.testing.assert_array_equal(whole["client_port"].to_numpy(), flows["client_port"].to_numpy())
