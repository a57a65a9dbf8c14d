"""Server flights in reassembled stream bytes, many at once in one compiled call.

parse_server_flight (tls.py) stays the reference; this reads the same records the same way
(handshake messages joined across records, a record the data ends inside read as far as it
goes, the leaf certificate located as soon as its bytes are in) and gives per flight the
offsets of what the collector keeps. The leaf's DER is left to `cryptography` (tls._x509_names).
Anything it does not read plainly (any malformation, however the reference would absorb it)
is FALLBACK: the caller then hands those bytes to the reference.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..reader.walk import njit
from .tls import ALERT, APPLICATION_DATA, CERTIFICATE, CHANGE_CIPHER_SPEC, HANDSHAKE, SERVER_HELLO, SERVER_HELLO_DONE
from .tls_fast import _server_hello, alert_code, record_at

__all__ = ["FALLBACK", "READ", "FlightScan", "scan_flights"]

FALLBACK, READ = 0, 1
TLS13 = 0x0304
EMPTY_LEAF = -2           # leaf_start when the first certificate is empty (the reference: no names)


@dataclass(slots=True)
class FlightScan:
    """Per flight. alpn_* and leaf_* are offsets into `hs`; -1 when absent."""
    kind: np.ndarray          # FALLBACK or READ
    hello_seen: np.ndarray    # bool: a complete ServerHello
    hello_done: np.ndarray    # bool: ServerHelloDone after it
    version: np.ndarray       # negotiated version, -1 when no ServerHello
    alert: np.ndarray         # level << 8 | description of the first alert, -1 when none
    alpn_start: np.ndarray    # selected protocol's name
    alpn_end: np.ndarray
    leaf_start: np.ndarray    # the leaf certificate's DER; EMPTY_LEAF for an empty one
    leaf_end: np.ndarray
    hs: np.ndarray            # the flights' handshake bytes (each flight's at its own `start`)


def scan_flights(data: np.ndarray, start: np.ndarray, length: np.ndarray, hs: np.ndarray | None = None) -> FlightScan:
    """The flights at data[start:start+length] (each the start of a server's byte stream).
    hs: where to put their handshake bytes (at least len(data) long), else a new array."""
    n = len(start)
    hs = np.empty(len(data), np.uint8) if hs is None else hs
    out = FlightScan(np.zeros(n, np.int8), np.zeros(n, np.bool_), np.zeros(n, np.bool_),
                     *(np.full(n, -1, np.int64) for _ in range(6)), hs)
    _scan(data, np.ascontiguousarray(start, np.int64), np.ascontiguousarray(length, np.int64), out.hs, out.kind,
          out.hello_seen, out.hello_done, out.version, out.alert, out.alpn_start, out.alpn_end,
          out.leaf_start, out.leaf_end)
    return out


@njit(cache=True)
def _u24(buf, at):
    return (np.int64(buf[at]) << 16) | (np.int64(buf[at + 1]) << 8) | np.int64(buf[at + 2])


@njit(cache=True)
def _flight(data, base, n, hs, i, hello_seen, hello_done, version, alert, alpn_start, alpn_end, leaf_start,
            leaf_end):
    """One flight; hs[base:] receives its handshake bytes. True when read plainly."""
    end = base + n
    pos = base
    have = base               # end of the handshake bytes in hs
    used = base               # handshake bytes consumed as whole messages
    seen = False
    cert_done = False
    ver = -1
    while pos + 5 <= end:
        ctype, length, start, stop, cut = record_at(data, pos, end)
        if ctype < 0:
            return False
        if cut and ctype != HANDSHAKE:
            break
        if ctype == HANDSHAKE:
            hs[have:have + stop - start] = data[start:stop]
            have += stop - start
            while used + 4 <= have:
                mtype = hs[used]
                mend = used + 4 + _u24(hs, used + 1)
                if mtype == CERTIFICATE and not cert_done and seen and ver != TLS13:
                    p = used + 4
                    e = min(mend, have)
                    if p + 6 <= e:
                        size = _u24(hs, p + 3)
                        if size == 0:
                            cert_done = True
                            leaf_start[i] = EMPTY_LEAF
                        elif p + 6 + size <= e:
                            cert_done = True
                            leaf_start[i] = p + 6
                            leaf_end[i] = p + 6 + size
                if mend > have:
                    break
                if mtype == SERVER_HELLO and not seen:
                    ver = _server_hello(hs, used + 4, mend, i, alpn_start, alpn_end)
                    if ver < 0:
                        return False
                    seen = True
                elif mtype == SERVER_HELLO_DONE and seen:
                    hello_done[i] = True
                used = mend
        elif ctype == ALERT and alert[i] < 0:
            alert[i] = alert_code(data, start, length)
            if alert[i] >> 8 == 2:
                break                                      # fatal: nothing follows
        elif ctype == CHANGE_CIPHER_SPEC or ctype == APPLICATION_DATA:
            break
        if cut:
            break
        pos = stop
    if not seen and alert[i] < 0:
        return False                                       # nothing read: the reference may raise
    hello_seen[i] = seen
    version[i] = ver
    return True


@njit(cache=True)
def _scan(data, start, length, hs, kind, hello_seen, hello_done, version, alert, alpn_start, alpn_end,
          leaf_start, leaf_end):
    for i in range(len(start)):
        if _flight(data, start[i], length[i], hs, i, hello_seen, hello_done, version, alert, alpn_start, alpn_end,
                   leaf_start, leaf_end):
            kind[i] = READ
