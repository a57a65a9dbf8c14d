"""row_groups: rows grouped by equal values, read from plain and looked-up columns, numbered as
pd.factorize numbers the same rows' tuples."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from apnstrace.classify.row_groups import COMPILED, row_groups

pytestmark = pytest.mark.skipif(not COMPILED, reason="compiled kernels only (numba)")


def _expected(columns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    key = pd.MultiIndex.from_arrays(columns)
    group, uniq = pd.factorize(key)
    first = np.empty(len(uniq), np.int64)
    first[group[::-1]] = np.arange(len(group) - 1, -1, -1)
    return group, first


@pytest.mark.parametrize("n, seed", [(1, 0), (7, 1), (5000, 2), (40000, 3)])
def test_groups_as_factorize_of_the_looked_up_values(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    direct = (rng.integers(-1, 4, n), rng.integers(0, 3, n) * 1000)
    rows, lookups = [], []
    for size in (1, 5, 300):
        # rows into a lookup (-1: its last slot); the lookup maps several rows to one value
        rows.append(np.where(rng.random(n) < 0.4, -1, rng.integers(0, size, n)))
        lookups.append(np.append(rng.integers(-1, 3, size), -1))
    group, first = row_groups(direct, tuple(rows), tuple(lookups))
    values = list(direct) + [lk[r] for r, lk in zip(rows, lookups)]    # numpy: -1 is the last slot
    want_group, want_first = _expected(values)
    assert group.tolist() == want_group.tolist()
    assert first.tolist() == want_first.tolist()


@pytest.mark.parametrize("n, seed", [(1, 0), (9, 1), (5000, 2)])
def test_lookups_through_shared_rows_group_as_each_read_alone(n: int, seed: int) -> None:
    """Several lookups read through the same rows (as attach's text columns are, views of one
    array) are combined first: the groups stay those of every value read on its own."""
    rng = np.random.default_rng(seed)
    size = 40
    shared = np.where(rng.random(n) < 0.5, -1, rng.integers(0, size, n))
    other = rng.integers(-1, 6, n)
    lookups = [np.append(rng.integers(-1, k, size), -1) for k in (2, 3, 2, 4)] + [np.append(rng.integers(0, 3, 6), -1)]
    rows = [shared, shared.view(), shared, shared.view(), other]
    direct = (rng.integers(0, 2, n),)
    group, first = row_groups(direct, tuple(rows), tuple(lookups))
    want_group, want_first = _expected(list(direct) + [lk[r] for r, lk in zip(rows, lookups)])
    assert group.tolist() == want_group.tolist()
    assert first.tolist() == want_first.tolist()


def test_many_groups_grow_the_table() -> None:
    n = 20000
    direct = (np.arange(n) // 2, np.zeros(n, np.int64))
    group, first = row_groups(direct, (np.zeros(n, np.int64),), (np.array([7, -1]),))
    assert group.tolist() == (np.arange(n) // 2).tolist()
    assert first.tolist() == list(range(0, n, 2))


def test_empty() -> None:
    group, first = row_groups((np.zeros(0, np.int64),), (np.zeros(0, np.int64),), (np.array([-1]),))
    assert len(group) == 0 and len(first) == 0


def _ranges(columns: list[np.ndarray], widen: int = 0) -> tuple[tuple[int, int], ...]:
    return tuple((int(c.min()) - widen, int(c.max()) + widen) if len(c) else (0, 0) for c in columns)


@pytest.mark.parametrize("n, seed", [(1, 0), (7, 1), (5000, 2), (40000, 3)])
@pytest.mark.parametrize("shared", [False, True])
def test_packed_keys_group_as_factorize(n: int, seed: int, shared: bool) -> None:
    """With the columns' ranges given, each row's values are packed into one key: the same
    groups, also with ranges wider than the values, and through combined shared rows."""
    rng = np.random.default_rng(seed)
    direct = (rng.integers(-1, 70000, n) // rng.integers(1, 5000, n), rng.integers(0, 3, n) * 1000)
    base = np.where(rng.random(n) < 0.4, -1, rng.integers(0, 300, n))
    rows, lookups = [], []
    for k, size in enumerate((1, 5, 300, 300)):
        r = base if shared and k >= 2 else np.where(rng.random(n) < 0.4, -1, rng.integers(0, size, n))
        rows.append(r)
        lookups.append(np.append(rng.integers(-1, 3 + 50 * k, size), -1))
    values = list(direct) + [lk[r] for r, lk in zip(rows, lookups)]
    want_group, want_first = _expected(values)
    for widen in (0, 3):
        ranges = _ranges(list(direct), widen) + _ranges(lookups, widen)
        group, first = row_groups(direct, tuple(rows), tuple(lookups), ranges)
        assert group.tolist() == want_group.tolist()
        assert first.tolist() == want_first.tolist()


@pytest.mark.parametrize("low, high", [(0, 10), (-1, 5), (5, 9), (0, 1 << 40)])
def test_values_outside_the_given_ranges_or_too_many_keys_fall_back(low: int, high: int) -> None:
    rng = np.random.default_rng(7)
    n = 3000
    direct = (rng.integers(-1, 12, n), rng.integers(0, 1 << 20, n))
    rows = (np.where(rng.random(n) < 0.3, -1, rng.integers(0, 50, n)),)
    lookups = (np.append(rng.integers(-1, 8, 50), -1),)
    ranges = ((low, high), (0, (1 << 20) - 1), (low, high))
    group, first = row_groups(direct, rows, lookups, ranges)
    want_group, want_first = _expected(list(direct) + [lookups[0][rows[0]]])
    assert group.tolist() == want_group.tolist()
    assert first.tolist() == want_first.tolist()
