"""A 64-bit hash of the canonical flow key, for fast grouping (collisions are checked)."""
from __future__ import annotations

import numpy as np

from ..reader.walk import njit

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: every input bit affects every output bit."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def key_hash(a_hi, a_lo, b_hi, b_lo, port_a, port_b, proto) -> np.ndarray:
    ports = (port_a.astype(np.uint64) << np.uint64(24)) | (port_b.astype(np.uint64) << np.uint64(8)) \
        | proto.astype(np.uint64)
    with np.errstate(over="ignore"):
        h = _mix(ports + _GOLDEN)
        for word in (a_lo, b_lo, a_hi, b_hi):
            h = _mix(h ^ (word + _GOLDEN))
    return h


def pair_hash(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return _mix(hi ^ _mix(lo + _GOLDEN))


@njit(cache=True)
def _counting_sort(codes, groups):
    counts = np.zeros(groups + 1, np.int64)
    for c in codes:
        counts[c + 1] += 1
    for g in range(groups):
        counts[g + 1] += counts[g]
    order = np.empty(len(codes), np.int64)
    for i in range(len(codes)):
        c = codes[i]
        order[counts[c]] = i
        counts[c] += 1
    return order


def stable_order(codes: np.ndarray, groups: int) -> np.ndarray:
    """Same as np.argsort(codes, kind="stable") for codes in 0..groups-1, in linear time."""
    return _counting_sort(codes.astype(np.int64, copy=False), groups)
