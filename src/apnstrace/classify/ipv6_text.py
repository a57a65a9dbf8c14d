"""IPv6 addresses in plain colon-hex form, read in one compiled pass over a text column's bytes.

The classifier turns the flows' distinct server addresses into 128-bit numbers; the IPv6 ones
went through socket.inet_pton one by one (~2,700 on the engine benchmark, ~4 ms). The flow
table writes them with inet_ntop: groups of 1-4 hex digits, at most one "::". This reads exactly
that form; anything else (a dotted tail, a zone "%en0", a malformed value) is left to the
caller's inet_pton, so every accepted value has the number inet_pton gives it.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..metadata.text_columns import string_buffers
from ..reader.walk import njit
from .dotted_quads import COMPILED

__all__ = ["COMPILED", "colon_hex"]


def colon_hex(text: pa.Array, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the values marked in `wanted` of a string column without nulls: (read here, high and
    low 64 bits). Values not read are for inet_pton."""
    n = len(text)
    offsets, data = string_buffers(text)
    ok = np.zeros(n, np.bool_)
    hi = np.zeros(n, np.uint64)
    lo = np.zeros(n, np.uint64)
    _scan(offsets, data, np.ascontiguousarray(wanted, np.bool_), ok, hi, lo)
    return ok, hi, lo


@njit(cache=True)
def _hex(c):
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1


@njit(cache=True)
def _scan(offsets, data, wanted, ok, hi, lo):
    words = np.zeros(8, np.uint64)
    full = np.zeros(8, np.uint64)
    for i in range(len(offsets) - 1):
        if not wanted[i]:
            continue
        a, b = offsets[i], offsets[i + 1]
        if b == a:
            continue
        groups = 0
        gap = -1                         # groups before the "::", -1: none
        digits = 0
        value = 0
        good = True
        j = a
        if data[a] == 58:                # a leading colon only as "::"
            if b - a < 2 or data[a + 1] != 58:
                continue
            gap = 0
            j = a + 2
        while j < b:
            c = data[j]
            h = _hex(c)
            if h >= 0:
                if digits == 4:
                    good = False
                    break
                value = value * 16 + h
                digits += 1
            elif c == 58:
                if digits == 0 or groups == 8:
                    good = False
                    break
                words[groups] = value
                groups += 1
                digits = 0
                value = 0
                if j + 1 < b and data[j + 1] == 58:
                    if gap >= 0:
                        good = False
                        break
                    gap = groups
                    j += 1
                elif j + 1 == b:         # a trailing single colon
                    good = False
                    break
            else:
                good = False
                break
            j += 1
        if not good:
            continue
        if digits:
            if groups == 8:
                continue
            words[groups] = value
            groups += 1
        elif gap != groups:              # ended on a separator that is not "::"
            continue
        if (gap < 0 and groups != 8) or (gap >= 0 and groups > 7):
            continue
        for k in range(8):
            full[k] = 0
        if gap < 0:
            for k in range(8):
                full[k] = words[k]
        else:
            for k in range(gap):
                full[k] = words[k]
            tail = groups - gap
            for k in range(tail):
                full[8 - tail + k] = words[gap + k]
        hi[i] = (full[0] << np.uint64(48)) | (full[1] << np.uint64(32)) | (full[2] << np.uint64(16)) | full[3]
        lo[i] = (full[4] << np.uint64(48)) | (full[5] << np.uint64(32)) | (full[6] << np.uint64(16)) | full[7]
        ok[i] = True
