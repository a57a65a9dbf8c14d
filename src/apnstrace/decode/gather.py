"""Vectorized reads of big/little-endian fields at many offsets of one byte buffer at once.

Each read is one numpy gather through a view whose elements start at every byte (stride 1),
so a 32-bit field costs one fancy-index instead of four byte gathers and shifts.
"""
from __future__ import annotations

import numpy as np


def _at_every_byte(buf: np.ndarray, dtype: str) -> np.ndarray:
    size = np.dtype(dtype).itemsize
    return np.ndarray(shape=(len(buf) - size + 1,), dtype=dtype, buffer=buf, strides=(1,))


def u8(buf: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return buf[pos].astype(np.int64)


def be16(buf: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return _at_every_byte(buf, ">u2")[pos].astype(np.int64)


def le16(buf: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return _at_every_byte(buf, "<u2")[pos].astype(np.int64)


def be32(buf: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return _at_every_byte(buf, ">u4")[pos].astype(np.int64)


def le32(buf: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return _at_every_byte(buf, "<u4")[pos].astype(np.int64)


def be64(buf: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """uint64 from 8 bytes (IPv6 address halves)."""
    return _at_every_byte(buf, ">u8")[pos].astype(np.uint64)


V4_MAPPED = np.uint64(0x0000FFFF00000000)


def v4_mapped(addr32: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An IPv4 address as the (hi, lo) halves of ::ffff:a.b.c.d, so v4 and v6 share one key."""
    return np.zeros(len(addr32), np.uint64), V4_MAPPED | addr32.astype(np.uint64)


def one_of(values: np.ndarray, choices) -> np.ndarray:
    """values in a handful of constants: a few comparisons beat np.isin's set-up."""
    out = np.zeros(len(values), bool)
    for choice in np.asarray(choices).ravel().tolist():
        out |= values == choice
    return out
