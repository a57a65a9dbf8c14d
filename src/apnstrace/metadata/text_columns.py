"""Byte ranges of a chunk as an Arrow string column, without a Python string per row.

tls.text() shows printable ASCII (backslash excluded) as itself and escapes every other byte
as \\xNN; one compiled call writes all ranges into one data buffer, escapes included (the
numpy path, without numba, sends the rare ranges needing escapes through tls.text row by row).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..decode import tls
from ..decode.raw_memory import prefetch
from ..reader.walk import COMPILED, njit


__all__ = ["TextTable", "string_buffers", "text_column"]


def text_column(buf: np.ndarray, start: np.ndarray, end: np.ndarray) -> pa.Array:
    """tls.text(buf[start:end]) per row; null where start < 0.
    large_string: the type pandas' "string" dtype holds."""
    n = len(start)
    if COMPILED:
        # One call: offsets, data (escapes written in place) and validity bits (a chunk's column
        # is a few thousand rows: the dozen numpy steps this replaced cost more than the copying,
        # and tls.text row by row plus a masked replace cost more than the rest together).
        offsets, data, bits, nulls = _layout(buf, np.ascontiguousarray(start, np.int64),
                                             np.ascontiguousarray(end, np.int64))
        return pa.Array.from_buffers(pa.large_string(), n, [pa.py_buffer(bits) if nulls else None,
                                                            pa.py_buffer(offsets), pa.py_buffer(data)])
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
    column = pa.Array.from_buffers(pa.large_string(), n, [bitmap, pa.py_buffer(offsets), pa.py_buffer(data)])
    if rows.size == 0:
        return column
    mask = np.zeros(n, bool)
    mask[rows] = True
    fixed = [tls.text(buf[a:a + m].tobytes()) for a, m in zip(s[rows].tolist(), lengths[rows].tolist())]
    return pc.replace_with_mask(column, pa.array(mask), pa.array(fixed, type=pa.large_string()))


_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)
AHEAD = 16              # _layout asks for the range this many rows on while it reads one


@njit(cache=True)
def _odd_bytes(buf, a, m):
    """How many of buf[a:a + m] tls.text escapes (any byte but printable ASCII, and backslash):
    a branch-free count, so the loop vectorizes."""
    count = 0
    for j in range(m):
        b = buf[a + j]
        count += (np.uint8(b - np.uint8(0x20)) >= np.uint8(0x5F)) | (b == np.uint8(0x5C))
    return count


@njit(cache=True)
def _layout(buf, start, end):
    """The column's buffers: offsets, the texts back to back (null rows empty; each escaped
    byte as its four bytes \\xNN, lowercase hex, as tls.text writes it), Arrow's validity bits
    (LSB first) and the number of nulls. Unsigned indices: numba checks none for a negative
    wrap-around, and the plain rows' copy vectorizes. The first pass asks for a range's first
    and last bytes AHEAD rows before it reads them: the ranges lie scattered over a 64 MiB chunk
    (engine_2m's request texts and SNIs, thrashed: 3.2 -> 2.7 and 1.45 -> 0.87 ms a run)."""
    n = len(start)
    offsets = np.empty(n + 1, np.int64)
    offsets[0] = 0
    bits = np.zeros((n + 7) // 8, np.uint8)
    odd = np.zeros(n, np.int64)
    nulls = 0
    total = 0
    for i in range(n):
        if i + AHEAD < n and start[i + AHEAD] >= 0:
            prefetch(buf, np.uint64(start[i + AHEAD]))        # the ranges lie all over a chunk
            prefetch(buf, np.uint64(max(start[i + AHEAD], end[i + AHEAD] - 1)))
        if start[i] >= 0:
            m = np.uint64(end[i] - start[i])
            odd[i] = _odd_bytes(buf, np.uint64(start[i]), m)
            total += end[i] - start[i] + 3 * odd[i]
            bits[i >> 3] |= np.uint8(1 << (i & 7))
        else:
            nulls += 1
        offsets[i + 1] = total
    data = np.empty(total, np.uint8)
    for i in range(n):
        if start[i] < 0:
            continue
        a = np.uint64(start[i])
        o = np.uint64(offsets[i])
        m = np.uint64(end[i] - start[i])
        if odd[i] == 0:
            for j in range(m):
                data[o + j] = buf[a + j]
        else:
            _escape(buf, a, m, data, o)
    return offsets, data, bits, nulls


@njit(cache=True)
def _escape(buf, a, m, data, o):
    """tls.text of buf[a:a + m] written at data[o:]."""
    for j in range(m):
        b = buf[a + j]
        if b < 0x20 or b >= 0x7F or b == 0x5C:
            data[o] = 0x5C
            data[o + np.uint64(1)] = 0x78
            data[o + np.uint64(2)] = _HEX[b >> 4]
            data[o + np.uint64(3)] = _HEX[b & 0x0F]
            o += np.uint64(4)
        else:
            data[o] = b
            o += np.uint64(1)


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


class TextTable:
    """A few texts (a large_string column, nulls allowed) to build columns of by index:
    take(at) is texts.take(at) without Arrow's compute layer (a kernel call and an allocation
    from the memory pool per column cost ~0.1 ms in a run, next to a few µs for this copy)."""

    def __init__(self, texts: pa.Array) -> None:
        self.texts = texts
        self.offsets, self.data = string_buffers(texts)
        self.offsets = np.ascontiguousarray(self.offsets, np.int64)
        self.valid = np.asarray(texts.is_valid().to_numpy(zero_copy_only=False), np.bool_) if len(texts) else \
            np.zeros(0, np.bool_)

    def take(self, at: np.ndarray) -> pa.Array:
        """texts[at[i]] per row (0 <= at[i] < len(texts))."""
        if not COMPILED:
            return self.texts.take(pa.array(at))
        n = len(at)
        offsets, data, bits, nulls = _pick(self.offsets, self.data, self.valid, np.ascontiguousarray(at, np.int64))
        return pa.Array.from_buffers(pa.large_string(), n, [pa.py_buffer(bits) if nulls else None,
                                                            pa.py_buffer(offsets), pa.py_buffer(data)])


@njit(cache=True)
def _pick(t_off, t_data, t_valid, at):
    """TextTable.take's buffers: offsets, data, validity bits, number of nulls."""
    n = len(at)
    offsets = np.empty(n + 1, np.int64)
    offsets[0] = 0
    bits = np.zeros((n + 7) // 8, np.uint8)
    nulls = 0
    total = 0
    for i in range(n):
        k = at[i]
        if t_valid[k]:
            total += t_off[k + 1] - t_off[k]
            bits[i >> 3] |= np.uint8(1 << (i & 7))
        else:
            nulls += 1
        offsets[i + 1] = total
    data = np.empty(total, np.uint8)
    for i in range(n):
        k = at[i]
        a = np.uint64(t_off[k])
        o = np.uint64(offsets[i])
        m = np.uint64(offsets[i + 1] - offsets[i])
        for j in range(m):
            data[o + j] = t_data[a + j]
    return offsets, data, bits, nulls
