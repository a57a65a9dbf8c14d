"""Open flows as preallocated columns with slots: written, read and freed in place.

A flow keeps its slot while it is open; a finished flow's slot is reused by a later one. The
columns grow by doubling, so a chunk costs what it writes, not a copy of every open flow.
Slot order means nothing: callers that need an order sort what they take out.
"""
from __future__ import annotations

import numpy as np

from . import partials as P

MIN_CAPACITY = 1 << 10


class Slots:
    def __init__(self, extra: dict[str, tuple[type, float]] | None = None) -> None:
        # extra: more per-slot columns, name -> (dtype, value of a free slot)
        self.extra = dict(extra or {})
        self.capacity = 0
        self.cols: P.Partials = {name: np.empty(0, dtype) for name, dtype in P.FIELDS.items()}
        self.more: dict[str, np.ndarray] = {name: np.empty(0, dtype) for name, (dtype, _) in self.extra.items()}
        self.live = np.zeros(0, bool)
        self.free = np.empty(0, np.int64)          # a stack: free[:n_free] are free slots
        self.n_free = 0

    def __len__(self) -> int:
        return self.capacity - self.n_free

    def alloc(self, count: int) -> np.ndarray:
        """`count` free slots, now live (their columns hold stale values until written)."""
        if count > self.n_free:
            self._grow(self.capacity - self.n_free + count)
        got = self.free[self.n_free - count:self.n_free][::-1].copy()
        self.n_free -= count
        self.live[got] = True
        return got

    def release(self, slots: np.ndarray) -> None:
        self.live[slots] = False
        for name, (_, value) in self.extra.items():
            self.more[name][slots] = value
        self.free[self.n_free:self.n_free + len(slots)] = slots[::-1]
        self.n_free += len(slots)

    def write(self, slots: np.ndarray, part: P.Partials, rows: np.ndarray) -> None:
        """Row rows[i] of `part` into slot slots[i]."""
        for name, col in self.cols.items():
            col[slots] = part[name][rows]

    def take(self, slots: np.ndarray) -> P.Partials:
        return {name: col[slots] for name, col in self.cols.items()}

    def live_slots(self) -> np.ndarray:
        return np.flatnonzero(self.live)

    def column(self, name: str) -> np.ndarray:
        """One column of the live slots (a copy)."""
        return self.cols[name][self.live]

    def compact(self) -> P.Partials:
        """Every live flow's columns, in slot order."""
        return self.take(self.live_slots())

    def clear(self) -> None:
        self.__init__(self.extra)

    def _grow(self, need: int) -> None:
        old = self.capacity
        new = max(MIN_CAPACITY, 2 * old)
        while new < need:
            new *= 2

        def grown(col: np.ndarray, fill=None) -> np.ndarray:
            out = np.empty(new, col.dtype) if fill is None else np.full(new, fill, col.dtype)
            out[:old] = col
            return out

        self.cols = {name: grown(col) for name, col in self.cols.items()}
        self.more = {name: grown(col, self.extra[name][1]) for name, col in self.more.items()}
        self.live = grown(self.live, False)
        # New slots go under the free stack's current top, lowest slot popped first.
        free = np.empty(new, np.int64)
        added = np.arange(new - 1, old - 1, -1, dtype=np.int64)
        free[:len(added)] = added
        free[len(added):len(added) + self.n_free] = self.free[:self.n_free]
        self.free = free
        self.n_free += len(added)
        self.capacity = new
