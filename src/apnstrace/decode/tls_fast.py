"""TLS hellos that fit in one TCP payload, for every candidate payload of a chunk in one compiled call.

parse_client_hello / parse_server_flight (tls.py) stay the reference. This reads the same bytes
with the same checks and answers per payload either with offsets of what the collector keeps
(SNI, ALPN, version, alert) or FALLBACK: anything it does not read plainly (a hello spread over
records, a certificate, any malformation, a flight that is not complete yet) goes to the
reference parsers, which then decide, count malformations and buffer segments as they always did.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..reader.walk import njit
from .raw_memory import prefetch
from .tls import (ALERT, APPLICATION_DATA, CERTIFICATE, CHANGE_CIPHER_SPEC, CLIENT_HELLO, EXT_ALPN,
                  EXT_SERVER_NAME, EXT_SUPPORTED_VERSIONS, HANDSHAKE, HEARTBEAT, MAX_CLIENT_HELLO,
                  MAX_RECORD, SERVER_HELLO, SERVER_HELLO_DONE)

__all__ = ["FALLBACK", "HELLO", "FLIGHT", "TlsScan", "scan_tls"]

FALLBACK, HELLO, FLIGHT = 0, 1, 2
TLS13 = 0x0304
# Prefetch: a payload AHEAD rows on is asked for, its first PREFETCH_BYTES, while this one is
# read (the payloads lie scattered over a chunk of 32 MB: without it the scan waits on memory).
AHEAD = 8
PREFETCH_BYTES = 512

@dataclass(slots=True)
class TlsScan:
    """Per payload. Offsets are absolute in the chunk buffer; -1 when absent."""
    kind: np.ndarray          # FALLBACK, HELLO (a whole ClientHello) or FLIGHT (a complete server flight)
    sni_start: np.ndarray     # HELLO: the first host_name
    sni_end: np.ndarray
    alpn_start: np.ndarray    # HELLO: the ProtocolNameList body; FLIGHT: the selected protocol's name
    alpn_end: np.ndarray
    version: np.ndarray       # FLIGHT: negotiated version (-1 when no ServerHello)
    alert: np.ndarray         # FLIGHT: level << 8 | description of the first alert, -1 when none


def scan_tls(buf: np.ndarray, off: np.ndarray, cap: np.ndarray) -> TlsScan:
    n = len(off)
    kind = np.zeros(n, np.int8)
    # One array for the fields (sni_start, sni_end, alpn_start, alpn_end, version, alert): each
    # array a kernel passes on to a helper costs an atomic refcount pair per call.
    fields = np.full((6, n), -1, np.int64)
    fields[4] = 0
    _scan(buf, np.ascontiguousarray(off, np.int64), np.ascontiguousarray(cap, np.int64), kind, fields)
    return TlsScan(kind, *fields)


@njit(cache=True)
def _u16(buf, at):
    return (np.int64(buf[at]) << 8) | np.int64(buf[at + 1])


@njit(cache=True)
def _alpn_ok(buf, pos, end):
    """RFC 7301 ProtocolNameList at [pos, end) well formed (tls._alpn_list would not raise)."""
    if pos + 2 > end or pos + 2 + _u16(buf, pos) != end:
        return False
    pos += 2
    while pos < end:
        pos += 1 + np.int64(buf[pos])
        if pos > end:
            return False
    return True


@njit(cache=True)
def _hello(buf, base, cap, i, out):
    """A ClientHello wholly inside the payload's first record: True when read plainly."""
    length = _u16(buf, base + 3)
    if length > MAX_RECORD or 5 + length > cap:
        return False
    msg = base + 5
    end = msg + 4 + ((np.int64(buf[msg + 1]) << 16) | _u16(buf, msg + 2))
    if end - msg > length or end - msg > MAX_CLIENT_HELLO or end - msg < 4 + 2 + 32 + 1:
        return False                    # spread over records, or too short: the reference decides
    pos = msg + 38
    pos += 1 + np.int64(buf[pos])                         # session_id
    if pos + 2 > end:
        return False
    pos += 2 + _u16(buf, pos)                             # cipher_suites
    if pos + 1 > end:
        return False
    pos += 1 + np.int64(buf[pos])                         # compression_methods
    if pos > end:
        return False
    if pos == end:
        return True                                        # no extensions (pre-TLS 1.2)
    if pos + 2 > end:
        return False
    ext_end = pos + 2 + _u16(buf, pos)
    if ext_end > end:
        return False
    pos += 2
    while pos < ext_end:
        if pos + 4 > ext_end:
            return False
        etype = _u16(buf, pos)
        start = pos + 4
        stop = start + _u16(buf, pos + 2)
        if stop > ext_end:
            return False
        if etype == EXT_SERVER_NAME:
            # A later server_name extension replaces an earlier one, as in the reference.
            out[0, i] = -1
            out[1, i] = -1
            if start != stop:
                if start + 2 > stop or start + 2 + _u16(buf, start) != stop:
                    return False
                p = start + 2
                while p < stop:
                    if p + 3 > stop:
                        return False
                    q = p + 3 + _u16(buf, p + 1)
                    if q > stop:
                        return False
                    if buf[p] == 0:
                        out[0, i] = p + 3
                        out[1, i] = q
                        break
                    p = q
        elif etype == EXT_ALPN:
            if not _alpn_ok(buf, start, stop):
                return False
            out[2, i] = start + 2
            out[3, i] = stop
        elif etype == EXT_SUPPORTED_VERSIONS:
            if start >= stop or start + 1 + np.int64(buf[start]) != stop or buf[start] & 1:
                return False
        pos = stop
    return True


