"""IPv4 and IPv6 addresses as text, written from their bytes in one compiled pass.

The text is exactly what socket.inet_ntop (glibc's inet_ntop) writes, as parse_dns does: IPv6 in
lowercase hex groups without leading zeros, the first longest run of two or more zero groups as
"::", and an IPv4 tail for the compatible (::a.b.c.d) and mapped (::ffff:a.b.c.d) forms.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..reader.walk import njit

__all__ = ["address_text"]

_LONGEST = 45               # "0000:...:ffff:255.255.255.255" is at most 45 bytes; inet_ntop's own bound
_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)


def _decimal_table() -> np.ndarray:
    """Per byte value: its decimal digits, then their count (row b: up to 3 digits, count at [3])."""
    t = np.zeros((256, 4), np.uint8)
    for b in range(256):
        d = str(b).encode()
        t[b, :len(d)] = np.frombuffer(d, np.uint8)
        t[b, 3] = len(d)
    return t


_DECIMAL = _decimal_table()


def address_text(buf: np.ndarray, at: np.ndarray, v6: np.ndarray) -> pa.Array:
    """Per address (buf[at:at+16] when v6, else buf[at:at+4]): its text, one Arrow large_string column."""
    n = len(at)
    offsets = np.empty(n + 1, np.int64)
    out = np.empty(n * _LONGEST, np.uint8)
    _write(buf, np.ascontiguousarray(at, np.int64), np.ascontiguousarray(v6, np.bool_), out, offsets, _HEX,
           _DECIMAL)
    return pa.Array.from_buffers(pa.large_string(), n,
                                 [None, pa.py_buffer(offsets), pa.py_buffer(out[:offsets[n]])])


@njit(cache=True)
def _write(buf, at, v6, out, offsets, hexdigits, decimal):
    # One scratch array for the IPv6 words (np.empty per address allocated on the heap each time);
    # octets from a table (no divisions). Unsigned offsets: no negative-index checks.
    words = np.empty(8, np.int64)
    o = np.uint64(0)
    offsets[0] = 0
    for i in range(len(at)):
        if v6[i]:
            o = _six(buf, np.uint64(at[i]), out, o, hexdigits, decimal, words)
        else:
            o = _four(buf, np.uint64(at[i]), out, o, decimal)
        offsets[i + 1] = o


@njit(cache=True)
def _four(buf, p, out, o, decimal):
    for j in range(4):
        if j:
            out[o] = 0x2E
            o += np.uint64(1)
        b = buf[p + np.uint64(j)]
        out[o] = decimal[b, 0]
        out[o + np.uint64(1)] = decimal[b, 1]       # spare bytes past the digits are overwritten next
        out[o + np.uint64(2)] = decimal[b, 2]
        o += np.uint64(decimal[b, 3])
    return o


@njit(cache=True)
def _six(buf, p, out, o, hexdigits, decimal, words):
    for j in range(8):
        words[j] = (np.int64(buf[p + np.uint64(2 * j)]) << 8) | buf[p + np.uint64(2 * j + 1)]
    # The first longest run of zero words (two at least) is written "::".
    best, best_len, cur, cur_len = -1, 0, -1, 0
    for j in range(8):
        if words[j] == 0:
            if cur < 0:
                cur, cur_len = j, 1
            else:
                cur_len += 1
        elif cur >= 0:
            if best < 0 or cur_len > best_len:
                best, best_len = cur, cur_len
            cur = -1
    if cur >= 0 and (best < 0 or cur_len > best_len):
        best, best_len = cur, cur_len
    if best >= 0 and best_len < 2:
        best = -1
    for j in range(8):
        if best >= 0 and best <= j < best + best_len:
            if j == best:
                out[o] = 0x3A
                o += np.uint64(1)
            continue
        if j:
            out[o] = 0x3A
            o += np.uint64(1)
        if j == 6 and best == 0 and (best_len == 6 or (best_len == 5 and words[5] == 0xFFFF)):
            return _four(buf, p + np.uint64(12), out, o, decimal)      # an IPv4 tail: nothing follows it
        w = words[j]
        started = False
        for shift in (12, 8, 4, 0):
            d = (w >> shift) & 15
            if d or started or shift == 0:
                out[o] = hexdigits[d]
                o += np.uint64(1)
                started = True
    if best >= 0 and best + best_len == 8:
        out[o] = 0x3A
        o += np.uint64(1)
    return o
