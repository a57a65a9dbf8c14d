"""flight_streams._chosen (one compiled call) picks the same flights as the numpy steps it
replaced (_chosen_numpy): keys, start rows and row counts, whatever the feed order, the starts,
pick.py's peek bits, the streams open before and the directions read already."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from apnstrace.metadata import flight_streams as fs
from apnstrace.metadata.dns_feed import COMPILED
from apnstrace.metadata.key_set import KeySet

pytestmark = pytest.mark.skipif(not COMPILED, reason="take_flights runs only compiled")


@st.composite
def _chunks(draw):
    n = draw(st.integers(1, 50))
    base = draw(st.sampled_from([0, 2, 1 << 33]))
    key = base + np.array(draw(st.lists(st.integers(0, 19), min_size=n, max_size=n)), np.int64)
    rows = np.array(draw(st.permutations(range(n)))[:draw(st.integers(1, n))], np.int64)
    # Mostly TLS starts with a ClientHello or a flight's first byte peeked, so that some are taken.
    is_start = np.array(draw(st.lists(st.sampled_from([True, True, False]), min_size=n, max_size=n)), bool)
    start_kind = np.array(draw(st.lists(st.sampled_from([0, 1, 1, 1, 2]), min_size=n, max_size=n)), np.int64)
    peek = np.array(draw(st.lists(st.sampled_from([0, 8 | 1, 8 | 2, 8 | 2, 2, 8, 4 | 8 | 2]), min_size=n,
                                  max_size=n)), np.uint8)
    keys = sorted(set(key.tolist()) | {k ^ 1 for k in key.tolist()})
    pending = np.array(draw(st.lists(st.sampled_from(keys), max_size=4)), np.int64)
    done = KeySet()
    done.update(np.array(draw(st.lists(st.sampled_from(keys), max_size=3)), np.int64))
    return key, rows, is_start, start_kind, pending, peek, done


@settings(max_examples=500, deadline=None, derandomize=True)
@given(_chunks())
def test_compiled_choice_is_the_numpy_one(chunk) -> None:
    key, rows, is_start, start_kind, pending, peek, done = chunk
    got = fs._chosen(None, None, key, rows, is_start, start_kind, pending, peek, done)
    want = fs._chosen_numpy(None, None, key, rows, is_start, start_kind, pending, peek, done)
    assert [g.tolist() for g in got] == [w.tolist() for w in want]


def test_the_strategy_takes_flights() -> None:
    """The comparison has teeth: the numpy steps take some flights from such chunks."""
    taken = []

    @settings(max_examples=200, deadline=None, derandomize=True)
    @given(_chunks())
    def count(chunk):
        key, rows, is_start, start_kind, pending, peek, done = chunk
        taken.append(len(fs._chosen_numpy(None, None, key, rows, is_start, start_kind, pending, peek, done)[0]))
    count()
    assert sum(t > 0 for t in taken) > 20
