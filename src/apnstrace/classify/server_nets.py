"""Which rules' server networks hold each distinct server address, in one compiled pass.

The rules read the server address only through which of their networks hold it. The flows'
distinct addresses (41K on the engine benchmark) went through Arrow's trim, a dotted-quad pass,
a colon-hex pass, 17 vectorized range tests and a factorize (~4.4 ms); here each address is read
and tested where it lies (~2.5 ms with cold caches; ~0.7 ms since a dotted quad
whose first group no network comes near is read no further). The forms read: a dotted quad (four groups of 1-3 ASCII
digits; a group past 255 makes no address) and IPv6 as inet_ntop writes it (groups of 1-4 hex
digits, at most one "::"). Any other value (one to trim, a dotted tail, a zone, anything odd) is
left to the caller. The same readers, value by value: dotted_quads and colon_hex (the classifier's
path for columns server_nets does not take).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..metadata.text_columns import string_buffers
from ..reader.walk import COMPILED, njit

MAX_RULES = 63            # a rule per bit of an int64 mask
MAX_CLASSES = 256         # distinct masks numbered here; past that the caller factorizes

__all__ = ["COMPILED", "MAX_RULES", "colon_hex", "dotted_quads", "server_nets"]


def server_nets(text: pa.Array, spans: np.ndarray, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Per value of a string column without nulls: (mask: the or of bits[s] of every span s,
    rows of (first hi, first lo, last hi, last lo) as uint64, that holds the value's address;
    odd: not read here, mask 0; class: the mask's number in order of first appearance, -1 when
    there are more than MAX_CLASSES; how many classes)."""
    n = len(text)
    offsets, data = string_buffers(text)
    mask = np.zeros(n, np.int64)
    odd = np.zeros(n, np.bool_)
    klass = np.empty(n, np.int64)
    count = _scan(offsets, data, np.ascontiguousarray(spans, np.uint64), np.ascontiguousarray(bits, np.int64),
                  mask, odd, klass, MAX_CLASSES)
    return mask, odd, klass, count


def dotted_quads(text: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per value of a string column without nulls: (is a dotted quad, its 32-bit word when every
    group is <= 255, that). The classifier's reading of addresses outside server_nets (a column
    with nulls, more rules than bits, values that were trimmed first)."""
    n = len(text)
    offsets, data = string_buffers(text)
    quad = np.zeros(n, np.bool_)
    word = np.zeros(n, np.uint64)
    good = np.zeros(n, np.bool_)
    _quads(offsets, data, quad, word, good)
    return quad, word, good


def colon_hex(text: pa.Array, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the values marked in `wanted` of a string column without nulls: (read here: IPv6 in
    inet_ntop's form, high and low 64 bits). Values not read are for inet_pton."""
    n = len(text)
    offsets, data = string_buffers(text)
    ok = np.zeros(n, np.bool_)
    hi = np.zeros(n, np.uint64)
    lo = np.zeros(n, np.uint64)
    _colon_hexes(offsets, data, np.ascontiguousarray(wanted, np.bool_), ok, hi, lo)
    return ok, hi, lo


@njit(cache=True)
def _quads(offsets, data, quad, word, good):
    for i in range(len(offsets) - 1):
        kind, w = _quad(data, offsets[i], offsets[i + 1])
        quad[i] = kind != 0
        word[i] = w
        good[i] = kind == 1


@njit(cache=True)
def _colon_hexes(offsets, data, wanted, ok, hi, lo):
    words = np.zeros(8, np.uint64)
    full = np.zeros(8, np.uint64)
    for i in range(len(offsets) - 1):
        if wanted[i] and offsets[i + 1] > offsets[i]:
            ok[i], hi[i], lo[i] = _colon_hex(data, offsets[i], offsets[i + 1], words, full)


@njit(cache=True, inline="always")
def _hex(c):
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1


@njit(cache=True, inline="always")
def _quad(data, a, b):
    """(0 not a dotted quad, 1 a good one, 2 a quad with a group past 255; its 32-bit word)."""
    word = np.uint64(0)
    octet = np.uint64(0)
    digits = 0
    dots = 0
    big = False
    for j in range(np.uint64(a), np.uint64(b)):      # unsigned: no wrap-around check
        c = data[j]
        if 48 <= c <= 57:
            digits += 1
            if digits > 3:
                return 0, np.uint64(0)
            octet = octet * np.uint64(10) + np.uint64(c - 48)
        elif c == 46 and digits > 0 and dots < 3:
            big |= octet > 255
            word = (word << np.uint64(8)) | octet
            octet = np.uint64(0)
            digits = 0
            dots += 1
        else:
            return 0, np.uint64(0)
    if dots != 3 or digits == 0:
        return 0, np.uint64(0)
    if big or octet > 255:
        return 2, np.uint64(0)
    return 1, (word << np.uint64(8)) | octet


