"""HTTP/1 heads that fit in one TCP payload, for every candidate payload of a chunk in one compiled call.

parse_request / parse_response (http.py) stay the reference. This finds the same request line,
Host and User-Agent with the same rules and answers with their offsets, or FALLBACK for anything
it does not read plainly (no blank line yet, a malformed line, an empty Host header, no Host
header and a target that names a host: CONNECT or scheme://host): the reference then decides,
as it always did. A complete head without a Host header whose target names no host is read
here: its host is absent (null), as parse_request gives it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..reader.walk import njit
from .raw_memory import LITTLE, byte_at, prefetch, word_at
from .http import MAX_HEAD, METHODS

__all__ = ["FALLBACK", "REQUEST", "RESPONSE", "HttpScan", "scan_http"]

FALLBACK, REQUEST, RESPONSE = 0, 1, 2
# parse_request's METHODS as rows (length, bytes 0-3, bytes 4-7 as big-endian words)
_METHODS = np.array([[len(m), int.from_bytes(m[:4].ljust(4, b"\0"), "big"),
                      int.from_bytes(m[4:].ljust(4, b"\0"), "big")] for m in sorted(METHODS)], np.int64)


@dataclass(slots=True)
class HttpScan:
    """Per payload; offsets absolute in the chunk buffer, -1 when absent."""
    kind: np.ndarray          # FALLBACK, REQUEST (a complete head) or RESPONSE
    method_end: np.ndarray    # REQUEST: the method is [start, method_end)
    target_start: np.ndarray  # REQUEST: the request target
    target_end: np.ndarray
    host_start: np.ndarray    # REQUEST: the first Host header's value, stripped (never empty; -1: no Host)
    host_end: np.ndarray
    agent_start: np.ndarray   # REQUEST: the first User-Agent header's value, stripped
    agent_end: np.ndarray
    status: np.ndarray        # RESPONSE: the status code


def scan_http(buf: np.ndarray, off: np.ndarray, cap: np.ndarray) -> HttpScan:
    n = len(off)
    kind = np.zeros(n, np.int8)
    fields = np.full((8, n), -1, np.int64)      # one array: each array a kernel passes on costs a refcount
    _scan(buf, np.ascontiguousarray(off, np.int64), np.ascontiguousarray(cap, np.int64), kind, fields)
    return HttpScan(kind, *fields)


@njit(cache=True)
def _space(b):
    """bytes.strip()'s whitespace: space, \\t, \\n, \\v, \\f, \\r."""
    return b == 0x20 or 0x09 <= b <= 0x0D


# Prefetch: a payload AHEAD rows on is asked for, its first PREFETCH_BYTES, while this one is
# read (the payloads lie scattered over a chunk of 32 MB: without it the scan waits on memory).
AHEAD = 8
PREFETCH_BYTES = 256

try:
    from numba.cpython.unsafe.numbers import trailing_zeros as _trailing_zeros
    _WORDS = LITTLE                           # the first match is then the lowest flagged byte
except ImportError:  # pragma: no cover - without numba: byte by byte
    _trailing_zeros = None
    _WORDS = False

_ONES = np.uint64(0x0101010101010101)
_HIGH = np.uint64(0x8080808080808080)


# The helpers called per header line read the buffer by its address (buf.ctypes.data): an
# array argument costs a reference count taken and dropped per call (atomic), which was most
# of the scan's time.

@njit(cache=True)
def _find(p, byte, start, stop):
    """The first `byte` in buf[start:stop] (p: buf's address, start >= 0), or -1. Eight bytes at a time (a word
    holds it when (x - 0x01..) & ~x & 0x80.. is not 0, x the word xor the byte in every lane; the
    lowest flagged lane is the first), then byte by byte. Unsigned indices: numba then checks
    none for a negative wrap-around, which made the byte loop ~1.8x slower."""
    j = np.uint64(start)
    end = np.uint64(max(start, stop))
    if _WORDS:
        pattern = _ONES * np.uint64(byte)
        eight = np.uint64(8)
        while j + eight <= end:
            x = word_at(p, j) ^ pattern
            t = (x - _ONES) & ~x & _HIGH
            if t != 0:
                return np.int64(j + (_trailing_zeros(t) >> np.uint64(3)))
            j += eight
    while j < end:
        if byte_at(p, j) == byte:
            return np.int64(j)
        j += np.uint64(1)
    return -1


