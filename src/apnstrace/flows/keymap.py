"""Flow key hash -> slot of its open flow: an open-addressing hash table updated in place.

The table (table.py) looks up, adds and removes only the keys a chunk touches, so the cost per
chunk follows the chunk, not the open flows (a pandas Index had to be rebuilt every chunk).
Linear probing on the key hash's low bits (key_hash is already a strong mix), at most half full,
and backward-shift deletion, so there are no tombstones and lookups stay short.
"""
from __future__ import annotations

import numpy as np

from ..reader.walk import njit

EMPTY = -1
MIN_SIZE = 1 << 10


@njit(cache=True)
def _find(keys, vals, hs, out):
    mask = np.uint64(len(keys) - 1)
    for i in range(len(hs)):
        h = hs[i]
        j = np.int64(h & mask)
        while True:
            v = vals[j]
            if v == EMPTY:
                out[i] = EMPTY
                break
            if keys[j] == h:
                out[i] = v
                break
            j = np.int64((np.uint64(j) + np.uint64(1)) & mask)


@njit(cache=True)
def _insert(keys, vals, hs, slots):
    """Add or overwrite each key's slot."""
    mask = np.uint64(len(keys) - 1)
    added = 0
    for i in range(len(hs)):
        h = hs[i]
        j = np.int64(h & mask)
        while True:
            if vals[j] == EMPTY:
                keys[j] = h
                vals[j] = slots[i]
                added += 1
                break
            if keys[j] == h:
                vals[j] = slots[i]
                break
            j = np.int64((np.uint64(j) + np.uint64(1)) & mask)
    return added


@njit(cache=True)
def _delete(keys, vals, hs):
    """Remove each key (absent keys are skipped); later entries of its probe run shift back."""
    mask = np.uint64(len(keys) - 1)
    removed = 0
    for i in range(len(hs)):
        h = hs[i]
        j = np.int64(h & mask)
        while vals[j] != EMPTY and keys[j] != h:
            j = np.int64((np.uint64(j) + np.uint64(1)) & mask)
        if vals[j] == EMPTY:
            continue
        removed += 1
        hole = j
        k = j
        while True:
            k = np.int64((np.uint64(k) + np.uint64(1)) & mask)
            if vals[k] == EMPTY:
                break
            home = np.int64(keys[k] & mask)
            # The entry at k may fill the hole unless its home lies cyclically in (hole, k].
            if ((np.uint64(k) - np.uint64(home)) & mask) >= ((np.uint64(k) - np.uint64(hole)) & mask):
                keys[hole] = keys[k]
                vals[hole] = vals[k]
                hole = k
        vals[hole] = EMPTY
    return removed


class KeyMap:
    """uint64 key hash -> int64 slot."""

    def __init__(self, capacity: int = 0) -> None:
        size = MIN_SIZE
        while size < 2 * capacity:
            size *= 2
        self.keys = np.zeros(size, np.uint64)
        self.vals = np.full(size, EMPTY, np.int64)
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def find(self, hs: np.ndarray) -> np.ndarray:
        """Slot of each key, -1 where absent."""
        out = np.empty(len(hs), np.int64)
        if len(hs):
            _find(self.keys, self.vals, np.ascontiguousarray(hs, np.uint64), out)
        return out

    def insert(self, hs: np.ndarray, slots: np.ndarray) -> None:
        if not len(hs):
            return
        if 2 * (self.count + len(hs)) > len(self.keys):
            self._grow(self.count + len(hs))
        self.count += _insert(self.keys, self.vals, np.ascontiguousarray(hs, np.uint64),
                              np.ascontiguousarray(slots, np.int64))

    def delete(self, hs: np.ndarray) -> None:
        if len(hs):
            self.count -= _delete(self.keys, self.vals, np.ascontiguousarray(hs, np.uint64))

    def clear(self) -> None:
        self.__init__()

    def _grow(self, need: int) -> None:
        used = self.vals != EMPTY
        keys, vals = self.keys[used], self.vals[used]
        self.__init__(max(need, 2 * self.count))
        self.count = _insert(self.keys, self.vals, keys, vals)
