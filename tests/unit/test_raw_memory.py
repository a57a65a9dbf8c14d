"""The compiled memory operations against plain byte reads, at every alignment."""
from __future__ import annotations

import sys

import numpy as np
from numba import njit

from apnstrace.decode.raw_memory import byte_at, load_u64, prefetch, word_at


@njit
def _words(buf):
    out = np.empty(len(buf) - 7, np.uint64)
    for i in range(len(out)):
        prefetch(buf, i + 64)               # past the end too: a hint, never a fault
        out[i] = load_u64(buf, i)
    return out


@njit
def _by_address(address, n):
    words = np.empty(n - 7, np.uint64)
    for i in range(n - 7):
        words[i] = word_at(address, i)
    bytes_ = np.empty(n, np.uint8)
    for i in range(n):
        bytes_[i] = byte_at(address, i)
    return words, bytes_


def _expected(buf: np.ndarray) -> np.ndarray:
    raw = buf.tobytes()
    return np.array([int.from_bytes(raw[i:i + 8], sys.byteorder) for i in range(len(raw) - 7)], np.uint64)


def test_loads_read_the_bytes_at_every_alignment():
    buf = np.random.default_rng(7).integers(0, 256, 203, dtype=np.uint8)
    want = _expected(buf)
    np.testing.assert_array_equal(_words(buf), want)
    # a slice starting at an odd address: the load is unaligned
    np.testing.assert_array_equal(_words(buf[3:]), want[3:])
    words, bytes_ = _by_address(buf.ctypes.data, len(buf))
    np.testing.assert_array_equal(words, want)
    np.testing.assert_array_equal(bytes_, buf)

