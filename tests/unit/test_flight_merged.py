"""flight_streams._merged (one compiled pass) picks each merged flight write's fields as the numpy
steps it replaced: per flight of the first read, the second read's values where it has one."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from apnstrace.metadata import flight_streams as fs
from apnstrace.metadata.dns_feed import COMPILED

pytestmark = pytest.mark.skipif(not COMPILED, reason="take_flights runs only compiled")


def _reference(idx, at2, ts1, ts2, seen1, seen2, version1, version2, alert1, alert2, a1s, e1s, a2s, e2s):
    j = np.maximum(at2, 0)
    twice = at2 >= 0
    server_ts = np.where(seen1[idx], ts1[idx], ts2[j])
    valid = seen1[idx] | (twice & seen2[j])
    version = np.where(twice & (version2[j] >= 0), version2[j], version1[idx])
    alert = np.where(twice, alert2[j], alert1[idx])
    a1, e1 = a1s[idx], e1s[idx]
    first = ~twice | ((a1 >= 0) & (e1 > a1))
    return server_ts, valid, version, alert, np.where(first, a1, a2s[j]), np.where(first, e1, e2s[j])


@st.composite
def _reads(draw):
    n1, n2 = draw(st.integers(1, 12)), draw(st.integers(1, 12))

    def ints(n, values):
        return np.array(draw(st.lists(st.sampled_from(values), min_size=n, max_size=n)), np.int64)

    def read(n):
        seen = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool)
        ts = np.array(draw(st.lists(st.floats(0, 1e9), min_size=n, max_size=n)), np.float64)
        return (ts, seen, ints(n, [-1, 0x0303, 0x0304]), ints(n, [-1, 0x0228, 0x0100]), ints(n, [-1, 0, 3, 9]),
                ints(n, [-1, 0, 3, 5, 9]))
    idx = np.array(sorted(draw(st.sets(st.integers(0, n1 - 1), min_size=1))), np.int64)
    at2 = ints(len(idx), [-1, *range(n2)])
    r1, r2 = read(n1), read(n2)
    return (idx, at2, r1[0], r2[0], r1[1], r2[1], r1[2], r2[2], r1[3], r2[3], r1[4], r1[5], r2[4], r2[5])


@settings(max_examples=400, deadline=None, derandomize=True)
@given(_reads())
def test_compiled_merge_is_the_numpy_one(reads) -> None:
    got, want = fs._merged(*reads), _reference(*reads)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype.kind == w.dtype.kind and g.tolist() == w.tolist()