@njit(cache=True, inline="always")
def _colon_hex(data, a, b, words, full):
    """(read, hi, lo) of an IPv6 address in inet_ntop's form."""
    groups = 0
    gap = -1
    digits = 0
    value = 0
    j = a
    if data[a] == 58:
        if b - a < 2 or data[a + 1] != 58:
            return False, np.uint64(0), np.uint64(0)
        gap = 0
        j = a + 2
    while j < b:
        c = data[j]
        h = _hex(c)
        if h >= 0:
            if digits == 4:
                return False, np.uint64(0), np.uint64(0)
            value = value * 16 + h
            digits += 1
        elif c == 58:
            if digits == 0 or groups == 8:
                return False, np.uint64(0), np.uint64(0)
            words[groups] = value
            groups += 1
            digits = 0
            value = 0
            if j + 1 < b and data[j + 1] == 58:
                if gap >= 0:
                    return False, np.uint64(0), np.uint64(0)
                gap = groups
                j += 1
            elif j + 1 == b:
                return False, np.uint64(0), np.uint64(0)
        else:
            return False, np.uint64(0), np.uint64(0)
        j += 1
    if digits:
        if groups == 8:
            return False, np.uint64(0), np.uint64(0)
        words[groups] = value
        groups += 1
    elif gap != groups:
        return False, np.uint64(0), np.uint64(0)
    if (gap < 0 and groups != 8) or (gap >= 0 and groups > 7):
        return False, np.uint64(0), np.uint64(0)
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
    hi = (full[0] << np.uint64(48)) | (full[1] << np.uint64(32)) | (full[2] << np.uint64(16)) | full[3]
    lo = (full[4] << np.uint64(48)) | (full[5] << np.uint64(32)) | (full[6] << np.uint64(16)) | full[7]
    return True, hi, lo


@njit(cache=True)
def _scan(offsets, data, spans, bits, mask, odd, klass, max_classes):
    words = np.zeros(8, np.uint64)
    full = np.zeros(8, np.uint64)
    seen = np.empty(max_classes, np.int64)
    # Per first group d of a dotted quad: may a span hold an address d.x.x.x? Most addresses'
    # first group says no: the rest is left unread (a value led by 1-3 digits and a dot is no
    # IPv6 form, trimmed or not, so it holds no address of any span then either).
    near = np.zeros(256, np.bool_)
    for d in range(256):
        bottom = np.uint64(0xFFFF00000000) | (np.uint64(d) << np.uint64(24))
        top = bottom | np.uint64(0xFFFFFF)
        for s in range(len(bits)):
            if spans[s, 0] == 0 and spans[s, 1] <= top and \
                    ((spans[s, 2] > 0) or (spans[s, 2] == 0 and spans[s, 3] >= bottom)):
                near[d] = True
    count = 0
    last = 0
    for i in range(len(offsets) - 1):
        a, b = offsets[i], offsets[i + 1]
        m = 0
        j = a
        d = 0
        while j < b and j - a < 4 and 48 <= data[j] <= 57:
            d = d * 10 + (data[j] - 48)
            j += 1
        if j < b and data[j] == 46 and 0 < j - a < 4 and (d > 255 or not near[d]):
            b = a                                        # a quad outside every span: mask 0
        if b > a:
            kind, word = _quad(data, a, b)
            ok = kind == 1
            hi = np.uint64(0)
            lo = np.uint64(0xFFFF00000000) | word        # IPv4 lives in ::ffff:0:0/96
            if kind == 0:
                ok, hi, lo = _colon_hex(data, a, b, words, full)
                odd[i] = not ok
            if ok:
                for s in range(len(bits)):
                    if ((hi > spans[s, 0]) or (hi == spans[s, 0] and lo >= spans[s, 1])) and \
                            ((hi < spans[s, 2]) or (hi == spans[s, 2] and lo <= spans[s, 3])):
                        m |= bits[s]
        mask[i] = m
        if count > max_classes:
            continue
        if count and seen[last] == m:
            klass[i] = last
            continue
        found = -1
        for k in range(count):
            if seen[k] == m:
                found = k
                break
        if found < 0:
            if count == max_classes:
                count = max_classes + 1
                continue
            seen[count] = m
            found = count
            count += 1
        klass[i] = found
        last = found
    return count
