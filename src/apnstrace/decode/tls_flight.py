"""Server flights in reassembled stream bytes, many at once in one compiled call.

A stream may be given as pieces of a buffer (scan_pieces: the segments where the chunk holds
them) or in one piece (scan_flights). Nothing is copied but the ServerHello's body and the leaf
certificate: the handshake messages are read where they lie, so the bulk of a certificate chain
is never loaded from memory.

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
from .raw_memory import load_u64, prefetch
from .tls_fast import _server_hello, alert_code, record_at

__all__ = ["FALLBACK", "READ", "FlightScan", "KnownLeaves", "scan_flights", "scan_pieces"]

FALLBACK, READ = 0, 1
TLS13 = 0x0304
# Prefetch: the first PREFETCH_BYTES of the flight AHEAD on are asked for while this one is read
# (its ServerHello and certificate headers; the flights lie scattered over the chunk, and each
# waited on memory). More (every piece's start, or 2 KB) was slower: the bandwidth is shared.
AHEAD = 8
PREFETCH_BYTES = 512
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
    hs: np.ndarray            # each flight's ServerHello body and leaf certificate (from its own `start` on)
    leaf_same: np.ndarray     # with known leaves (scan_pieces): see there; else -1


@dataclass(slots=True)
class KnownLeaves:
    """Leaves looked up during a scan: leaf k is data[start[k]:end[k]]; by_size: the k ordered
    by size (sizes: those sizes, ascending); the first n are valid."""
    data: np.ndarray
    start: np.ndarray
    end: np.ndarray
    by_size: np.ndarray
    sizes: np.ndarray
    n: int


def scan_flights(data: np.ndarray, start: np.ndarray, length: np.ndarray, hs: np.ndarray | None = None) -> FlightScan:
    """The flights at data[start:start+length] (each the start of a server's byte stream).
    hs: where to put their ServerHello bodies and leaves (at least len(data) long), else a new array."""
    n = len(start)
    start = np.ascontiguousarray(start, np.int64)
    hs = np.empty(len(data), np.uint8) if hs is None else hs
    return scan_pieces(data, start, np.ascontiguousarray(length, np.int64), np.arange(n + 1, dtype=np.int64),
                       start, hs)


def scan_pieces(buf: np.ndarray, piece_off: np.ndarray, piece_len: np.ndarray, first_piece: np.ndarray,
                hs_start: np.ndarray, hs: np.ndarray, known: KnownLeaves | None = None) -> FlightScan:
    """The flights whose bytes lie in pieces of `buf`, read where they are (no reassembled copy):
    flight i is buf[piece_off[j]:piece_off[j] + piece_len[j]] for j in first_piece[i]:first_piece[i + 1],
    joined. Its ServerHello body and leaf go to hs[hs_start[i]:] (room for the flight's length).

    known: leaves to look each leaf up among, where it lies (a server shows the same leaf to
    every client): leaf_same[i] is k when flight i's leaf has known leaf k's bytes, else -2 - j,
    j the first flight of this call with those bytes (i itself when none before it); only such
    first leaves go to hs (leaf_start, leaf_end). -1: no leaf, or an empty one."""
    n = len(first_piece) - 1
    out = FlightScan(np.zeros(n, np.int8), np.zeros(n, np.bool_), np.zeros(n, np.bool_),
                     *(np.full(n, -1, np.int64) for _ in range(6)), hs, np.full(n, -1, np.int64))
    look = known is not None
    if known is None:
        known = _NO_LEAVES
    _scan(buf, np.ascontiguousarray(piece_off, np.int64), np.ascontiguousarray(piece_len, np.int64),
          np.ascontiguousarray(first_piece, np.int64), np.ascontiguousarray(hs_start, np.int64), out.hs, out.kind,
          out.hello_seen, out.hello_done, out.version, out.alert, out.alpn_start, out.alpn_end,
          out.leaf_start, out.leaf_end, out.leaf_same, look, known.data, known.start, known.end, known.by_size,
          known.sizes, known.n)
    return out


_NO_LEAVES = KnownLeaves(np.zeros(1, np.uint8), *(np.zeros(1, np.int64) for _ in range(4)), 0)


# The helpers are inlined into _scan in numba's IR: called per record (per flight), each array
# argument cost an atomic reference count taken and dropped (scan_pieces 9.1 -> 8.1 ms on engine_2m).
@njit(cache=True, inline="always")
def _u24(buf, at):
    return (np.int64(buf[at]) << 16) | (np.int64(buf[at + 1]) << 8) | np.int64(buf[at + 2])


@njit(cache=True, inline="always")
def _copy(buf, piece_off, piece_len, a, b, lo, hi, out, at):
    """Bytes lo:hi of the stream made of pieces a:b into out[at:]."""
    s = 0
    for j in range(a, b):
        e = s + piece_len[j]
        if e > lo:
            x = max(lo, s)
            y = min(hi, e)
            # A loop over unsigned indices, which LLVM turns into a vector copy: a slice assignment
            # (or signed indices, checked for wraparound) copies byte by byte, 3-4 times slower.
            src = np.uint64(piece_off[j] + x - s)
            dst = np.uint64(at + x - lo)
            for q in range(np.uint64(max(y - x, 0))):
                out[dst + q] = buf[src + q]
        if e >= hi:
            break
        s = e


@njit(cache=True, inline="always")
def _differ(buf, piece_off, piece_len, a, b, lo, hi, other, at):
    """Whether bytes lo:hi of the stream made of pieces a:b differ from other[at:] (_copy's walk)."""
    s = 0
    differ = np.uint64(0)
    for j in range(a, b):
        e = s + piece_len[j]
        if e > lo:
            x = max(lo, s)
            y = min(hi, e)
            # 8 bytes at a time (unaligned loads), no early exit
            src = piece_off[j] + x - s
            dst = at + x - lo
            m = y - x
            q = 0
            while q + 8 <= m:
                differ |= load_u64(other, dst + q) ^ load_u64(buf, src + q)
                q += 8
            while q < m:
                differ |= np.uint64(other[dst + q] ^ buf[src + q])
                q += 1
        if e >= hi:
            break
        s = e
    return differ != 0


@njit(cache=True, inline="always")
def _vwalk(buf, piece_off, piece_len, a, b, rec_v, rec_s, nrec, lo, hi, out, at, compare):
    """Bytes lo:hi of the handshake bytes (record r's payload: stream bytes from rec_s[r], at
    rec_v[r]:rec_v[r + 1] among them) copied into out[at:]; or, with `compare` (a constant at each
    call: inlined, the other branch is gone), whether they differ from out[at:]."""
    r = nrec - 1
    while r > 0 and rec_v[r] > lo:
        r -= 1
    while lo < hi:
        stop = min(hi, rec_v[r + 1])
        s = rec_s[r] + lo - rec_v[r]
        if compare:
            if _differ(buf, piece_off, piece_len, a, b, s, s + stop - lo, out, at):
                return True
        else:
            _copy(buf, piece_off, piece_len, a, b, s, s + stop - lo, out, at)
        at += stop - lo
        lo = stop
        r += 1
    return False


@njit(cache=True, inline="always")
def _flight(buf, piece_off, piece_len, a, b, n, hs, base, i, tmp, rec_v, rec_s, hello_seen, hello_done, version,
            alert, alpn_start, alpn_end, leaf_start, leaf_end, leaf_same, look, k_data, k_start, k_end, k_by_size,
            k_sizes, k_n, firsts, n_first):
    """One flight (n bytes in pieces a:b; positions below are in the stream); hs[base:] receives
    the ServerHello's body and the leaf certificate. The handshake bytes are read where they lie
    (records: rec_v, rec_s), only the parts looked at: a certificate chain's other certificates
    are never loaded from memory. True when read plainly."""
    end = n
    pos = 0
    nrec = 0
    rec_v[0] = 0
    have = 0                  # handshake bytes so far
    used = 0                  # handshake bytes consumed as whole messages
    out = base                # end of what went to hs
    seen = False
    cert_done = False
    ver = -1
    while pos + 5 <= end:
        _copy(buf, piece_off, piece_len, a, b, pos, pos + 5, tmp, 0)
        ctype, length, start, stop, cut = record_at(tmp, 0, end - pos)
        if ctype < 0:
            return False, n_first
        start += pos
        stop += pos
        if cut and ctype != HANDSHAKE:
            break
        if ctype == HANDSHAKE:
            rec_s[nrec] = start
            nrec += 1
            have += stop - start
            rec_v[nrec] = have
            while used + 4 <= have:
                _vwalk(buf, piece_off, piece_len, a, b, rec_v, rec_s, nrec, used, used + 4, tmp, 0, False)
                mtype = tmp[0]
                mend = used + 4 + _u24(tmp, 1)
                if mtype == CERTIFICATE and not cert_done and seen and ver != TLS13:
                    p = used + 4
                    e = min(mend, have)
                    if p + 6 <= e:
                        _vwalk(buf, piece_off, piece_len, a, b, rec_v, rec_s, nrec, p + 3, p + 6, tmp, 0, False)
                        size = _u24(tmp, 0)
                        if size == 0:
                            cert_done = True
                            leaf_start[i] = EMPTY_LEAF
                        elif p + 6 + size <= e:
                            cert_done = True
                            same = -2 - i
                            if look:
                                lo = p + 6
                                hi = lo + size
                                _vwalk(buf, piece_off, piece_len, a, b, rec_v, rec_s, nrec, hi - 1, hi, tmp, 0, False)
                                last = tmp[0]
                                # Compared with the known leaves of its size (their last bytes first)
                                x = np.searchsorted(k_sizes[:k_n], size)
                                while x < k_n and k_sizes[x] == size:
                                    k = k_by_size[x]
                                    if k_data[k_end[k] - 1] == last and not _vwalk(
                                            buf, piece_off, piece_len, a, b, rec_v, rec_s, nrec, lo, hi, k_data,
                                            k_start[k], True):
                                        same = k
                                        break
                                    x += 1
                                if same < 0:             # then with the new ones of this call
                                    for f in range(n_first):
                                        j = firsts[f]
                                        if leaf_end[j] - leaf_start[j] == size and hs[leaf_end[j] - 1] == last \
                                                and not _vwalk(buf, piece_off, piece_len, a, b, rec_v, rec_s, nrec,
                                                               lo, hi, hs, leaf_start[j], True):
                                            same = -2 - j
                                            break
                            leaf_same[i] = same
                            if same == -2 - i:
                                _vwalk(buf, piece_off, piece_len, a, b, rec_v, rec_s, nrec, p + 6, p + 6 + size, hs,
                                       out, False)
                                leaf_start[i] = out
                                leaf_end[i] = out + size
                                out += size
                                firsts[n_first] = i
                                n_first += 1
                if mend > have:
                    break
                if mtype == SERVER_HELLO and not seen:
                    _vwalk(buf, piece_off, piece_len, a, b, rec_v, rec_s, nrec, used + 4, mend, hs, out, False)
                    ver = _server_hello(hs, out, out + mend - used - 4, i, alpn_start, alpn_end)
                    out += mend - used - 4
                    if ver < 0:
                        return False, n_first
                    seen = True
                elif mtype == SERVER_HELLO_DONE and seen:
                    hello_done[i] = True
                used = mend
        elif ctype == ALERT and alert[i] < 0:
            # alert_code reads two bytes only when the record holds exactly two (not cut: see above)
            if length == 2:
                _copy(buf, piece_off, piece_len, a, b, start, start + 2, tmp, 0)
            alert[i] = alert_code(tmp, 0, length)
            if alert[i] >> 8 == 2:
                break                                      # fatal: nothing follows
        elif ctype == CHANGE_CIPHER_SPEC or ctype == APPLICATION_DATA:
            break
        if cut:
            break
        pos = stop
    if not seen and alert[i] < 0:
        return False, n_first                              # nothing read: the reference may raise
    hello_seen[i] = seen
    version[i] = ver
    return True, n_first


@njit(cache=True)
def _scan(buf, piece_off, piece_len, first_piece, hs_start, hs, kind, hello_seen, hello_done, version, alert,
          alpn_start, alpn_end, leaf_start, leaf_end, leaf_same, look, k_data, k_start, k_end, k_by_size, k_sizes,
          k_n):
    tmp = np.empty(8, np.uint8)
    most = 0
    for i in range(len(first_piece) - 1):
        n = 0
        for j in range(first_piece[i], first_piece[i + 1]):
            n += piece_len[j]
        most = max(most, n)
    rec_v = np.empty(most // 5 + 2, np.int64)     # a flight's handshake records (5 bytes each at least)
    rec_s = np.empty(most // 5 + 2, np.int64)
    nf = len(first_piece) - 1
    firsts = np.empty(nf, np.int64)              # flights whose leaf went to hs (looking leaves up)
    n_first = 0
    for i in range(nf):
        if i + AHEAD < nf:
            left = PREFETCH_BYTES
            for j in range(first_piece[i + AHEAD], first_piece[i + AHEAD + 1]):
                at = np.uint64(piece_off[j])
                for line in range(0, min(piece_len[j], left), 64):
                    prefetch(buf, at + np.uint64(line))
                left -= piece_len[j]
                if left <= 0:
                    break
        a = first_piece[i]
        b = first_piece[i + 1]
        n = 0
        for j in range(a, b):
            n += piece_len[j]
        plain, n_first = _flight(buf, piece_off, piece_len, a, b, n, hs, hs_start[i], i, tmp, rec_v, rec_s,
                                 hello_seen, hello_done, version, alert, alpn_start, alpn_end, leaf_start, leaf_end,
                                 leaf_same, look, k_data, k_start, k_end, k_by_size, k_sizes, k_n, firsts, n_first)
        if plain:
            kind[i] = READ
