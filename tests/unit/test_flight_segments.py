"""flight_streams._segments (a compiled pass with a table of the flights' keys) groups each
flight's rows exactly as the numpy steps it replaced (_segments_sorted, sorts and searches):
its rows of the feed in feed order (and their places in the feed), then its later rows after
its start not fed, in order."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from apnstrace.metadata import flight_streams as fs
from apnstrace.metadata.dns_feed import COMPILED

pytestmark = pytest.mark.skipif(not COMPILED, reason="take_flights runs only compiled")


@st.composite
def _chunks(draw):
    """A chunk's keys, the feed `rows` (distinct, in any order), `later` (ascending, may overlap
    `rows`) and some of the feed's keys as flights (their first feed row, their feed row count)."""
    n = draw(st.integers(1, 60))
    base = draw(st.sampled_from([0, 7, 1 << 40]))
    key = base + np.array(draw(st.lists(st.integers(0, 12), min_size=n, max_size=n)), np.int64)
    rows = np.array(draw(st.permutations(range(n)))[:draw(st.integers(1, n))], np.int64)
    later = np.array(sorted(draw(st.sets(st.integers(0, n - 1)))), np.int64)
    fed_keys = sorted(set(key[rows].tolist()))
    skeys = np.array(sorted(draw(st.sets(st.sampled_from(fed_keys), min_size=1))), np.int64)
    starts = np.array([rows[key[rows] == k][0] for k in skeys], np.int64)
    n1 = np.array([(key[rows] == k).sum() for k in skeys], np.int64)
    return key, rows, later, skeys, starts, n1


@settings(max_examples=400, deadline=None, derandomize=True)
@given(_chunks())
def test_compiled_segments_are_the_sorted_ones(chunk) -> None:
    got, want = fs._segments(*chunk), fs._segments_sorted(*chunk)
    assert len(got) == len(want) == 6
    for g, w in zip(got, want):
        assert g.tolist() == w.tolist()
    key, rows, later, skeys, starts, n1 = chunk
    feed_row, feed_at = got[0], got[1]
    assert rows[feed_at].tolist() == feed_row.tolist()
    # every feed row of a flight's key, and no other
    assert sorted(feed_at.tolist()) == np.flatnonzero(np.isin(key[rows], skeys)).tolist()


def test_a_span_too_wide_for_a_table_goes_to_numpy() -> None:
    key = np.array([0, 1 << 30, 5, 0, 1 << 30], np.int64)
    rows, later = np.array([1, 0, 2], np.int64), np.array([3, 4], np.int64)
    skeys, starts, n1 = np.array([0, 1 << 30], np.int64), np.array([0, 1], np.int64), np.array([1, 1], np.int64)
    got = fs._segments(key, rows, later, skeys, starts, n1)
    assert [g.tolist() for g in got] == [[0, 1], [1, 0], [0, 1], [0, 3, 1, 4], [0, 2], [2, 2]]
