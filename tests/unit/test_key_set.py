"""metadata/key_set.py: isin_keys, first_occurrences and first_row_of (compiled, with tables kept
between calls) against the numpy expressions they stand for."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from apnstrace.metadata.key_set import KeySet, first_occurrences, first_row_of, isin_keys

_ints = st.lists(st.integers(0, 5000), max_size=60)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(_ints, _ints, st.integers(0, 1 << 40))
def test_isin_keys_equals_np_isin(values: list[int], keys: list[int], shift: int) -> None:
    v, k = np.array(values, np.int64) + shift, np.array(keys, np.int64) + shift
    assert isin_keys(v, k).tolist() == np.isin(v, k).tolist()
    # the table is left clean: a second call with other keys does not see the first call's
    assert isin_keys(v, k[:1]).tolist() == np.isin(v, k[:1]).tolist()


def test_isin_keys_wide_spans_and_other_dtypes() -> None:
    v = np.array([0, 5, 1 << 40, 7], np.int64)
    k = np.array([1 << 40, 5], np.int64)           # span past the table: numpy's isin
    assert isin_keys(v, k).tolist() == [False, True, True, False]
    assert isin_keys(v.astype(np.int32)[:2], np.array([5], np.int32)).tolist() == [False, True]
    assert isin_keys(np.empty(0, np.int64), k).tolist() == []
    assert isin_keys(v, np.empty(0, np.int64)).tolist() == [False] * 4


def test_key_set_contains() -> None:
    s = KeySet()
    s.update(np.array([3, 5000], np.int64))
    s.add(7)
    assert s.contains(np.array([3, 4, 7, 5000, 10 ** 6], np.int64)).tolist() == [True, False, True, True, False]
    assert 7 in s and 8 not in s


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.lists(st.integers(0, 1 << 16), max_size=20), max_size=12))
def test_key_set_is_a_set_as_it_grows(steps: list[list[int]]) -> None:
    """KeySet (its bits grown as keys come, ones kept) against a Python set, after each step."""
    s, model = KeySet(), set()
    for i, keys in enumerate(steps):
        if i % 3 == 2 and keys:
            s.add(keys[0])
            model.add(keys[0])
        else:
            s.update(np.array(keys, np.int64))
            model.update(keys)
        probe = np.arange(0, max(model, default=0) + 2, dtype=np.int64)
        assert np.flatnonzero(s.contains(probe)).tolist() == sorted(model)
        assert all(k in s for k in model)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(_ints, st.integers(0, 1 << 40))
def test_first_occurrences_equals_np_unique_return_index(values: list[int], shift: int) -> None:
    v = np.array(values, np.int64) + shift
    _, first = np.unique(v, return_index=True)
    expected = np.zeros(len(v), bool)
    expected[first] = True
    assert first_occurrences(v).tolist() == expected.tolist()
    assert first_occurrences(v).tolist() == expected.tolist()      # the table was left clean


@settings(max_examples=300, deadline=None, derandomize=True)
@given(_ints, _ints, st.integers(0, 1 << 40))
def test_first_row_of_is_the_first_row_with_the_key(wanted: list[int], keys: list[int], shift: int) -> None:
    w, k = np.array(wanted, np.int64) + shift, np.array(keys, np.int64) + shift
    rows = np.arange(len(k), dtype=np.int64) * 3 + 1
    expected = [int(rows[k.tolist().index(x)]) if x in k.tolist() else -1 for x in w.tolist()]
    assert first_row_of(w, k, rows).tolist() == expected
    assert first_row_of(w, k, rows).tolist() == expected


def test_first_helpers_with_wide_spans() -> None:
    v = np.array([5, 1 << 40, 5, 0, 1 << 40], np.int64)
    assert first_occurrences(v).tolist() == [True, True, False, True, False]
    assert first_row_of(np.array([0, 5, 1 << 40, 9], np.int64), v, np.arange(5, dtype=np.int64)).tolist() == \
        [3, 0, 1, -1]
