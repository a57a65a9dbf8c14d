"""Byte ranges of a chunk as an Arrow string column, without a Python string per row.

tls.text() shows printable ASCII (backslash excluded) as itself and escapes every other byte;
a range made only of those bytes is its own text, so numpy gathers all ranges into one data
buffer. The rare range holding another byte goes through tls.text (or `fix`), row by row.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..decode import tls
from ..reader.walk import njit

COMPILED = njit.__module__.startswith("numba")

__all__ = ["string_buffers", "text_column"]


def text_column(buf: np.ndarray, start: np.ndarray, end: np.ndarray,
                fix: Callable[[bytes], str] = tls.text) -> pa.Array:
    """tls.text(buf[start:end]) per row (fix() instead for ranges needing it); null where start < 0.
    large_string: the type pandas' "string" dtype holds."""
    n = len(start)
    if COMPILED:
        # One call: offsets, data, validity bits and the rows to fix (a chunk's column is a few
        # thousand rows: the dozen numpy steps this replaced cost more than the copying).
        offsets, data, bits, nulls, rows = _layout(buf, np.ascontiguousarray(start, np.int64),
                                                   np.ascontiguousarray(end, np.int64))
        bitmap = pa.py_buffer(bits) if nulls else None
    else:
        valid = start >= 0
        s = np.where(valid, start, 0).astype(np.int64)
        lengths = np.where(valid, end - start, 0).astype(np.int64)
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        total = int(offsets[-1])
        data = buf[np.arange(total, dtype=np.int64) + np.repeat(s - offsets[:-1], lengths)] if total else \
            np.empty(0, np.uint8)
        plain = (data >= 0x20) & (data < 0x7F) & (data != 0x5C)
        odd = np.concatenate([[0], np.cumsum(~plain)])
        rows = np.flatnonzero(odd[offsets[1:]] != odd[offsets[:-1]])
        bitmap = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    column = pa.Array.from_buffers(pa.large_string(), n, [bitmap, pa.py_buffer(offsets),
                                                    pa.py_buffer(data)])
    if rows.size == 0:
        return column
    mask = np.zeros(n, bool)
    mask[rows] = True
    fixed = [fix(buf[a:a + m].tobytes()) for a, m in zip(np.asarray(start)[rows].tolist(), np.diff(offsets)[rows].tolist())]
    return pc.replace_with_mask(column, pa.array(mask), pa.array(fixed, type=pa.large_string()))


@njit(cache=True)
def _layout(buf, start, end):
    """The column's buffers: offsets, the ranges back to back (null rows empty), Arrow's validity
    bits (LSB first), the number of nulls, and the rows holding a byte tls.text escapes."""
    n = len(start)
    offsets = np.empty(n + 1, np.int64)
    offsets[0] = 0
    bits = np.zeros((n + 7) // 8, np.uint8)
    nulls = 0
    total = 0
    for i in range(n):
        if start[i] >= 0:
            total += end[i] - start[i]
            bits[i >> 3] |= np.uint8(1 << (i & 7))
        else:
            nulls += 1
        offsets[i + 1] = total
    data = np.empty(total, np.uint8)
    odd = np.empty(n, np.int64)
    n_odd = 0
    for i in range(n):
        if start[i] < 0:
            continue
        # Unsigned indices: numba checks none for a negative wrap-around (~25 % less time here).
        a = np.uint64(start[i])
        o = np.uint64(offsets[i])
        bad = False
        for j in range(np.uint64(offsets[i + 1]) - o):
            b = buf[a + j]
            data[o + j] = b
            if b < 0x20 or b >= 0x7F or b == 0x5C:
                bad = True
        if bad:
            odd[n_odd] = i
            n_odd += 1
    return offsets, data, bits, nulls, odd[:n_odd].copy()


def string_buffers(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A string or large_string column's value offsets (int64, len + 1) and bytes, as views
    where the layout allows; the bytes are never empty (kernels may index them blindly)."""
    n = len(text)
    if text.type == pa.string():
        offsets = np.frombuffer(text.buffers()[1], np.int32, n + 1, text.offset * 4).astype(np.int64)
    else:
        offsets = np.frombuffer(text.buffers()[1], np.int64, n + 1, text.offset * 8)
    data = text.buffers()[2]
    data = np.frombuffer(data, np.uint8) if data is not None and data.size else np.zeros(1, np.uint8)
    return offsets, data
