"""Codes of a text column whose values are a few short strings (the flows' transport), in one
compiled pass.

metadata.few_codes compares each value byte by byte with each value seen so far (~1.2 ms for
the engine benchmark's 198K "tcp"/"udp" with cold caches). Here a value of at most 7 bytes is
one number (its length, then its bytes) compared with the few seen, without a branch per
candidate. Values are numbered in order of first appearance, as dictionary_encode numbers them.
A longer value, or more than MAX_DISTINCT distinct ones, gives up (None).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..metadata.text_columns import string_buffers
from ..reader.walk import njit

COMPILED = njit.__module__.startswith("numba")
MAX_DISTINCT = 8

__all__ = ["COMPILED", "short_codes"]


def short_codes(text: pa.Array) -> tuple[np.ndarray, pa.Array] | None:
    """(int64 code per value, -1 for null; the distinct values) of a string or large_string
    array of values of at most 7 bytes, at most MAX_DISTINCT distinct; None otherwise."""
    n = len(text)
    if not COMPILED or n == 0 or text.type not in (pa.string(), pa.large_string()):
        return None
    offsets, data = string_buffers(text)
    valid = text.is_valid().to_numpy(zero_copy_only=False) if text.null_count else np.ones(0, np.bool_)
    codes = np.empty(n, np.int64)
    first = np.empty(MAX_DISTINCT, np.int64)
    count = _encode(offsets, data, valid, codes, first)
    if count < 0:
        return None
    return codes, text.take(pa.array(first[:count]))


@njit(cache=True)
def _encode(offsets, data, valid, codes, first):
    keys = np.empty(len(first), np.uint64)
    count = 0
    check = len(valid) > 0
    for i in range(len(codes)):
        if check and not valid[i]:
            codes[i] = -1
            continue
        a, b = offsets[i], offsets[i + 1]
        if b - a > 7:
            return -1
        key = np.uint64(b - a)               # length first: values of different lengths differ
        for j in range(np.uint64(a), np.uint64(b)):
            key = (key << np.uint64(8)) | np.uint64(data[j])
        found = -1
        for k in range(count):                # no early exit: a select per candidate, no branch
            found = k if keys[k] == key else found
        if found < 0:
            if count == len(first):
                return -1
            keys[count] = key
            first[count] = i
            found = count
            count += 1
        codes[i] = found
    return count
