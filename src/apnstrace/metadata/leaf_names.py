"""The issuer of each leaf certificate take_flights finds, named once per distinct certificate.

A server shows the same leaf to every client: engine_2m's 7037 leaves are 108 distinct ones.
The leaves named so far are kept (their DER bytes back to back, and their issuers); a chunk's
leaves are looked up among them by a compiled pass comparing bytes, and only new ones reach
tls._x509_names (X.509 parsing in Python). No copy of a leaf's bytes, no hash of them per flight.
"""
from __future__ import annotations

import threading

import numpy as np

from ..decode import tls
from ..reader.walk import njit

__all__ = ["issuers"]

MAX_KEPT = 4096               # leaves kept at most (tls._x509_names' cache size)
MAX_KEPT_BYTES = 16 << 20     # and their bytes: a chunk's leaves that would pass either start it again


class _Kept:
    """Leaves named so far: leaf k is data[start[k]:end[k]], its issuer names[k]."""

    def __init__(self) -> None:
        self.data = np.empty(1 << 16, np.uint8)
        self.start = np.empty(256, np.int64)
        self.end = np.empty(256, np.int64)
        self.n = 0
        self.names = np.empty(0, object)
        self.lock = threading.Lock()          # collectors in other threads share the store

    def find(self, hs: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """_find's answer for the leaves hs[start:end] (as int64 arrays)."""
        at = np.empty(len(start), np.int64)
        _find(hs, start, end, self.data, self.start, self.end, self.n, at)
        return at

    def room_for(self, count: int, size: int) -> bool:
        used = int(self.end[self.n - 1]) if self.n else 0
        return self.n + count <= MAX_KEPT and used + size <= MAX_KEPT_BYTES

    def clear(self) -> None:
        self.n, self.names = 0, self.names[:0]

    def add(self, der: list[bytes], names: list) -> np.ndarray:
        """Keep leaves `der` named `names`; their places in the store."""
        used = int(self.end[self.n - 1]) if self.n else 0
        self.data = _room(self.data, used + sum(len(d) for d in der))
        self.start, self.end = _room(self.start, self.n + len(der)), _room(self.end, self.n + len(der))
        for d in der:
            self.data[used:used + len(d)] = np.frombuffer(d, np.uint8)
            self.start[self.n], self.end[self.n] = used, used + len(d)
            used += len(d)
            self.n += 1
        named = np.empty(len(names), object)
        named[:] = names
        self.names = np.concatenate([self.names, named])
        return np.arange(self.n - len(der), self.n)


def _room(a: np.ndarray, size: int) -> np.ndarray:
    if size <= len(a):
        return a
    grown = np.empty(max(size, 2 * len(a)), a.dtype)
    grown[:len(a)] = a
    return grown


_KEPT = _Kept()


def issuers(hs: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """tls._x509_names(hs[start:end])[1] per leaf (non-empty ranges), as an object array."""
    start, end = np.ascontiguousarray(start, np.int64), np.ascontiguousarray(end, np.int64)
    kept = _KEPT
    with kept.lock:
        at = kept.find(hs, start, end)
        new = np.flatnonzero(at == -1 - np.arange(len(start)))       # the first of new bytes
        if new.size and not kept.room_for(new.size, int((end[new] - start[new]).sum())):
            kept.clear()                     # full: start again (this chunk's leaves all new then)
            at = kept.find(hs, start, end)
            new = np.flatnonzero(at == -1 - np.arange(len(start)))
        if new.size:
            der = [hs[a:b].tobytes() for a, b in zip(start[new].tolist(), end[new].tolist())]
            place = np.empty(len(start), np.int64)
            place[new] = kept.add(der, [tls._x509_names(d)[1] for d in der])
            unkept = at < 0
            at[unkept] = place[-1 - at[unkept]]
        return kept.names[at]


@njit(cache=True)
def _find(hs, start, end, data, kept_start, kept_end, n_kept, at):
    """at[i]: the kept leaf with the bytes of hs[start[i]:end[i]]; else -1 - j, j the first leaf
    of these with those bytes (i itself when none before it). Bytes are compared only between
    leaves of one length and last byte."""
    firsts = np.empty(len(start), np.int64)          # the distinct new leaves so far
    n_first = 0
    for i in range(len(start)):
        size = end[i] - start[i]
        last = hs[end[i] - 1]
        at[i] = -1 - i
        for k in range(n_kept):
            if kept_end[k] - kept_start[k] == size and data[kept_end[k] - 1] == last and \
                    _equal(data, kept_start[k], hs, start[i], size):
                at[i] = k
                break
        if at[i] >= 0:
            continue
        for f in range(n_first):
            j = firsts[f]
            if end[j] - start[j] == size and hs[end[j] - 1] == last and _equal(hs, start[j], hs, start[i], size):
                at[i] = -1 - j
                break
        if at[i] == -1 - i:
            firsts[n_first] = i
            n_first += 1


@njit(cache=True)
def _equal(a, at_a, b, at_b, size):
    """a[at_a:at_a + size] == b[at_b:at_b + size]; unsigned indices and no early exit let LLVM
    compare in vectors."""
    ua, ub = np.uint64(at_a), np.uint64(at_b)
    differ = np.uint8(0)
    for q in range(np.uint64(size)):
        differ |= a[ua + q] ^ b[ub + q]
    return differ == 0
