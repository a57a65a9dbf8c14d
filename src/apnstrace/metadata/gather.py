"""A text column gathered by row index in one compiled pass: values[rows], null where rows < 0.

attach() builds a dozen flow columns this way from the metadata log's source columns (a few
thousand values each, every flow a row). Arrow's take needs the source padded with a null
(a copy) and is 3-10x slower on these mostly-null columns (~1.4 ms vs ~0.15-0.35 ms each on
the engine benchmark's 198,242 flows).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..reader.walk import COMPILED, njit
from .meta_log import take_or_null


__all__ = ["flows_per_row", "gather_text"]


def gather_text(values: pa.Array, rows: np.ndarray, through: np.ndarray | None = None,
                uses: np.ndarray | None = None) -> pa.Array:
    """values[rows] as large_string (the type pandas' "string" dtype holds); null where rows < 0
    or the value is null. With `through`: values[rows[through]], null where through < 0 (rows
    one per metadata record, through one per flow: no row column per flow is spelled out).
    `uses`: how often `through` holds each index of rows (flows_per_row(through, len(rows))),
    when the caller gathers several columns through the same rows: the bytes are then counted
    per row of `rows` (a few thousand) instead of per flow."""
    if values.type != pa.large_string():
        values = values.cast(pa.large_string())
    if not COMPILED:
        if through is not None:
            rows = np.where(through >= 0, np.append(rows, -1)[through], -1)
        return take_or_null(values, rows)
    n = len(rows) if through is None else len(through)
    if values.null_count == len(values):       # nothing to take (a late client alert is rare)
        return pa.nulls(n, pa.large_string())
    buffers = values.buffers()
    offsets = np.frombuffer(buffers[1], np.int64, len(values) + 1, values.offset * 8)
    data = np.frombuffer(buffers[2], np.uint8) if buffers[2] is not None and buffers[2].size else \
        np.zeros(1, np.uint8)
    valid = values.is_valid().to_numpy(zero_copy_only=False) if values.null_count else \
        np.ones(len(values), np.bool_)
    rows = np.ascontiguousarray(rows, np.int64)
    two = through is not None
    through = np.ascontiguousarray(through, np.int64) if two else rows[:0]
    out_offsets = np.empty(n + 1, np.int64)
    total = _total(offsets, valid, rows, through, two, n) if uses is None or not two else \
        _total_used(offsets, valid, rows, np.ascontiguousarray(uses, np.int64))
    out = np.empty(total, np.uint8)
    bitmap = np.zeros((n + 7) // 8, np.uint8)
    present = _fill(offsets, data, valid, rows, through, two, out_offsets, out, bitmap)
    validity = None if present == n else pa.py_buffer(bitmap)
    return pa.Array.from_buffers(pa.large_string(), n, [validity, pa.py_buffer(out_offsets), pa.py_buffer(out)])


@njit(cache=True, inline="always")
def _row(rows, through, two, i):
    """The value row of output row i (-1: none)."""
    if not two:
        return rows[i]
    k = through[i]
    return rows[k] if k >= 0 else -1


@njit(cache=True)
def _total(offsets, valid, rows, through, two, n):
    """The picked values' bytes in all (a pass that writes nothing: the offsets, validity and
    bytes are written once, by _fill)."""
    total = 0
    for i in range(n):
        j = _row(rows, through, two, i)
        if j >= 0 and valid[j]:
            total += offsets[j + 1] - offsets[j]
    return total


def flows_per_row(through: np.ndarray, rows: int) -> np.ndarray:
    """How often `through` holds each of 0..rows-1 (its -1s not counted)."""
    return np.bincount(through[through >= 0], minlength=rows) if len(through) else np.zeros(rows, np.int64)


@njit(cache=True)
def _total_used(offsets, valid, rows, uses):
    """_total counted per row of `rows`: its value's bytes times the flows that pick that row."""
    total = 0
    for k in range(len(rows)):
        j = rows[k]
        if j >= 0 and uses[k] and valid[j]:
            total += uses[k] * (offsets[j + 1] - offsets[j])
    return total


@njit(cache=True)
def _fill(offsets, data, valid, rows, through, two, out_offsets, out, bitmap):
    """Output offsets, validity bits (bitmap zeroed) and the picked values' bytes back to back;
    the number of rows holding a value. Byte indices are unsigned: numba then checks no index
    for a negative wrap-around, and the byte loop runs 2-5x faster than with signed indices and
    slice copies for the longer values (which paid an array view per row)."""
    at = np.uint64(0)
    present = 0
    out_offsets[0] = 0
    for i in range(len(out_offsets) - 1):
        j = _row(rows, through, two, i)
        if j >= 0 and valid[j]:
            present += 1
            bitmap[i >> 3] |= np.uint8(1 << (i & 7))
            s = np.uint64(offsets[j])
            for k in range(np.uint64(offsets[j + 1]) - s):
                out[at + k] = data[s + k]
            at += np.uint64(offsets[j + 1]) - s
        out_offsets[i + 1] = at
    return present
