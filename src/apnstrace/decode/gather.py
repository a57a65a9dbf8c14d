"""Vectorized big-endian reads at many offsets of one byte buffer at once."""
from __future__ import annotations

import numpy as np


def u8(buf: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return buf[pos].astype(np.int64)


def be16(buf: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return (buf[pos].astype(np.int64) << 8) | buf[pos + 1]


def le16(buf: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return (buf[pos + 1].astype(np.int64) << 8) | buf[pos]


def be32(buf: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return ((buf[pos].astype(np.int64) << 24) | (buf[pos + 1].astype(np.int64) << 16)
            | (buf[pos + 2].astype(np.int64) << 8) | buf[pos + 3])


def le32(buf: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return ((buf[pos + 3].astype(np.int64) << 24) | (buf[pos + 2].astype(np.int64) << 16)
            | (buf[pos + 1].astype(np.int64) << 8) | buf[pos])


def be64(buf: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """uint64 from 8 bytes (IPv6 address halves)."""
    out = np.zeros(len(pos), np.uint64)
    for k in range(8):
        out = (out << np.uint64(8)) | buf[pos + k].astype(np.uint64)
    return out


V4_MAPPED = np.uint64(0x0000FFFF00000000)


def v4_mapped(addr32: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An IPv4 address as the (hi, lo) halves of ::ffff:a.b.c.d, so v4 and v6 share one key."""
    return np.zeros(len(addr32), np.uint64), V4_MAPPED | addr32.astype(np.uint64)
