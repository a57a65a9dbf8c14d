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

from ..reader.walk import njit

COMPILED = njit.__module__.startswith("numba")
if COMPILED:
    from numba import literal_unroll

__all__ = ["COMPILED", "row_groups"]


def row_groups(direct: tuple[np.ndarray, ...], rows: tuple[np.ndarray, ...],
               lookups: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a table grouped by equal values: (group per row, numbered in order of first
    appearance; the first row of each group). The table's columns: each of `direct` (int64, one
    value per row), and each lookups[j][rows[j]] (rows[j] = -1: the lookup's last slot), read
    in place (no column of values per row is spelled out)."""
    rows, lookups = _shared_rows_combined(rows, lookups)
    n = len(direct[0])
    group = np.empty(n, np.int64)
    first = np.empty(max(n, 1), np.int64)
    pairs = tuple((_read_only(r), _read_only(lk)) for r, lk in zip(rows, lookups))
    distinct = _group_rows(tuple(_read_only(c) for c in direct), pairs, group, first)
    return group, first[:distinct]


def _shared_rows_combined(rows: tuple[np.ndarray, ...], lookups: tuple[np.ndarray, ...]):
    """(rows, lookups) with the lookups read through the same rows (same memory, same length)
    replaced by one: each slot's group among the slots by their values in all of them. Rows
    group alike through it exactly as through the lookups it replaces."""
    shared: dict[tuple, list[int]] = {}
    for j, (r, lk) in enumerate(zip(rows, lookups)):
        r = np.asarray(r)
        shared.setdefault((r.__array_interface__["data"][0], r.shape, r.strides, r.dtype.str, len(lk)), []).append(j)
    if all(len(members) == 1 for members in shared.values()):
        return rows, lookups
    out_rows, out_lookups = [], []
    for members in shared.values():
        if len(members) == 1:
            out_rows.append(rows[members[0]])
            out_lookups.append(lookups[members[0]])
            continue
        first_lookup, *others = [lookups[j] for j in members]
        slots = len(first_lookup)
        # The slots grouped by the tuple of their values: the first lookup read through every slot.
        combined, _ = row_groups(tuple(others), (np.arange(slots, dtype=np.int64),), (first_lookup,))
        out_rows.append(rows[members[0]])
        out_lookups.append(combined)
    return tuple(out_rows), tuple(out_lookups)


def _read_only(column: np.ndarray) -> np.ndarray:
    """An int64 view that cannot be written: one array type for every column (a tuple of
    arrays compiles as one type only when they are all alike)."""
    view = np.ascontiguousarray(column, np.int64).view()
    view.flags.writeable = False
    return view


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
        s = np.int64((h ^ (h >> np.uint64(32))) & np.uint64(mask))
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
            mask = size - 1
            slots = np.full(size, -1, np.int64)
            for q in range(count):
                s = np.int64((hashes[q] ^ (hashes[q] >> np.uint64(32))) & np.uint64(mask))
                while slots[s] >= 0:
                    s = (s + 1) & mask
                slots[s] = q
    return count
