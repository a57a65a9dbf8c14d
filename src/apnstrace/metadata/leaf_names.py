"""The issuer of each leaf certificate take_flights finds, named once per distinct certificate.

A server shows the same leaf to every client: engine_2m's 7037 leaves are 108 distinct ones.
The leaves named so far are kept (their DER bytes back to back, and their issuers); the flight
scan looks each leaf up among them where it lies in the chunk, comparing bytes (tls_flight's
known leaves), so a known leaf is neither copied nor read twice; only new ones reach
tls._x509_names (X.509 parsing in Python). No hash of a leaf's bytes per flight.
"""
from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa

from ..decode import tls, tls_flight
from .text_columns import TextTable

__all__ = ["scan_named"]

MAX_KEPT = 4096               # leaves kept at most (tls._x509_names' cache size)
MAX_KEPT_BYTES = 16 << 20     # and their bytes: a chunk's leaves that would pass either start it again


class _Kept:
    """Leaves named so far: leaf k is data[start[k]:end[k]], its issuer names[k]."""

    def __init__(self) -> None:
        self.data = np.empty(1 << 16, np.uint8)
        self.start = np.empty(256, np.int64)
        self.end = np.empty(256, np.int64)
        self.n = 0
        self.by_size = np.empty(0, np.int64)      # the leaves ordered by size, and their sizes
        self.sizes = np.empty(0, np.int64)
        self.names = np.empty(0, object)
        self.table = _table(self.names)           # the names as a column's texts, at k + 1 (0: null)
        self.lock = threading.Lock()          # collectors in other threads share the store

    def known(self) -> tls_flight.KnownLeaves:
        return tls_flight.KnownLeaves(self.data, self.start, self.end, self.by_size, self.sizes, self.n)

    def room_for(self, count: int, size: int) -> bool:
        used = int(self.end[self.n - 1]) if self.n else 0
        return self.n + count <= MAX_KEPT and used + size <= MAX_KEPT_BYTES

    def clear(self) -> None:
        self.n, self.names = 0, self.names[:0]
        self.by_size, self.sizes = self.by_size[:0], self.sizes[:0]
        self.table = _table(self.names)

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
        sizes = self.end[:self.n] - self.start[:self.n]
        self.by_size = np.argsort(sizes, kind="stable")
        self.sizes = sizes[self.by_size]
        self.table = _table(self.names)
        return np.arange(self.n - len(der), self.n)


def _table(names: np.ndarray) -> TextTable:
    """A new table each time (a read's codes stay valid in the one it was given)."""
    return TextTable(pa.array([None, *names.tolist()], type=pa.large_string()))


def _room(a: np.ndarray, size: int) -> np.ndarray:
    if size <= len(a):
        return a
    grown = np.empty(max(size, 2 * len(a)), a.dtype)
    grown[:len(a)] = a
    return grown


_KEPT = _Kept()


def scan_named(buf: np.ndarray, piece_off: np.ndarray, piece_len: np.ndarray, first_piece: np.ndarray,
               hs_start: np.ndarray, hs: np.ndarray) -> tuple[tls_flight.FlightScan, np.ndarray, np.ndarray, TextTable]:
    """tls_flight.scan_pieces with the kept leaves to look leaves up among; and per flight read
    plainly with a leaf, tls._x509_names(leaf)[1] (else None), as an object array, and as codes
    into a table of texts (0: None) to make a column of."""
    kept = _KEPT
    with kept.lock:                       # the scan reads the store
        scan = tls_flight.scan_pieces(buf, piece_off, piece_len, first_piece, hs_start, hs, kept.known())
        n = len(scan.kind)
        issuer = np.full(n, None, object)
        code = np.zeros(n, np.int64)
        leaf = np.flatnonzero((scan.kind == tls_flight.READ) & (scan.leaf_same != -1))
        if leaf.size:
            place = _places(kept, scan, scan.leaf_same[leaf])
            issuer[leaf] = kept.names[place]
            code[leaf] = place + 1
        return scan, issuer, code, kept.table


def _places(kept: _Kept, scan: tls_flight.FlightScan, same: np.ndarray) -> np.ndarray:
    """The places in the store of leaves `same` (scan.leaf_same values): new ones named (once
    per distinct leaf) and kept."""
    out = same.copy()
    hit = same >= 0
    if not hit.all():
        first = np.unique(-2 - same[~hit])                 # the flights whose leaves are new
        start, end = scan.leaf_start[first], scan.leaf_end[first]
        if not kept.room_for(first.size, int((end - start).sum())):
            # Full: start again, with this call's known leaves (named already) and its new ones.
            known = np.unique(same[hit])
            der = [kept.data[a:b].tobytes() for a, b in zip(kept.start[known].tolist(), kept.end[known].tolist())]
            names = kept.names[known].tolist()
            kept.clear()
            if known.size:
                out[hit] = kept.add(der, names)[np.searchsorted(known, same[hit])]
        der = [scan.hs[a:b].tobytes() for a, b in zip(start.tolist(), end.tolist())]
        place = kept.add(der, [tls._x509_names(d)[1] for d in der])
        out[~hit] = place[np.searchsorted(first, -2 - same[~hit])]
    return out
