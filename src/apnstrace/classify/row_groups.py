"""Rows of several integer code columns grouped by equal values, in one compiled hashing pass.

The classifier evaluates its rules once per distinct evidence tuple (ten code columns per
flow). Building that tuple's key column by column took a 198K-row temporary per column and a
pd.factorize (~5.6 ms on the engine benchmark). Here the columns are read where they are, most
as attach() left them (a row of source values per flow, a code per source value). Groups are
numbered in order of first appearance, as pd.factorize numbers them, so they are the same.

Columns that read their lookups through the same rows (attach's five text columns: one row of
metadata records per flow) are first combined into one lookup over those rows (a pass over the
54K records instead of four more reads per flow: ~3.0 -> ~2.1 ms on the engine benchmark).
"""
from __future__ import annotations

import numpy as np

from ..reader.walk import COMPILED, njit

if COMPILED:
    from numba import literal_unroll

__all__ = ["COMPILED", "row_groups"]


def row_groups(direct: tuple[np.ndarray, ...], rows: tuple[np.ndarray, ...], lookups: tuple[np.ndarray, ...],
               ranges: tuple[tuple[int, int], ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a table grouped by equal values: (group per row, numbered in order of first
    appearance; the first row of each group). The table's columns: each of `direct` (int64, one
    value per row), and each lookups[j][rows[j]] (rows[j] = -1: the lookup's last slot), read
    in place (no column of values per row is spelled out). `ranges`: the caller's (low, high)
    of each column's values (direct ones first), when it knows them: a row's values then pack
    into one key (checked as read; a value out of its range falls back to reading them apart)."""
    rows, lookups, ranges = _shared_rows_combined(rows, lookups, ranges)
    n = len(direct[0])
    group = np.empty(n, np.int64)
    first = np.empty(max(n, 1), np.int64)
    pairs = tuple((_read_only(r), _read_only(lk)) for r, lk in zip(rows, lookups))
    direct = tuple(_read_only(c) for c in direct)
    packed = _packing(ranges) if n and ranges is not None else None
    distinct = -1
    if packed is not None:
        distinct = _group_keys(direct, pairs, *packed, group, first)
    if distinct < 0:
        distinct = _group_rows(direct, pairs, group, first)
    return group, first[:distinct]


def _packing(ranges: tuple[tuple[int, int], ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(low, high - low, stride) per column that pack a row's values into one int64 key (the sum
    of (value - low) * stride: distinct tuples, distinct keys); None when the ranges multiply
    past 2**62. One key per row hashes and compares at once (~1.9 -> ~1.5 ms on the engine
    benchmark: its tuples fit in ~45 bits)."""
    lows, spans, strides = [], [], []
    size = 1                                   # Python int: no overflow while checking
    for low, high in ranges:
        low, high = int(low), max(int(high), int(low))
        lows.append(low)
        spans.append(high - low)
        strides.append(size)
        size *= high - low + 1
        if size > 1 << 62:
            return None
    return np.array(lows, np.int64), np.array(spans, np.int64), np.array(strides, np.int64)


def _shared_rows_combined(rows: tuple[np.ndarray, ...], lookups: tuple[np.ndarray, ...],
                          ranges: tuple[tuple[int, int], ...] | None = None):
    """(rows, lookups, ranges) with the lookups read through the same rows (same memory, same
    length) replaced by one: each slot's group among the slots by their values in all of them.
    Rows group alike through it exactly as through the lookups it replaces."""
    shared: dict[tuple, list[int]] = {}
    for j, (r, lk) in enumerate(zip(rows, lookups)):
        r = np.asarray(r)
        shared.setdefault((r.__array_interface__["data"][0], r.shape, r.strides, r.dtype.str, len(lk)), []).append(j)
    if all(len(members) == 1 for members in shared.values()):
        return rows, lookups, ranges
    direct_ranges = None if ranges is None else ranges[:len(ranges) - len(lookups)]
    lookup_ranges = None if ranges is None else ranges[len(ranges) - len(lookups):]
    out_rows, out_lookups, out_ranges = [], [], []
    for members in shared.values():
        if len(members) == 1:
            out_rows.append(rows[members[0]])
            out_lookups.append(lookups[members[0]])
            out_ranges.append(None if ranges is None else lookup_ranges[members[0]])
            continue
        first_lookup, *others = [lookups[j] for j in members]
        slots = len(first_lookup)
        inner = None if ranges is None else tuple(lookup_ranges[j] for j in members[1:]) + (lookup_ranges[members[0]],)
        # The slots grouped by the tuple of their values: the first lookup read through every slot.
        combined, firsts = row_groups(tuple(others), (np.arange(slots, dtype=np.int64),), (first_lookup,), inner)
        out_rows.append(rows[members[0]])
        out_lookups.append(combined)
        out_ranges.append((0, len(firsts) - 1))
    if ranges is not None:
        ranges = tuple(direct_ranges) + tuple(out_ranges)
    return tuple(out_rows), tuple(out_lookups), ranges


def _read_only(column: np.ndarray) -> np.ndarray:
    """An int64 view that cannot be written: one array type for every column (a tuple of
    arrays compiles as one type only when they are all alike)."""
    view = np.ascontiguousarray(column, np.int64).view()
    view.flags.writeable = False
    return view


@njit(cache=True)
def _group_keys(direct, pairs, lows, spans, strides, group, first):
    """_group_rows with each row's values packed into one key; -1 when a value lies outside
    its column's range (nothing is numbered then)."""
    n = len(group)
    held = np.empty(len(first), np.int64)         # each group's key
    hashes = np.empty(len(first), np.uint64)
    size = 1024
    slots = np.full(size, -1, np.int64)
    count = 0
    for i in range(n):
        key = 0
        c = 0
        for col in direct:
            v = col[i] - lows[c]
            if np.uint64(v) > np.uint64(spans[c]):          # below low (wraps) or past high
                return -1
            key += v * strides[c]
            c += 1
        for pair in literal_unroll(pairs):     # unrolled: no dispatch on the column per row
            v = pair[1][pair[0][i]] - lows[c]   # row -1: the lookup's last slot
            if np.uint64(v) > np.uint64(spans[c]):
                return -1
            key += v * strides[c]
            c += 1
        h = np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)
        mask = size - 1
        s = _slot(h, mask)
        while True:
            g = slots[s]
            if g < 0 or held[g] == key:
                break
            s = (s + 1) & mask
        if g >= 0:
            group[i] = g
            continue
        held[count] = key
        hashes[count] = h
        slots[s] = count
        first[count] = i
        group[i] = count
        count += 1
        if 2 * count > size:                    # keep the table at most half full
            size *= 4
            slots = _regrown(hashes, count, size)
    return count


@njit(cache=True)
def _group_rows(direct, pairs, group, first):
    n = len(group)
    width = len(direct) + len(pairs)
    values = np.empty(width, np.int64)            # this row's
    held = np.empty((1024, width), np.int64)      # each group's (no re-reading its first row)
    size = 1024
    slots = np.full(size, -1, np.int64)
    hashes = np.empty(len(first), np.uint64)
    count = 0
    for i in range(n):
        c = 0
        for col in direct:
            values[c] = col[i]
            c += 1
        for pair in literal_unroll(pairs):     # unrolled: no dispatch on the column per row
            values[c] = pair[1][pair[0][i]]    # row -1: the lookup's last slot
            c += 1
        h = np.uint64(0x9E3779B97F4A7C15)
        for c in range(width):                  # one multiply per value; mixed once below
            h = (h ^ np.uint64(values[c])) * np.uint64(0x9E3779B97F4A7C15)
        h ^= h >> np.uint64(29)
        mask = size - 1
        s = _slot(h, mask)
        while True:
            g = slots[s]
            if g < 0:
                break
            if hashes[g] == h:
                same = True
                for c in range(width):
                    if held[g, c] != values[c]:
                        same = False
                        break
                if same:
                    break
            s = (s + 1) & mask
        if g >= 0:
            group[i] = g
            continue
        if count == len(held):
            more = np.empty((2 * count, width), np.int64)
            more[:count] = held
            held = more
        held[count] = values
        slots[s] = count
        hashes[count] = h
        first[count] = i
        group[i] = count
        count += 1
        if 2 * count > size:                    # keep the table at most half full
            size *= 4
            slots = _regrown(hashes, count, size)
    return count


@njit(cache=True, inline="always")
def _slot(h, mask):
    """A hash's first slot in a table of mask + 1 slots (open addressing, linear probing)."""
    return np.int64((h ^ (h >> np.uint64(32))) & np.uint64(mask))


@njit(cache=True)
def _regrown(hashes, count, size):
    """The slot table, `size` slots, of the first `count` groups with their hashes."""
    mask = size - 1
    slots = np.full(size, -1, np.int64)
    for q in range(count):
        s = _slot(hashes[q], mask)
        while slots[s] >= 0:
            s = (s + 1) & mask
        slots[s] = q
    return slots
