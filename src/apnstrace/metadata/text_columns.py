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

__all__ = ["text_column"]


def text_column(buf: np.ndarray, start: np.ndarray, end: np.ndarray,
                fix: Callable[[bytes], str] = tls.text) -> pa.Array:
    """tls.text(buf[start:end]) per row (fix() instead for ranges needing it); null where start < 0.
    large_string: the type pandas' "string" dtype holds."""
    n = len(start)
    valid = start >= 0
    s = np.where(valid, start, 0).astype(np.int64)
    lengths = np.where(valid, end - start, 0).astype(np.int64)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    if COMPILED:
        data = np.empty(total, np.uint8)
        odd_row = np.zeros(n, np.bool_)
        _gather(buf, s, lengths, offsets, data, odd_row)
        rows = np.flatnonzero(odd_row)
    else:
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
    fixed = [fix(buf[a:b].tobytes()) for a, b in zip(s[rows].tolist(), (s + lengths)[rows].tolist())]
    return pc.replace_with_mask(column, pa.array(mask), pa.array(fixed, type=pa.large_string()))


@njit(cache=True)
def _gather(buf, start, length, offsets, data, odd):
    """The ranges back to back in data; odd[i]: range i holds a byte tls.text escapes."""
    for i in range(len(start)):
        a = start[i]
        o = offsets[i]
        bad = False
        for j in range(length[i]):
            b = buf[a + j]
            data[o + j] = b
            if b < 0x20 or b >= 0x7F or b == 0x5C:
                bad = True
        odd[i] = bad
