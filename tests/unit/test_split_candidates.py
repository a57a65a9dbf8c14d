"""split_candidates (one compiled gather) against the numpy steps it replaced."""
import numpy as np
from hypothesis import given, settings, strategies as st

from apnstrace.metadata import fast_streams as F


def _reference(rows, cand, role, key, off, cap, ts):
    is_tls = role[cand] <= F.FLIGHT
    order = np.concatenate([cand[is_tls], cand[~is_tls]])
    r = rows[order]
    return order, key[r], off[r], cap[r], ts[r], int(is_tls.sum())


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 60), st.integers(1, 200), st.data())
def test_split_matches_numpy(n_rows, n_packets, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    rows = np.sort(rng.choice(n_packets, size=min(n_rows, n_packets), replace=False)).astype(np.int64)
    cand = np.flatnonzero(rng.random(len(rows)) < data.draw(st.floats(0, 1))).astype(np.int64)
    role = rng.integers(0, 5, len(rows)).astype(np.int64)
    key = rng.integers(0, 1 << 40, n_packets).astype(np.int64)
    off = rng.integers(0, 1 << 26, n_packets).astype(np.int64)
    cap = rng.integers(0, 1500, n_packets).astype(np.int64)
    ts = rng.random(n_packets) * 1e9
    got = F.split_candidates(rows, cand, role, key, off, cap, ts)
    want = _reference(rows, cand, role, key, off, cap, ts)
    assert got[5] == want[5]
    for g, w in zip(got[:5], want[:5]):
        assert g.dtype == w.dtype and np.array_equal(g, w)
