"""Early payloads of flow directions whose stream has not started, kept across chunks as columns.

A server segment can overtake its flight's first segment across a chunk boundary; in one chunk
the collector reads it 'ahead' of the start, so a later chunk must be able to as well. Most
held payloads are never asked for (directions that never start a stream), so holding costs one
numpy gather per chunk, and only the few asked for become Python bytes.
"""
from __future__ import annotations

import numpy as np

from ..reader.walk import COMPILED, njit
from .key_set import _MAX_TABLE, _span, isin_keys, key_table

__all__ = ["HeldSegments", "gather_ranges"]


def _ranges(start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Concatenated arange(start[i], start[i] + length[i])."""
    ends = np.cumsum(length)
    return np.arange(int(ends[-1]) if len(ends) else 0, dtype=np.int64) + np.repeat(start - (ends - length), length)


def gather_ranges(src: np.ndarray, start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """src[_ranges(start, length)]: the byte ranges back to back (compiled: no index arrays)."""
    out = np.empty(int(np.sum(length)), np.uint8)
    gather_ranges_into(src, start, length, out)
    return out


def gather_ranges_into(src: np.ndarray, start: np.ndarray, length: np.ndarray, out: np.ndarray) -> None:
    """gather_ranges written into `out` (uint8, contiguous, exactly length.sum() bytes)."""
    if not COMPILED:
        out[:] = src[_ranges(start, length)]
        return
    _copy_ranges(src, np.ascontiguousarray(start, np.int64), np.ascontiguousarray(length, np.int64), out)


@njit(cache=True)
def _copy_ranges(src, start, length, out):
    # Unsigned indices, no slices: numba then checks no negative wrap-around and the byte loop
    # vectorizes (a slice assignment copies byte by byte: ~4x slower on payload-sized ranges).
    o = np.uint64(0)
    for i in range(len(start)):
        a = np.uint64(start[i])
        n = np.uint64(length[i])
        for j in range(n):
            out[o + j] = src[a + j]
        o += n


class HeldSegments:
    """The payloads live back to back in one buffer with room to spare, appended and compacted
    in place: a fresh array per chunk (the whole held data copied each time) costs page faults
    on every one of its pages."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.key = np.empty(0, np.int64)
        self.ts = np.empty(0, np.float64)
        self.seq = np.empty(0, np.int64)
        self.length = np.empty(0, np.int64)
        self._room = np.empty(0, np.uint8)
        self._used = 0

    def __len__(self) -> int:
        return len(self.key)

    @property
    def data(self) -> np.ndarray:
        """The payloads back to back, in arrival order."""
        return self._room[:self._used]

    def add(self, buf: np.ndarray, key: np.ndarray, ts: np.ndarray, seq: np.ndarray, off: np.ndarray,
            length: np.ndarray) -> None:
        if len(key) == 0:
            return
        self.key = np.concatenate([self.key, key])
        self.ts = np.concatenate([self.ts, ts])
        self.seq = np.concatenate([self.seq, seq])
        self.length = np.concatenate([self.length, length])
        added = int(length.sum())
        if self._used + added > len(self._room):
            grown = np.empty(max(2 * len(self._room), self._used + added, 1 << 16), np.uint8)
            grown[:self._used] = self._room[:self._used]
            self._room = grown
        gather_ranges_into(buf, off, length, self._room[self._used:self._used + added])   # no copy in between
        self._used += added
        if self._used > self.max_bytes:            # the oldest go first
            newest = np.cumsum(self.length[::-1])[::-1]      # bytes from each row to the end
            self._keep(newest <= self.max_bytes)

    def drop(self, keys: np.ndarray) -> None:
        """Forget the directions in `keys`."""
        if len(self.key) and len(keys):
            gone = isin_keys(self.key, keys)
            if gone.any():
                self._keep(~gone)

    def drop_keys(self, keys: np.ndarray) -> None:
        """drop(keys) for many keys (a chunk's late rows' keys: most of its TCP rows) and few
        held (a few hundred): a table of the held keys, one pass over `keys` (isin_keys would
        set and clear every key's entry)."""
        if len(self.key) == 0 or len(keys) == 0:
            return
        lo, hi = int(self.key.min()), int(self.key.max())
        if not COMPILED or hi - lo >= _MAX_TABLE or keys.dtype != np.int64:
            self.drop(keys)
            return
        gone = np.empty(len(self.key), np.bool_)
        if _seen_in_keys(self.key, keys, lo, hi, key_table(hi - lo), gone):
            self._keep(~gone)

    def add_rows_then_drop(self, buf: np.ndarray, key: np.ndarray, rows: np.ndarray, ts: np.ndarray,
                           seq: np.ndarray, off: np.ndarray, length: np.ndarray, gone: np.ndarray) -> None:
        """add(buf, key, ts[rows], seq[rows], off[rows], length[rows]) (key: one per row), then
        drop_keys(gone), without copying the rows dropped at once: a chunk's late rows end most of
        the directions it would hold (~90 % of engine_2m's held rows, ~4 MB a run). The same state
        as long as the limit is not reached (add's trim counts the rows dropped after it)."""
        n_old = len(self.key)
        if len(key) and len(gone) and COMPILED and key.dtype == np.int64 and gone.dtype == np.int64:
            both = np.concatenate([self.key, key])
            lo, hi = _span(both)
            if hi - lo < _MAX_TABLE and self._used + int(length[rows].sum()) <= self.max_bytes:
                dropped = np.empty(len(both), np.bool_)
                if _seen_in_keys(both, gone, lo, hi, key_table(hi - lo), dropped):
                    if dropped[:n_old].any():
                        self._keep(~dropped[:n_old])
                    stay = ~dropped[n_old:]
                    key, rows = key[stay], rows[stay]
                self.add(buf, key, ts[rows], seq[rows], off[rows], length[rows])
                return
        self.add(buf, key, ts[rows], seq[rows], off[rows], length[rows])
        self.drop_keys(gone)

    def take(self, keys: np.ndarray) -> list[tuple[int, float, int, bytes]]:
        """(key, ts, seq, payload) held for the directions in `keys`, in arrival order; no longer held."""
        if len(self.key) == 0 or len(keys) == 0:
            return []
        hit = np.flatnonzero(isin_keys(self.key, keys))
        if hit.size == 0:
            return []
        start = np.cumsum(self.length) - self.length
        data = self.data
        out = [(k, t, seq, data[a:a + n].tobytes()) for k, t, seq, a, n in zip(
            self.key[hit].tolist(), self.ts[hit].tolist(), self.seq[hit].tolist(), start[hit].tolist(),
            self.length[hit].tolist())]
        keep = np.ones(len(self.key), bool)
        keep[hit] = False
        self._keep(keep)
        return out

    def _keep(self, keep: np.ndarray) -> None:
        start = np.cumsum(self.length) - self.length
        self._used = _compact(self._room, np.ascontiguousarray(start[keep], np.int64),
                              np.ascontiguousarray(self.length[keep], np.int64))
        self.key, self.ts, self.seq, self.length = self.key[keep], self.ts[keep], self.seq[keep], self.length[keep]


@njit(cache=True)
def _seen_in_keys(held, keys, lo, hi, table, gone):
    """gone[i]: held[i] is one of `keys`; whether any is. table: all False at rest (key_set's),
    indexed key - lo; left so."""
    for h in held:
        table[h - lo] = True
    for k in keys:
        if lo <= k <= hi:
            table[k - lo] = False
    anything = False
    for i in range(len(held)):
        gone[i] = not table[held[i] - lo]
        anything |= gone[i]
    for h in held:
        table[h - lo] = False
    return anything


def _compact(room: np.ndarray, start: np.ndarray, length: np.ndarray) -> int:
    """Move the ranges (ascending, not overlapping) to the front of `room`, back to back; the
    bytes used. Each lands at or before where it was: copied forward, nothing read is overwritten."""
    if COMPILED:
        return _compact_ranges(room, start, length)
    kept = room[_ranges(start, length)].copy()
    room[:len(kept)] = kept
    return len(kept)


@njit(cache=True)
def _compact_ranges(room, start, length):
    o = 0
    for i in range(len(start)):
        a = start[i]
        if a != o:
            for j in range(length[i]):
                room[o + j] = room[a + j]
        o += length[i]
    return o
