"""sequences/last_payload.py: the last payload time per open flow direction, carried between
chunks in a hash map, equals a plain dict pruned to the open flows after every chunk (what the
activity collector kept before: a sorted array merged and filtered per chunk)."""
from __future__ import annotations

import numpy as np
import pytest

from apnstrace.sequences import last_payload
from apnstrace.sequences.last_payload import LastPayload


@pytest.mark.parametrize("seed", range(12))
def test_matches_a_dict_pruned_to_open_flows(seed, monkeypatch) -> None:
    monkeypatch.setattr(last_payload, "REBUILD_MIN", 64)       # rebuild often
    rng = np.random.default_rng(seed)
    carried = LastPayload()
    want: dict[int, float] = {}
    next_uid, open_uids = 0, np.empty(0, np.int64)
    for chunk in range(60):
        # A chunk touches some open flows and starts new ones; some flows finish.
        new = np.arange(next_uid, next_uid + rng.integers(0, 40))
        next_uid += len(new)
        touched = np.union1d(rng.choice(open_uids, min(len(open_uids), rng.integers(0, 30)), replace=False)
                             if len(open_uids) else np.empty(0, np.int64), new)
        keys = np.unique(touched * 2 + rng.integers(0, 2, len(touched)))
        got = carried.get(keys)
        assert got.tolist() == [want.get(k, -np.inf) for k in keys.tolist()]
        times = chunk + rng.random(len(keys))
        open_uids = np.union1d(open_uids, new)
        open_uids = open_uids[rng.random(len(open_uids)) > 0.2]          # flows finishing
        carried.put(keys, times, open_uids)
        want.update(zip(keys.tolist(), times.tolist()))
        want = {k: v for k, v in want.items() if k // 2 in set(open_uids.tolist())}
        # Finished flows' entries may linger (never read again) but only so many.
        held = carried.keys()
        assert set(want) <= set(held.tolist())
        assert len(held) <= max(last_payload.REBUILD_MIN, 8 * len(open_uids)) or len(held) == len(want)


def test_rebuild_keeps_only_open_flows_and_their_times(monkeypatch) -> None:
    monkeypatch.setattr(last_payload, "REBUILD_MIN", 10)
    carried = LastPayload()
    keys = np.arange(0, 40, dtype=np.int64)                 # uids 0..19, both directions
    carried.put(keys, keys + 0.5, open_uids=np.array([3, 7]))
    assert carried.keys().tolist() == [6, 7, 14, 15]
    assert carried.get(np.array([6, 7, 14, 15, 8])).tolist() == [6.5, 7.5, 14.5, 15.5, -np.inf]
