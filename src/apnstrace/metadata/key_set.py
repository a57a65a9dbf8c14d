"""A set of flow-direction keys (uid * 2 + direction: small, dense, non-negative integers) that
answers for a whole chunk's keys at once: one growing bool array instead of a Python set."""
from __future__ import annotations

import threading

import numpy as np

from ..reader.walk import COMPILED, njit

__all__ = ["KeySet", "first_occurrences", "first_row_of", "isin_keys", "key_table"]

_MAX_TABLE = 1 << 26          # a wider span of keys goes to numpy's sort-based isin
_MAX_ROWS_TABLE = 1 << 24     # first_row_of's table: int32 rows
_TABLES = threading.local()    # the lookup table, kept per thread between calls (all False at rest)


class KeySet:
    def __init__(self) -> None:
        self.bits = np.zeros(1024, bool)

    def _room(self, top: int) -> None:
        if top >= len(self.bits):
            # x4, not x2: a third of the zeroing and copying as a run's keys come (0.7 -> 0.5 ms a run)
            grown = np.zeros(max(4 * len(self.bits), top + 1), bool)
            grown[:len(self.bits)] = self.bits
            self.bits = grown

    def add(self, key: int) -> None:
        self._room(key)
        self.bits[key] = True

    def update(self, keys: np.ndarray) -> None:
        if len(keys):
            self._room(int(keys.max()))
            self.bits[keys] = True

    def __contains__(self, key: int) -> bool:
        return key < len(self.bits) and bool(self.bits[key])

    def contains(self, keys: np.ndarray) -> np.ndarray:
        """Per key: in the set."""
        inside = keys < len(self.bits)
        out = np.zeros(len(keys), bool)
        out[inside] = self.bits[keys[inside]]
        return out


def isin_keys(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """np.isin for non-negative integer keys (flow-direction keys, uids, row numbers): a lookup
    table over the keys' span when that is small next to the arrays (the usual case: keys of one
    chunk's flows), else numpy's sort-based isin. The same answer either way.

    Compiled, the table is kept between calls and only the keys' entries are set and cleared:
    numpy's table isin zeroes a fresh one over the whole span each call, which cost more than
    the lookups (the collector calls this some twenty times per chunk)."""
    if len(values) == 0 or len(keys) == 0:
        return np.zeros(len(values), bool)
    if COMPILED and values.dtype == np.int64 and keys.dtype == np.int64:
        lo, hi = _span(keys)
        if hi - lo < _MAX_TABLE:
            out = np.empty(len(values), np.bool_)
            _lookup(values, keys, lo, hi, _table(hi - lo), out)
            return out
    span = int(keys.max()) - int(keys.min())
    if span <= max(8 * (len(values) + len(keys)), 1 << 20):
        return np.isin(values, keys, kind="table")
    return np.isin(values, keys)


@njit(cache=True)
def _span(keys):
    lo = hi = keys[0]
    for k in keys:
        lo = min(lo, k)
        hi = max(hi, k)
    return lo, hi


@njit(cache=True)
def _lookup(values, keys, lo, hi, table, out):
    for k in keys:
        table[k - lo] = True
    for i in range(len(values)):
        v = values[i]
        out[i] = lo <= v <= hi and table[v - lo]
    for k in keys:
        table[k - lo] = False


def first_occurrences(values: np.ndarray) -> np.ndarray:
    """Per element: the first with its value (np.unique's return_index, as a mask in place)."""
    out = np.zeros(len(values), bool)
    if len(values) == 0:
        return out
    values = np.ascontiguousarray(values, np.int64)
    lo, hi = _span(values)
    if not COMPILED or hi - lo >= _MAX_TABLE:
        _, first = np.unique(values, return_index=True)
        out[first] = True
        return out
    _first_seen(values, lo, _table(hi - lo), out)
    return out


def first_row_of(wanted: np.ndarray, keys: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each of `wanted`, the first of `rows` whose key (keys: one per row) it is; -1 if none."""
    out = np.full(len(wanted), -1, np.int64)
    if len(keys) == 0 or len(wanted) == 0:
        return out
    keys = np.ascontiguousarray(keys, np.int64)
    lo, hi = _span(keys)
    if not COMPILED or hi - lo >= _MAX_ROWS_TABLE or (len(rows) and int(rows.max()) >= 1 << 31):
        uniq, first = np.unique(keys, return_index=True)
        pos = np.minimum(np.searchsorted(uniq, wanted), len(uniq) - 1)
        hit = uniq[pos] == wanted
        out[hit] = rows[first[pos[hit]]]
        return out
    table = getattr(_TABLES, "rows", None)
    if table is None or len(table) <= hi - lo:
        table = _TABLES.rows = np.full(max(hi - lo + 1, 1 << 20), -1, np.int32)
    _first_rows(np.ascontiguousarray(wanted, np.int64), keys, np.ascontiguousarray(rows, np.int64), lo, hi, table,
                out)
    return out


def key_table(span: int) -> np.ndarray:
    """This thread's bool lookup table, for a caller's own kernel: it must leave it all False."""
    return _table(span)


def _table(span: int) -> np.ndarray:
    """This thread's lookup table (all False at rest), room for keys lo .. lo + span."""
    table = getattr(_TABLES, "table", None)
    if table is None or len(table) <= span:
        table = _TABLES.table = np.zeros(max(span + 1, 1 << 20), np.bool_)
    return table


@njit(cache=True)
def _first_seen(values, lo, table, out):
    for i in range(len(values)):
        v = values[i] - lo
        if not table[v]:
            table[v] = True
            out[i] = True
    for v in values:
        table[v - lo] = False


@njit(cache=True)
def _first_rows(wanted, keys, rows, lo, hi, table, out):
    """table: -1 at rest, indexed key - lo."""
    for i in range(len(keys)):
        k = keys[i] - lo
        if table[k] < 0:
            table[k] = rows[i]
    for i in range(len(wanted)):
        w = wanted[i]
        if lo <= w <= hi:
            out[i] = table[w - lo]
    for k in keys:
        table[k - lo] = -1
