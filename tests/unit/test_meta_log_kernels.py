"""meta_log's compiled helpers against plain references: uid positions, the per-kind picks
taken in sequence order, client_dir per uid."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings, strategies as st

from apnstrace.metadata import meta_log as M

UIDS = st.lists(st.integers(0, 60), max_size=60)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(UIDS, st.sampled_from([0, 5, 10**9]))
def test_places_are_unique_and_search(uids, shift) -> None:
    uid = np.array(uids, np.int64) + shift
    if len(uid) > 1 and shift == 10**9:
        uid[0] = 0                          # a span too wide for a table: the sorting path
    distinct, places = M._places(uid)
    expected = np.unique(uid)
    assert distinct.dtype == np.int64 and distinct.tolist() == expected.tolist()
    assert places.tolist() == np.searchsorted(expected, uid).tolist()


def reference_picks(places, seq, flags, modes, n):
    """Each pick per uid, taking the writes in seq order as a per-flow record would."""
    picked = np.full((len(modes), n), -1, np.int64)
    for f, mode in enumerate(modes):
        for u in range(n):
            rows = sorted((r for r in range(len(places)) if places[r] == u), key=lambda r: seq[r])
            if not rows:
                continue
            flagged = [r for r in rows if flags[f, r]]
            if mode == M._LAST:
                got = rows[-1]
            elif mode == M._FIRST_WRITE:
                got = rows[0]
            elif mode == M._NEW_OR_OLD:
                got = flagged[-1] if flagged else -1
            elif mode == M._FIRST:
                got = flagged[0] if flagged else -1
            else:                           # _OLD_OR_NEW
                got = flagged[0] if flagged else rows[-1]
            picked[f, u] = got
    return picked


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.data())
def test_picks_follow_the_rules_in_sequence_order(data) -> None:
    m = data.draw(st.integers(0, 30))
    n = data.draw(st.integers(1, 6))
    places = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m)), np.int64)
    seq = np.array(data.draw(st.permutations(range(m))), np.int64) * 3
    if data.draw(st.booleans()):
        seq = np.sort(seq)
    modes = np.array(data.draw(st.lists(st.integers(0, 4), min_size=1, max_size=6)), np.int64)
    flags = np.array(data.draw(st.lists(st.booleans(), min_size=m * len(modes), max_size=m * len(modes))),
                     np.bool_).reshape(len(modes), m)
    picked = np.full((len(modes), n), -1, np.int64)
    ordered = M._ascending(seq) if hasattr(M, "_ascending") else bool((seq[1:] > seq[:-1]).all())
    order = seq[:0] if ordered else np.argsort(seq, kind="stable")
    M._pick(places, order, ordered, flags, modes, picked)
    assert picked.tolist() == reference_picks(places, seq, flags, modes, n).tolist()


DIRS = st.lists(st.sampled_from([0, 1, None]), max_size=8)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.data())
def test_directions_are_the_hellos_else_the_requests(data) -> None:
    hello = data.draw(DIRS)
    request = data.draw(DIRS)
    n = data.draw(st.integers(0, 8))
    hello_at = np.array(data.draw(st.lists(st.integers(-1, len(hello) - 1), min_size=n, max_size=n)), np.int64)
    request_at = np.array(data.draw(st.lists(st.integers(-1, len(request) - 1), min_size=n, max_size=n)),
                          np.int64)
    got = M._directions(hello_at, pa.array(hello, pa.int8()), request_at, pa.array(request, pa.int8()))
    expected = [hello[h] if h >= 0 else (request[r] if r >= 0 else None)
                for h, r in zip(hello_at.tolist(), request_at.tolist())]
    assert got.type == pa.int8() and got.to_pylist() == expected
    got.validate(full=True)
