"""A set of flow-direction keys (uid * 2 + direction: small, dense, non-negative integers) that
answers for a whole chunk's keys at once: one growing bool array instead of a Python set."""
from __future__ import annotations

import numpy as np

__all__ = ["KeySet"]


class KeySet:
    def __init__(self) -> None:
        self.bits = np.zeros(1024, bool)

    def _room(self, top: int) -> None:
        if top >= len(self.bits):
            grown = np.zeros(max(2 * len(self.bits), top + 1), bool)
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
    chunk's flows), else numpy's sort-based isin. The same answer either way."""
    if len(values) == 0 or len(keys) == 0:
        return np.zeros(len(values), bool)
    span = int(keys.max()) - int(keys.min())
    if span <= max(8 * (len(values) + len(keys)), 1 << 20):
        return np.isin(values, keys, kind="table")
    return np.isin(values, keys)
