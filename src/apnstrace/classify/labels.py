"""classify()'s output columns, written in one compiled pass over the flows' groups.

Every output is a label of the flow's group (a few thousand groups, a few dozen labels). Taking
each column's per-row codes (labels[group]) and gathering their text column by column read the
group column three times and each codes column twice (~4.5 ms on the engine benchmark); here
each row's group is read once and its three labels are copied to the three columns' bytes.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..reader.walk import njit

COMPILED = njit.__module__.startswith("numba")

__all__ = ["COMPILED", "label_columns"]


def label_columns(group: np.ndarray, columns: list[tuple[list[str], np.ndarray]]) -> list[pa.Array]:
    """Per (labels, code per group) of `columns`: labels[codes[group]] as a large_string array
    without nulls (codes >= 0, group >= 0)."""
    n, width = len(group), len(columns)
    encoded = [[str(x).encode() for x in labels] for labels, _ in columns]
    chars = np.frombuffer(b"".join(b"".join(e) for e in encoded) or b"\0", np.uint8)
    start = np.empty((len(columns[0][1]) if width else 0, width), np.int64)
    length = np.empty_like(start)
    at = 0
    for k, (e, (_, codes)) in enumerate(zip(encoded, columns)):
        sizes = np.array([len(x) for x in e], np.int64)
        starts = at + np.cumsum(sizes) - sizes
        at += int(sizes.sum())
        start[:, k] = starts[codes]
        length[:, k] = sizes[codes]
    longest = max((max(len(x) for x in e) for e in encoded if e), default=0)
    offsets = np.empty((width, n + 1), np.int64)
    data = np.empty((width, max(n * longest, 1)), np.uint8)    # pages past the end are never touched
    _fill(np.ascontiguousarray(group, np.int64), start, length, chars, offsets, data)
    return [pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offsets[k]),
                                                         pa.py_buffer(data[k, :offsets[k, n]])])
            for k in range(width)]


@njit(cache=True)
def _fill(group, start, length, chars, offsets, data):
    width = start.shape[1]
    at = np.zeros(width, np.int64)
    for k in range(width):
        offsets[k, 0] = 0
    for i in range(len(group)):
        g = group[i]
        for k in range(width):
            s = start[g, k]
            o = at[k]
            m = length[g, k]
            for j in range(np.uint64(m)):        # unsigned: no wrap-around check
                data[k, np.uint64(o) + j] = chars[np.uint64(s) + j]
            o += m
            at[k] = o
            offsets[k, i + 1] = o