@njit(cache=True)
def _is_method(buf, base, length):
    methods = _METHODS
    for r in range(len(methods)):
        if methods[r, 0] != length:
            continue
        same = True
        for j in range(length):
            word = methods[r, 1] if j < 4 else methods[r, 2]
            if buf[base + j] != (word >> (8 * (3 - j % 4))) & 0xFF:
                same = False
                break
        if same:
            return True
    return False


@njit(cache=True)
def _name_is(p, start, stop, name):
    """buf[start:stop].strip().lower() == name (p: buf's address; name: lowercase ASCII as a uint8 array)."""
    while start < stop and _space(byte_at(p, start)):
        start += 1
    while stop > start and _space(byte_at(p, stop - 1)):
        stop -= 1
    if stop - start != len(name):
        return False
    for j in range(len(name)):
        b = byte_at(p, start + j)
        if 0x41 <= b <= 0x5A:
            b += 0x20
        if b != name[j]:
            return False
    return True


_HOST = np.frombuffer(b"host", np.uint8)
_AGENT = np.frombuffer(b"user-agent", np.uint8)
_HTTP1 = np.frombuffer(b"HTTP/1.", np.uint8)
_CONNECT = np.frombuffer(b"CONNECT", np.uint8)


@njit(cache=True)
def _ends_blank(p, base, stop):
    """The newline at `stop` ends a b"\\r\\n\\r\\n" (p: the buffer's address)."""
    return stop - 3 >= base and byte_at(p, stop - 1) == 0x0D and byte_at(p, stop - 2) == 0x0A and byte_at(p, stop - 3) == 0x0D


@njit(cache=True)
def _rest_blank(p, base, end, stop, blank_end):
    """_request's answer once Host and User-Agent are both read at the line ending at `stop`: no
    later line can change them, so only whether a b"\\r\\n\\r\\n" lies in the payload is left (the
    lines read so far were looked at; one ending later ends at a newline after `stop`)."""
    pos = stop + 1
    while not blank_end:
        nl = _find(p, 0x0A, pos, end)
        if nl < 0:
            return 2 * (end - 1)              # _scan's own search then has under 4 bytes: not complete
        blank_end = _ends_blank(p, base, nl)
        pos = nl + 1
    return 2 * stop + 1


