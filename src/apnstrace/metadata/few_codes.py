"""Dictionary codes of a text column with a handful of distinct values, in one compiled pass.

The flows' transport ("tcp"/"udp", 198K rows on the engine benchmark) took Arrow's
dictionary_encode ~2.4 ms, a hash of every value; comparing each value with the few seen so far
takes ~0.3 ms. Values are numbered in order of first appearance, as dictionary_encode numbers
them. A column with more distinct values than the pass keeps gives up early (None).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..decode.raw_memory import LITTLE, load_u64
from ..reader.walk import COMPILED, njit
from .text_columns import string_buffers

MAX_DISTINCT = 8

__all__ = ["COMPILED", "few_codes"]


def few_codes(text: pa.Array) -> tuple[np.ndarray, pa.Array] | None:
    """(int64 code per value, -1 for null; the distinct values) of a string or large_string
    array with at most MAX_DISTINCT distinct values; None when it has more."""
    n = len(text)
    if not COMPILED or n == 0:
        return None
    if text.type not in (pa.string(), pa.large_string()):
        return None
    offsets, data = string_buffers(text)
    valid = text.is_valid().to_numpy(zero_copy_only=False) if text.null_count else np.ones(0, np.bool_)
    codes = np.empty(n, np.int64)
    first = np.empty(MAX_DISTINCT, np.int64)
    count = _encode_short(offsets, data, valid, codes, first, LITTLE)
    if count == LONG:                           # a value past 7 bytes: compared byte by byte
        count = _encode(offsets, data, valid, codes, first)
    if count < 0:
        return None
    return codes, text.take(pa.array(first[:count]))


LONG = -2


@njit(cache=True)
def _encode_short(offsets, data, valid, codes, first, little):
    """_encode for values of at most 7 bytes (LONG at the first longer one): each value is one
    number (its length, then its bytes) compared with the few seen without a branch per
    candidate (~1.2 ms -> less for 198K "tcp"/"udp" with cold caches). On a little-endian
    machine the bytes are read as one 8-byte word, masked to the value's length (no loop per
    byte), where 8 bytes lie inside the buffer."""
    keys = np.empty(len(first), np.uint64)
    count = 0
    check = len(valid) > 0
    end = len(data) - 8
    for i in range(len(codes)):
        if check and not valid[i]:
            codes[i] = -1
            continue
        a, b = offsets[i], offsets[i + 1]
        if b - a > 7:
            return LONG
        if little and a <= end:
            # the value's bytes in the low ones, its length in the top one: one number per value
            word = load_u64(data, a) & ((np.uint64(1) << np.uint64(8 * (b - a))) - np.uint64(1))
            key = word | (np.uint64(b - a) << np.uint64(56))
        else:
            key = np.uint64(b - a) << np.uint64(56)
            for j in range(np.uint64(a), np.uint64(b)):
                key |= np.uint64(data[j]) << np.uint64(8 * (j - np.uint64(a)))
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


@njit(cache=True)
def _encode(offsets, data, valid, codes, first):
    """codes[i]: the number of row i's value among the distinct ones (first[k]: the row that
    showed value k first); -1 once there are more than len(first) of them."""
    count = 0
    check = len(valid) > 0
    for i in range(len(codes)):
        if check and not valid[i]:
            codes[i] = -1
            continue
        a, b = offsets[i], offsets[i + 1]
        found = -1
        for k in range(count):
            c = offsets[first[k]]
            if offsets[first[k] + 1] - c != b - a:
                continue
            same = True
            for j in range(b - a):
                if data[a + j] != data[c + j]:
                    same = False
                    break
            if same:
                found = k
                break
        if found < 0:
            if count == len(first):
                return -1
            first[count] = i
            found = count
            count += 1
        codes[i] = found
    return count