@njit(cache=True)
def _server_hello(buf, pos, end, i, alpn_start, alpn_end):
    """Negotiated version of the ServerHello body at [pos, end), or -1 when not read plainly."""
    if pos + 2 + 32 + 1 > end:
        return -1
    version = _u16(buf, pos)
    pos += 34
    pos += 1 + np.int64(buf[pos]) + 2 + 1                 # session_id, cipher_suite, compression
    if pos > end:
        return -1
    if pos == end:
        return version
    if pos + 2 > end:
        return -1
    ext_end = pos + 2 + _u16(buf, pos)
    if ext_end > end:
        return -1
    pos += 2
    while pos < ext_end:
        if pos + 4 > ext_end:
            return -1
        etype = _u16(buf, pos)
        start = pos + 4
        stop = start + _u16(buf, pos + 2)
        if stop > ext_end:
            return -1
        if etype == EXT_SUPPORTED_VERSIONS:
            if stop - start != 2:
                return -1
            version = _u16(buf, start)
        elif etype == EXT_ALPN:
            if not _alpn_ok(buf, start, stop):
                return -1
            alpn_start[i] = -1
            alpn_end[i] = -1
            if stop > start + 2:                           # the first name of the list
                alpn_start[i] = start + 3
                alpn_end[i] = start + 3 + np.int64(buf[start + 2])
        pos = stop
    return version


@njit(cache=True)
def record_at(buf, pos, end):
    """The TLS record header at pos: (content type, length, payload start, payload stop, cut),
    the stop clamped to `end` when the record runs past it (cut). Type -1: not a record header."""
    ctype = np.int64(buf[pos])
    length = _u16(buf, pos + 3)
    if ctype < CHANGE_CIPHER_SPEC or ctype > HEARTBEAT or buf[pos + 1] != 3 or length > MAX_RECORD:
        return -1, length, pos, pos, False
    start = pos + 5
    stop = start + length
    cut = stop > end
    return ctype, length, start, end if cut else stop, cut


@njit(cache=True)
def alert_code(buf, start, length):
    """level << 8 | description of an alert record's payload; -1 when it is not a plain alert."""
    if length == 2 and (buf[start] == 1 or buf[start] == 2):
        return (np.int64(buf[start]) << 8) | np.int64(buf[start + 1])
    return np.int64(-1)


@njit(cache=True)
def _flight(buf, base, cap, i, out):
    """A server flight complete in this payload (what makes the collector stop reading it:
    an alert, TLS 1.3, ServerHelloDone) without a certificate: True when read plainly."""
    end = base + cap
    pos = base
    hello_seen = False
    hello_done = False
    version = -1
    alert = -1
    while pos + 5 <= end:
        ctype, length, start, stop, last = record_at(buf, pos, end)
        if ctype < 0:
            return False
        if last and ctype != HANDSHAKE:
            break
        if ctype == HANDSHAKE:
            m = start
            while m + 4 <= stop:
                mtype = buf[m]
                mend = m + 4 + ((np.int64(buf[m + 1]) << 16) | _u16(buf, m + 2))
                if mtype == CERTIFICATE:
                    return False                           # X.509: the reference reads it
                if mend > stop:
                    if not last:
                        return False                       # a message spread over records
                    break
                if mtype == SERVER_HELLO and not hello_seen:
                    version = _server_hello(buf, m + 4, mend, i, out[2], out[3])
                    if version < 0:
                        return False
                    hello_seen = True
                elif mtype == SERVER_HELLO_DONE and hello_seen:
                    hello_done = True
                m = mend
            if m != stop and not last:
                return False                               # a header spread over records
        elif ctype == ALERT and alert < 0:
            alert = alert_code(buf, start, length)
            if alert >> 8 == 2:
                break                                      # fatal: nothing follows
        elif ctype == CHANGE_CIPHER_SPEC or ctype == APPLICATION_DATA:
            break
        if last:
            break
        pos = stop
    if not hello_seen and alert < 0:
        return False                                       # nothing read: the reference may raise
    if not (alert >= 0 or version == TLS13 or hello_done):
        return False                                       # incomplete: the collector buffers on
    out[4, i] = version
    out[5, i] = alert
    return True


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
        if n < 6 or buf[base] != HANDSHAKE and buf[base] != ALERT or buf[base + 1] != 3:
            continue
        if buf[base + 5] == CLIENT_HELLO:
            if n >= 9 and buf[base] == HANDSHAKE and _hello(buf, base, n, i, out):
                kind[i] = HELLO
        elif _flight(buf, base, n, i, out):
            kind[i] = FLIGHT