@njit(cache=True)
def _request(buf, base, n, i, out):
    """parse_request's reading of a head into out[:, i] (scan_http's fields), or -1 when the
    reference must decide. Read: 2 * L + f,
    L the last newline the lines were read to, f 1 when a b"\\r\\n\\r\\n" ends at or before it
    (every newline up to L is looked at, so the rest of the payload is searched from L on only)."""
    p = buf.ctypes.data
    space = _find(p, 0x20, base, base + min(8, n))
    if space < 0 or not _is_method(buf, base, space - base):
        return -1
    head_end = base + min(n, MAX_HEAD)
    line_end = _find(p, 0x0A, space, head_end)
    if line_end < 0:
        return -1
    last = line_end
    blank_end = _ends_blank(p, base, line_end)
    stop = line_end                                      # line.rstrip(b"\r")
    while stop > space + 1 and buf[stop - 1] == 0x0D:
        stop -= 1
    gap = -1
    for j in range(stop - 1, space, -1):
        if buf[j] == 0x20:
            gap = j
            break
    if gap <= space + 1 or stop - (gap + 1) < 7:
        return -1
    for j in range(len(_HTTP1)):
        if buf[gap + 1 + j] != _HTTP1[j]:
            return -1
    out[0, i] = space
    out[1, i] = space + 1
    out[2, i] = gap
    pos = line_end + 1
    while pos < head_end:
        stop = _find(p, 0x0A, pos, head_end)
        if stop < 0:
            break
        last = stop
        if not blank_end and _ends_blank(p, base, stop):
            blank_end = True
        if pos < stop:
            first = buf[pos]
            lower = first | 0x20
            if not _space(first) and not ((lower == 0x68 and out[3, i] < 0) or (lower == 0x75 and out[5, i] < 0)):
                pos = stop + 1       # not blank, and its name is no Host / User-Agent still wanted: nothing to read
                continue
        colon = _find(p, 0x3A, pos, stop)
        if colon < 0:
            blank = True
            for j in range(pos, stop):
                if not _space(buf[j]):
                    blank = False
                    break
            if blank:
                break
            pos = stop + 1
            continue
        is_host = out[3, i] < 0 and _name_is(p, pos, colon, _HOST)
        is_agent = not is_host and out[5, i] < 0 and _name_is(p, pos, colon, _AGENT)
        if is_host or is_agent:
            a, b = colon + 1, stop
            while a < b and _space(buf[a]):
                a += 1
            while b > a and _space(buf[b - 1]):
                b -= 1
            if is_host:
                if a == b:
                    return -1                 # an empty Host: the reference looks at the target
                out[3, i], out[4, i] = a, b
            else:
                out[5, i], out[6, i] = a, b
            if out[3, i] >= 0 and out[5, i] >= 0:
                return _rest_blank(p, base, base + n, stop, blank_end)
        pos = stop + 1
    read = 2 * last + (1 if blank_end else 0)
    if out[3, i] >= 0:
        return read
    # No Host header: parse_request's host is then what a proxy-style target names (CONNECT
    # host:port, or scheme://host/...); those go to the reference, any other target has no host.
    if space - base == 7:
        connect = True
        for j in range(7):
            if buf[base + j] != _CONNECT[j]:
                connect = False
                break
        if connect:
            return -1
    first, end = out[1, i], out[2, i]
    for j in range(first, end - 2):
        if buf[j] == 0x3A and buf[j + 1] == 0x2F and buf[j + 2] == 0x2F:     # the first b"://"
            return read if j - first > 8 else -1
    return read


@njit(cache=True)
def _response(buf, base, n):
    """parse_response's status code, or -1."""
    space = _find(buf.ctypes.data, 0x20, base + 5, base + min(16, n))
    if space < 0 or space + 4 > base + n:
        return -1
    code = 0
    for j in range(1, 4):
        b = buf[space + j]
        if b < 0x30 or b > 0x39:
            return -1
        code = code * 10 + (b - 0x30)
    if space + 4 < base + n:
        after = buf[space + 4]
        if after != 0x20 and after != 0x0D and after != 0x0A:
            return -1
    return code


@njit(cache=True)
def _complete(buf, base, n):
    """The head ends in this payload (the collector's own test: b"\\r\\n\\r\\n" in data)."""
    if n < 4:
        return False
    j = np.uint64(base)
    end = np.uint64(base + n - 3)
    one = np.uint64(1)
    while j < end:                   # unsigned, as in _find
        if buf[j] == 0x0D and buf[j + one] == 0x0A and buf[j + np.uint64(2)] == 0x0D and buf[j + np.uint64(3)] == 0x0A:
            return True
        j += one
    return False


@njit(cache=True)
def _scan(buf, off, cap, kind, out):
    n_rows = len(off)
    for i in range(n_rows):
        if i + AHEAD < n_rows:
            at = np.uint64(off[i + AHEAD])
            for line in range(0, min(cap[i + AHEAD], PREFETCH_BYTES), 64):
                prefetch(buf, at + np.uint64(line))
        base = off[i]
        n = cap[i]
        if n >= 5 and buf[base] == 0x48 and buf[base + 1] == 0x54 and buf[base + 2] == 0x54 \
                and buf[base + 3] == 0x50 and buf[base + 4] == 0x2F:             # b"HTTP/"
            code = _response(buf, base, n)
            if code >= 0:
                out[7, i] = code
                kind[i] = RESPONSE
        else:
            read = _request(buf, base, n, i, out)
            if read < 0:
                continue
            # The collector reads a head only once its blank line (CR LF CR LF) is in the payload.
            from_ = max(base, (read >> 1) - 2)
            if (read & 1) == 1 or _complete(buf, from_, base + n - from_):
                kind[i] = REQUEST
