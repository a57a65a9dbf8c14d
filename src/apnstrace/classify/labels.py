"""classify()'s output columns, written in one compiled pass over the flows' groups.

Every output is a label of the flow's group (a few thousand groups, a few dozen labels). Taking
each column's per-row codes (labels[group]) and gathering their text column by column read the
group column three times and each codes column twice (~4.5 ms on the engine benchmark); here
no codes are spelled out per row, and each label is copied as a fixed-size slot (no
mispredicted loop exit per row: 3.1-3.3 -> 2.5-2.7 ms).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..metadata.text_columns import string_buffers
from ..reader.walk import COMPILED, njit


__all__ = ["COMPILED", "label_columns"]


def label_columns(group: np.ndarray, columns: list[tuple[list[str] | pa.Array, np.ndarray]]) -> list[pa.Array]:
    """Per (labels, code per group) of `columns`: labels[codes[group]] as a large_string array
    without nulls (codes >= 0, group >= 0). Labels: a list (str() of each) or Arrow strings
    without nulls."""
    n, width = len(group), len(columns)
    texts = [labels if isinstance(labels, pa.Array) else pa.array([str(x) for x in labels], pa.large_string())
             for labels, _ in columns]
    # Each label is copied as a whole slot of its column's width (a multiple of 8 bytes), read
    # from the labels' bytes where they lie: the same number of bytes for every row (no
    # mispredicted loop exit per row); the bytes past the label (the next labels', then
    # padding) are overwritten by the next row's copy.
    slots = []
    start = np.empty((len(columns[0][1]) if width else 0, width), np.int64)
    length = np.empty_like(start)
    chunks, at = [], 0
    for k, (text, (_, codes)) in enumerate(zip(texts, columns)):
        offsets, data = string_buffers(text)
        sizes = offsets[1:] - offsets[:-1]
        slots.append(-(-max(int(sizes.max()) if len(sizes) else 0, 1) // 8) * 8)
        base = int(offsets[0])                      # a slice's first label need not start at 0
        chunks.append(data[base:])
        start[:, k] = (offsets[:-1] + (at - base))[codes]
        length[:, k] = sizes[codes]
        at += len(data) - base
    widest = max(slots, default=8)
    chars = np.concatenate(chunks + [np.zeros(widest, np.uint8)])
    offsets = np.empty((width, n + 1), np.int64)
    data = np.empty((width, (n + 1) * widest), np.uint8)     # pages past the end are never touched
    _fill(np.ascontiguousarray(group, np.int64), start, length, np.array(slots, np.int64), chars, offsets, data)
    return [pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offsets[k]),
                                                         pa.py_buffer(data[k, :offsets[k, n]])])
            for k in range(width)]


@njit(cache=True)
def _fill(group, start, length, slots, chars, offsets, data):
    for k in range(start.shape[1]):            # column by column: one output stream at a time
        offsets[k, 0] = 0
        o = np.uint64(0)
        w = np.uint64(slots[k])
        out = data[k]
        for i in range(len(group)):
            g = group[i]
            s = np.uint64(start[g, k])
            for j in range(w):                  # unsigned: no wrap-around check
                out[o + j] = chars[s + j]
            o += np.uint64(length[g, k])
            offsets[k, i + 1] = o
