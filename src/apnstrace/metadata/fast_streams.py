"""The common TCP case without Python per packet: a flow direction whose first TLS or HTTP
payload holds its whole ClientHello, server flight, request head or status line.

Per chunk, one compiled pass (`candidates`) picks those payloads among the rows the collector
would feed its streams and compiled scans (decode/tls_fast.py, http_fast.py) read all of them at once; Python then only
turns offsets into columns of the metadata log (meta_log.py), whole chunks at once. A payload qualifies only when reading it
alone gives exactly what the stream path would: it is its flow direction's only row in this
feed, no stream is open or finished for it, and the other direction has nothing in this feed
that writes the same metadata fields (so the order the stream path would have used is moot).
Everything else, and anything the scans do not read plainly, stays on the stream path.
"""
from __future__ import annotations

import threading
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from ..decode import http_fast, tls, tls_fast
from ..decode.malformed import Malformed
from ..decode.raw_memory import prefetch
from ..reader.walk import njit
from ..records import PacketBatch
from .pick import HANDSHAKE0, HELLO5, NOT_HELLO5, RESPONSE5
from .dns_feed import COMPILED
from .held import gather_ranges
from .key_set import KeySet, isin_keys
from .text_columns import TextTable, text_column

# What a stream start writes: 1 ClientHello, 2 server flight, 3 HTTP request, 4 HTTP response.
# 0: any other row (a continuation, a PROXY header): it keeps its flow direction on the stream path.
HELLO, FLIGHT, REQUEST, RESPONSE = 1, 2, 3, 4
# The scans' kinds, as constants the kernels here compile in.
_TLS_HELLO, _TLS_FLIGHT = tls_fast.HELLO, tls_fast.FLIGHT
_HTTP_REQUEST, _HTTP_RESPONSE = http_fast.REQUEST, http_fast.RESPONSE

_ALPN: dict[bytes, str | None] = {}      # ALPN lists by their bytes: a handful of distinct ones
_CACHE_MAX = 4096


def take_fast(collector, buf: np.ndarray, pk: PacketBatch, key: np.ndarray, rows: np.ndarray,
              is_start: np.ndarray, start_kind: np.ndarray, pending: np.ndarray, peek: np.ndarray) -> np.ndarray:
    """Read the rows that qualify; return the others, in their order, for the stream path.

    is_start: per row of the chunk, a stream start the collector picked (its first TLS / HTTP
    start in this chunk); pending: keys with a stream open before this chunk;
    peek: pick.py's bits per row."""
    if not COMPILED or rows.size == 0:
        return rows
    role, cand = candidates(rows, key, is_start, start_kind, peek, pending, collector.done["tls"],
                            collector.done["http"])
    at, keys, off, cap, ts, n_tls = split_candidates(rows, cand, role, key, pk.payload_off, pk.payload_cap, pk.ts)
    taken = np.zeros(len(rows), bool)
    taken[at[:n_tls]] = _tls_rows(collector, buf, keys[:n_tls], off[:n_tls], cap[:n_tls], ts[:n_tls])
    taken[at[n_tls:]] = _http_rows(collector, buf, keys[n_tls:], off[n_tls:], cap[n_tls:])
    return rows[~taken]


def split_candidates(rows, cand, role, key, payload_off, payload_cap, ts):
    """The candidates' (position in rows, key, payload offset, payload cap, ts), TLS roles first
    then HTTP ones, each in cand order, and the number of TLS ones: one compiled gather instead of
    a dozen numpy steps, its scattered reads asked for ahead."""
    rows = np.ascontiguousarray(rows, np.int64)
    cand = np.ascontiguousarray(cand, np.int64)
    fields, when, n_tls = _split(rows, cand, role, key, np.ascontiguousarray(payload_off, np.int64),
                                 np.ascontiguousarray(payload_cap, np.int64), np.ascontiguousarray(ts, np.float64))
    return fields[0], fields[1], fields[2], fields[3], when, n_tls


_SPLIT_AHEAD = 16       # _split / _candidates ask for a row's fields this many rows on


@njit(cache=True)
def _split(rows, cand, role, key, off, cap, ts):
    """split_candidates' arrays: fields (position, key, offset, cap) as one (4, m) array, ts, n_tls."""
    m = len(cand)
    n_tls = 0
    for i in range(m):
        if role[cand[i]] <= FLIGHT:
            n_tls += 1
    fields = np.empty((4, m), np.int64)
    when = np.empty(m, np.float64)
    t = 0
    h = n_tls
    for i in range(m):
        if i + _SPLIT_AHEAD < m:
            r = np.uint64(rows[cand[i + _SPLIT_AHEAD]])
            prefetch(key, r)
            prefetch(off, r)
            prefetch(cap, r)
            prefetch(ts, r)
        j = cand[i]
        r = rows[j]
        if role[j] <= FLIGHT:
            o = t
            t += 1
        else:
            o = h
            h += 1
        fields[0, o] = j
        fields[1, o] = key[r]
        fields[2, o] = off[r]
        fields[3, o] = cap[r]
        when[o] = ts[r]
    return fields, when, n_tls


def candidates(rows: np.ndarray, key: np.ndarray, is_start: np.ndarray, start_kind: np.ndarray, peek: np.ndarray,
               pending: np.ndarray, done_tls: KeySet, done_http: KeySet) -> tuple[np.ndarray, np.ndarray]:
    """(role per row of `rows`, the positions in `rows` that qualify, ascending), in one compiled
    pass: the dozen numpy steps of candidates_numpy (sort, group, look up) cost ~10 ms a run."""
    rows = np.ascontiguousarray(rows, np.int64)
    pending = np.ascontiguousarray(pending, np.int64)
    table = _group_table(0)
    while True:
        role, cand, span = _candidates(rows, key, is_start, start_kind, peek, pending, done_tls.bits, done_http.bits,
                                       table)
        if span < 0:
            return role, cand
        if span >= _MAX_GROUP_TABLE:
            return candidates_numpy(rows, key, is_start, start_kind, peek, pending, done_tls, done_http)
        table = _group_table(span)


_MAX_GROUP_TABLE = 1 << 24           # keys spanning more go to candidates_numpy
_GROUP_TABLES = threading.local()    # per thread: key - lo -> its group in _candidates (-1 at rest)
_PENDING = -2                        # in the table while _candidates runs: a pending key without rows


def _group_table(span: int) -> np.ndarray:
    table = getattr(_GROUP_TABLES, "table", None)
    if table is None or len(table) <= span:
        table = _GROUP_TABLES.table = np.full(max(span + 1, 1 << 20), -1, np.int32)
    return table


def candidates_numpy(rows: np.ndarray, key: np.ndarray, is_start: np.ndarray, start_kind: np.ndarray,
                     peek: np.ndarray, pending: np.ndarray, done_tls: KeySet,
                     done_http: KeySet) -> tuple[np.ndarray, np.ndarray]:
    """The numpy expressions `candidates` replaced: the reference (tests)."""
    role = _roles(rows, is_start, start_kind, peek)
    rk = key[rows]
    uniq, first, inv, counts = np.unique(rk, return_index=True, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    written = np.zeros(len(uniq), np.int64)              # per key: bit r set when a row has role r
    np.bitwise_or.at(written, inv, np.left_shift(1, role))
    other = rk ^ 1
    at = np.minimum(np.searchsorted(uniq, other), len(uniq) - 1)
    present = uniq[at] == other
    other_written = np.where(present, written[at], 0)
    # Rows without a role (segments continuing a stream) may write anything, except in a server
    # flight's direction: next to a ClientHello they write a flight's fields only.
    quiet = ((other_written & 1) == 0) | ((role == HELLO) & present & _flight_directions(rows, first, inv, is_start,
                                                                                          start_kind, peek)[at])
    fast = ((role > 0) & (counts[inv] == 1) & ~isin_keys(rk, pending) & ~isin_keys(other, pending)
            & quiet & (((other_written >> role) & 1) == 0))
    cand = np.flatnonzero(fast)
    # Finished streams: a direction reads only its first message; a ClientHello must not race
    # the other direction's late alert (which reads client_dir).
    k, r = rk[cand], role[cand]
    keep = np.where(r <= FLIGHT, ~(done_tls.contains(k) | ((r == HELLO) & done_tls.contains(k ^ 1))),
                    ~done_http.contains(k))
    return role, cand[keep]


def _flight_directions(rows, first, inv, is_start, start_kind, peek) -> np.ndarray:
    """Per key (np.unique order): its rows are one stream start, a TLS record of 6 bytes at
    least that is not a ClientHello (the stream path reads a server flight from it whatever
    follows), then segments without a start of their own (pick.py's idle rows: no TLS, HTTP or
    PROXY start, so no other kind of stream)."""
    starts = np.bincount(inv, weights=is_start[rows], minlength=len(first))
    head = rows[first]                       # stream starts come first in the feed
    bits = peek[head]
    six = (bits & (HELLO5 | NOT_HELLO5)) != 0
    hello = ((bits & HANDSHAKE0) != 0) & ((bits & HELLO5) != 0)
    return (starts == 1) & is_start[head] & (start_kind[head] == 1) & six & ~hello


def _roles(rows, is_start, start_kind, peek) -> np.ndarray:
    kind = np.where(is_start[rows], start_kind[rows], 0)
    bits = peek[rows]               # stream starts are early rows: pick.py peeked at them
    hello, response = (bits & HELLO5) != 0, (bits & RESPONSE5) != 0
    return np.select([kind == 1, kind == 2],
                     [np.where(hello, HELLO, FLIGHT), np.where(response, RESPONSE, REQUEST)], 0).astype(np.int64)


@njit(cache=True)
def _bit(bits, k):
    """KeySet.contains for one key."""
    return k < len(bits) and bits[k]


@njit(cache=True)
def _candidates(rows, key, is_start, start_kind, peek, pending, done_tls, done_http, table):
    """candidates_numpy in one pass: (role, candidates, -1), or (empty, empty, span) when the
    rows' keys and their other directions (key ^ 1) span more than `table` holds.

    table: -1 at rest, left so. Rows are grouped by key in feed order (group g: the g-th key
    seen, its first row first); per group its row count, the roles its rows write, its number
    of starts and whether its key is pending (pending keys are marked in the table first)."""
    n = len(rows)
    rk = np.empty(n, np.int64)
    lo = hi = 0
    for j in range(n):
        if j + _SPLIT_AHEAD < n:        # the rows' fields, scattered over the chunk's packets
            ahead = np.uint64(rows[j + _SPLIT_AHEAD])
            prefetch(key, ahead)
            prefetch(start_kind, ahead)
            prefetch(is_start, ahead)
            prefetch(peek, ahead)
        k = key[rows[j]]
        rk[j] = k
        if j == 0 or k < lo:
            lo = k
        if j == 0 or k > hi:
            hi = k
    lo -= 1                                 # +- 1: a key's other direction
    hi += 1
    if n == 0 or hi - lo >= len(table):
        return np.empty(0, np.int64), np.empty(0, np.int64), max(hi - lo, 0) if n else -1
    for p in pending:
        if lo <= p <= hi:
            table[p - lo] = _PENDING
    role = np.empty(n, np.int64)
    group = np.empty(n, np.int64)
    g_first = np.empty(n, np.int64)
    g_count = np.zeros(n, np.int64)
    g_written = np.zeros(n, np.int64)
    g_starts = np.zeros(n, np.int64)
    g_pending = np.zeros(n, np.bool_)
    n_groups = 0
    for j in range(n):
        r = rows[j]
        kind = start_kind[r] if is_start[r] else 0
        bits = peek[r]
        if kind == 1:
            role[j] = HELLO if bits & HELLO5 else FLIGHT
        elif kind == 2:
            role[j] = RESPONSE if bits & RESPONSE5 else REQUEST
        else:
            role[j] = 0
        t = rk[j] - lo
        g = table[t]
        if g < 0:
            g_pending[n_groups] = g == _PENDING
            g = table[t] = n_groups
            g_first[g] = j
            n_groups += 1
        group[j] = g
        g_count[g] += 1
        g_written[g] |= 1 << role[j]
        if is_start[r]:
            g_starts[g] += 1
    # per group: the other direction's group (-1: absent), whether that one is pending and
    # whether it reads as a server flight
    g_other = np.empty(n_groups, np.int64)
    g_other_pending = np.zeros(n_groups, np.bool_)
    g_flight = np.zeros(n_groups, np.bool_)
    for g in range(n_groups):
        j = g_first[g]
        o = table[(rk[j] ^ 1) - lo]
        g_other_pending[g] = o == _PENDING or (o >= 0 and g_pending[o])
        g_other[g] = max(o, -1)
        head = rows[j]
        bits = peek[head]
        six = (bits & (HELLO5 | NOT_HELLO5)) != 0
        hello = (bits & HANDSHAKE0) != 0 and (bits & HELLO5) != 0
        g_flight[g] = g_starts[g] == 1 and is_start[head] and start_kind[head] == 1 and six and not hello
    for g in range(n_groups):
        table[rk[g_first[g]] - lo] = -1
    for p in pending:
        if lo <= p <= hi:
            table[p - lo] = -1
    cand = np.empty(n, np.int64)
    m = 0
    for j in range(n):
        r = role[j]
        g = group[j]
        if r == 0 or g_count[g] != 1 or g_pending[g] or g_other_pending[g]:
            continue
        k = rk[j]
        o = g_other[g]
        other_written = g_written[o] if o >= 0 else 0
        quiet = (other_written & 1) == 0 or (r == HELLO and o >= 0 and g_flight[o])
        if not quiet or (other_written >> r) & 1:
            continue
        if r <= FLIGHT:
            if _bit(done_tls, k) or (r == HELLO and _bit(done_tls, k ^ 1)):
                continue
        elif _bit(done_http, k):
            continue
        cand[m] = j
        m += 1
    return role, cand[:m], -1


def _tls_rows(collector, buf, keys, off, cap, ts) -> np.ndarray:
    scan = tls_fast.scan_tls(buf, off, cap)
    h, f, read_keys = _tls_parts(scan.kind, scan.sni_start, scan.sni_end, scan.alpn_start, scan.alpn_end,
                                 scan.version, scan.alert, keys, ts)
    n_hello, n_flight = len(h.uid), len(f.uid)
    # The SNIs and the flights' selected protocols as one column, then two slices of it: one
    # compiled layout call and one Arrow array a chunk instead of two.
    texts = text_column(buf, h.text[0], h.text[1])
    if n_hello:
        collector.log.batch("hello", h.uid, sni=texts.slice(0, n_hello), alpn=_alpn_column(buf, h.alpn[0], h.alpn[1]),
                            client_dir=_column(h.direction, np.int8, pa.int8()),
                            hello_ts=_column(h.ts, np.float64, pa.float64()))
        collector.hellos.append(h.uid)
    if n_flight:
        collector.log.batch("flight", f.uid,
                            server_ts=_column(f.ts, np.float64, pa.float64(), f.seen if f.unseen else None),
                            tls_version=names_of(f.version, tls.version_name),
                            server_alpn=texts.slice(n_hello),
                            tls_alert=names_of(f.alert, alert_text),
                            cert_issuer=_nulls(n_flight))
    collector.done["tls"].update(read_keys)
    return scan.kind != tls_fast.FALLBACK


class _Hellos(NamedTuple):
    """_tls_parts' ClientHellos, in candidate order."""
    uid: np.ndarray           # int64
    direction: np.ndarray     # int8: key & 1
    ts: np.ndarray            # float64
    alpn: np.ndarray          # (2, n) int64: the ALPN list's start, end (-1: none)
    text: np.ndarray          # (2, hellos + flights) int64: the SNIs' then the flights' ALPN start, end


class _Flights(NamedTuple):
    """_tls_parts' server flights, in candidate order."""
    uid: np.ndarray           # int64
    ts: np.ndarray            # float64
    seen: np.ndarray          # bool: a ServerHello was read (version >= 0)
    unseen: int               # flights without one
    version: np.ndarray       # int64
    alert: np.ndarray         # int64


def _tls_parts(kind, sni_start, sni_end, alpn_start, alpn_end, version, alert, keys, ts):
    """The scan's rows per kind, as _tls_rows writes them, and the keys it read (kind not
    FALLBACK): one compiled pass instead of some thirty numpy steps a chunk."""
    h_int, h_dir, h_ts, text, f_int, f_ts, f_seen, unseen, read_keys = _tls_gather(
        kind, sni_start, sni_end, alpn_start, alpn_end, version, alert, keys, ts)
    return (_Hellos(h_int[0], h_dir, h_ts, h_int[1:], text),
            _Flights(f_int[0], f_ts, f_seen, unseen, f_int[1], f_int[2]), read_keys)


@njit(cache=True)
def _tls_gather(kind, sni_start, sni_end, alpn_start, alpn_end, version, alert, keys, ts):
    """_tls_parts' arrays: hellos (uid, alpn start, alpn end) as one (3, h) array, their
    directions and ts, the texts' (2, h + f) ranges, flights (uid, version, alert) as one
    (3, f) array, their ts and seen bits, the number unseen, and the read keys."""
    n = len(kind)
    n_h = 0
    n_f = 0
    for i in range(n):
        if kind[i] == _TLS_HELLO:
            n_h += 1
        elif kind[i] == _TLS_FLIGHT:
            n_f += 1
    h_int = np.empty((3, n_h), np.int64)
    h_dir = np.empty(n_h, np.int8)
    h_ts = np.empty(n_h, np.float64)
    text = np.empty((2, n_h + n_f), np.int64)
    f_int = np.empty((3, n_f), np.int64)
    f_ts = np.empty(n_f, np.float64)
    f_seen = np.empty(n_f, np.bool_)
    read_keys = np.empty(n_h + n_f, np.int64)
    unseen = 0
    h = 0
    f = 0
    for i in range(n):
        k = kind[i]
        if k == _TLS_HELLO:
            h_int[0, h] = keys[i] >> 1
            h_int[1, h] = alpn_start[i]
            h_int[2, h] = alpn_end[i]
            h_dir[h] = keys[i] & 1
            h_ts[h] = ts[i]
            text[0, h] = sni_start[i]
            text[1, h] = sni_end[i]
            h += 1
        elif k == _TLS_FLIGHT:
            f_int[0, f] = keys[i] >> 1
            f_int[1, f] = version[i]
            f_int[2, f] = alert[i]
            f_ts[f] = ts[i]
            f_seen[f] = version[i] >= 0
            if version[i] < 0:
                unseen += 1
            text[0, n_h + f] = alpn_start[i]
            text[1, n_h + f] = alpn_end[i]
            f += 1
        else:
            continue
        read_keys[h + f - 1] = keys[i]
    return h_int, h_dir, h_ts, text, f_int, f_ts, f_seen, unseen, read_keys


def _column(values: np.ndarray, dtype, kind: pa.DataType, valid: np.ndarray | None = None) -> pa.Array:
    """values (which fit dtype) as an Arrow column over their own buffer, null where not valid:
    pa.array's cast and the memory pool's allocation cost more than the rest of a small batch."""
    data = np.ascontiguousarray(values, dtype)
    bits = None if valid is None or valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(kind, len(data), [bits, pa.py_buffer(data)])


_NULLS = threading.local()      # per thread: a null large_string column, sliced to each length


def _nulls(n: int) -> pa.Array:
    column = getattr(_NULLS, "column", None)
    if column is None or len(column) < n:
        column = _NULLS.column = pa.nulls(max(n, 1 << 12), pa.large_string())
    return column.slice(0, n)


def names_of(codes: np.ndarray, name) -> pa.Array:
    """name(code) per row, null where code < 0: each distinct code named once.

    name: a module-level function (its codes' names are kept between calls, by function):
    16-bit codes (versions, alert level << 8 | description) look their name up in a table."""
    if len(codes) and (codes.min() >= -1) and (codes.max() < _CODE_SPAN - 1):
        return _code_names(name).column(codes)
    values, inverse = np.unique(codes, return_inverse=True)
    named = pa.array([name(int(v)) if v >= 0 else None for v in values.tolist()], type=pa.large_string())
    return named.take(pa.array(inverse.reshape(-1)))


def alert_text(code: int) -> str:
    """tls.alert_name of a level << 8 | description code."""
    return tls.alert_name(code >> 8, code & 0xFF)


_CODE_SPAN = (1 << 16) + 1    # codes -1 .. 65535, at index code + 1


class _CodeNames:
    """One naming function's names: slot[code + 1] is the code's position in `named` (-1: not
    named yet); named[0] is null (code -1)."""

    def __init__(self, name) -> None:
        self.name = name
        self.slot = np.full(_CODE_SPAN, -1, np.int32)
        self.slot[0] = 0
        self.texts: list[str | None] = [None]
        self.named = TextTable(pa.array(self.texts, type=pa.large_string()))
        self.lock = threading.Lock()

    def column(self, codes: np.ndarray) -> pa.Array:
        with self.lock:             # collectors in other threads share the table
            at = self.slot[codes + 1]
            if (at < 0).any():
                for code in np.unique(codes[at < 0]).tolist():
                    self.slot[code + 1] = len(self.texts)
                    self.texts.append(self.name(code))
                self.named = TextTable(pa.array(self.texts, type=pa.large_string()))
                at = self.slot[codes + 1]
            return self.named.take(at)


_NAMERS: dict = {}


def _code_names(name) -> _CodeNames:
    got = _NAMERS.get(name)
    if got is None:
        got = _NAMERS[name] = _CodeNames(name)
    return got


def _alpn_column(buf: np.ndarray, start: np.ndarray, end: np.ndarray) -> pa.Array:
    """_alpn_offered of each ClientHello's ALPN list bytes (null where start < 0): the lists are
    a handful of distinct byte strings, each named once and then found by a compiled lookup."""
    start, end = np.ascontiguousarray(start, np.int64), np.ascontiguousarray(end, np.int64)
    with _LISTS.lock:               # collectors in other threads share the table
        at = np.empty(len(start), np.int64)
        _list_ids(buf, start, end, _LISTS.data, _LISTS.off, at)
        new = np.flatnonzero(at < 0)
        if new.size:
            lists = list(dict.fromkeys(buf[a:b].tobytes() for a, b in zip(start[new].tolist(), end[new].tolist())))
            if len(_LISTS.off) + len(lists) <= _LISTS_MAX:
                _LISTS.learn(lists)
                _list_ids(buf, start, end, _LISTS.data, _LISTS.off, at)
        if (at >= 0).all():
            return _LISTS.named.take(at)
    return _alpn_by_dictionary(buf, start, end)        # more distinct lists than the table holds


class _AlpnLists:
    """ALPN lists seen, their bytes back to back: list k is data[off[k]:off[k + 1]], named
    named[k + 1] (named[0] is null: no ALPN extension)."""

    def __init__(self) -> None:
        self.data = np.empty(0, np.uint8)
        self.off = np.zeros(1, np.int64)
        self.named = TextTable(pa.array([None], type=pa.large_string()))
        self.lock = threading.Lock()

    def learn(self, ordered: list[bytes]) -> None:
        """Add these lists (distinct, not in the table), in the order they were first seen: the
        usual ones come early and are found first."""
        self.data = np.concatenate([self.data, np.frombuffer(b"".join(ordered), np.uint8)])
        self.off = np.concatenate([self.off, self.off[-1] + np.cumsum([len(r) for r in ordered])]).astype(np.int64)
        self.named = TextTable(pa.concat_arrays([self.named.texts, pa.array([_alpn_offered(r) for r in ordered],
                                                                           pa.large_string())]))


_LISTS = _AlpnLists()
_LISTS_MAX = 257                # lists the table holds (+1): a lookup goes through them in turn


@njit(cache=True)
def _list_ids(buf, start, end, data, off, at):
    """at[i]: 0 when start[i] < 0, else 1 + the table's list equal to buf[start[i]:end[i]], -1 if none."""
    for i in range(len(start)):
        a = start[i]
        if a < 0:
            at[i] = 0
            continue
        m = end[i] - a
        at[i] = -1
        for k in range(len(off) - 1):
            o = off[k]
            if off[k + 1] - o != m:
                continue
            same = True
            for j in range(m):
                if data[o + j] != buf[a + j]:
                    same = False
                    break
            if same:
                at[i] = k + 1
                break


def _alpn_by_dictionary(buf: np.ndarray, start: np.ndarray, end: np.ndarray) -> pa.Array:
    """_alpn_column without the table: each distinct list of this call named once."""
    valid = start >= 0
    lengths = np.where(valid, end - start, 0).astype(np.int64)
    offsets = np.zeros(len(start) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = gather_ranges(buf, np.where(valid, start, 0), lengths)
    raw = pa.Array.from_buffers(pa.large_binary(), len(start), [pa.py_buffer(np.packbits(valid, bitorder="little")),
                                                               pa.py_buffer(offsets), pa.py_buffer(data)])
    encoded = raw.dictionary_encode()
    named = pa.array([_alpn_offered(v) for v in encoded.dictionary.to_pylist()], type=pa.large_string())
    return named.take(encoded.indices)


def _alpn_offered(raw: bytes) -> str | None:
    """The ClientHello's ALPN as the collector writes it: names joined by commas."""
    known = _ALPN.get(raw, False)
    if known is not False:
        return known
    names, pos = [], 0
    while pos < len(raw):
        names.append(tls.text(raw[pos + 1:pos + 1 + raw[pos]]))
        pos += 1 + raw[pos]
    value = ",".join(names) or None
    if len(_ALPN) < _CACHE_MAX:
        _ALPN[raw] = value
    return value


def _http_rows(collector, buf, keys, off, cap) -> np.ndarray:
    scan = http_fast.scan_http(buf, off, cap)
    response_uid, status, request_uid, request_dir, text, read_keys = _http_parts(
        scan.kind, off, scan.method_end, scan.target_start, scan.target_end, scan.host_start, scan.host_end,
        scan.agent_start, scan.agent_end, scan.status, keys)
    if len(response_uid):
        collector.log.batch("response", response_uid, http_status=_column(status, np.int32, pa.int32()))
    if len(request_uid):
        # The four text fields as one column, then four slices of it: one gather and one look for
        # escapes instead of four. Methods are ASCII capitals (http.METHODS), so tls.text gives
        # them as parse_request's decode("ascii") does.
        method, host, path, agent = _slices(text_column(buf, text[0], text[1]), 4)
        collector.log.batch("request", request_uid, http_method=method, http_host=host, http_path=path,
                            http_user_agent=agent, client_dir=_column(request_dir, np.int8, pa.int8()))
    collector.done["http"].update(read_keys)
    return scan.kind != http_fast.FALLBACK


@njit(cache=True)
def _http_parts(kind, off, method_end, target_start, target_end, host_start, host_end, agent_start, agent_end,
                status, keys):
    """The scan's rows per kind, as _http_rows writes them, in one compiled pass (some twenty
    numpy steps a chunk): responses' uids and status (int32), requests' uids and directions
    (int8), their texts' ranges as a (2, 4 * requests) array (methods, hosts, targets, agents,
    each a run of rows) and the keys read (kind not FALLBACK)."""
    n = len(kind)
    n_q = 0
    n_r = 0
    for i in range(n):
        if kind[i] == _HTTP_REQUEST:
            n_q += 1
        elif kind[i] == _HTTP_RESPONSE:
            n_r += 1
    r_uid = np.empty(n_r, np.int64)
    r_status = np.empty(n_r, np.int32)
    q_uid = np.empty(n_q, np.int64)
    q_dir = np.empty(n_q, np.int8)
    text = np.empty((2, 4 * n_q), np.int64)
    read_keys = np.empty(n_q + n_r, np.int64)
    q = 0
    r = 0
    for i in range(n):
        k = kind[i]
        if k == _HTTP_RESPONSE:
            r_uid[r] = keys[i] >> 1
            r_status[r] = status[i]
            r += 1
        elif k == _HTTP_REQUEST:
            q_uid[q] = keys[i] >> 1
            q_dir[q] = keys[i] & 1
            text[0, q] = off[i]
            text[1, q] = method_end[i]
            text[0, n_q + q] = host_start[i]
            text[1, n_q + q] = host_end[i]
            text[0, 2 * n_q + q] = target_start[i]
            text[1, 2 * n_q + q] = target_end[i]
            text[0, 3 * n_q + q] = agent_start[i]
            text[1, 3 * n_q + q] = agent_end[i]
            q += 1
        else:
            continue
        read_keys[q + r - 1] = keys[i]
    return r_uid, r_status, q_uid, q_dir, text, read_keys


def _slices(column: pa.Array, parts: int) -> list[pa.Array]:
    """A column of `parts` equal runs of rows, as one array per run (views, no copies)."""
    n = len(column) // parts
    return [column.slice(i * n, n) for i in range(parts)]


def read_hellos(collector, hellos: list[tuple]) -> None:
    """ClientHellos the stream path reassembled from several payloads (~570 reads on engine_2m),
    scanned by the compiled reader all at once; their writes are rows as the stream path's (a
    chunk's few dozen do not pay for building columns). What the scan does not read plainly
    goes to the Python parser.

    hellos: (seq, uid, direction, first_ts, data); seq: the log's sequence number reserved for
    the write where the stream path would have made it."""
    datas = [h[4] for h in hellos]
    cap = np.fromiter(map(len, datas), np.int64, len(datas))
    off = np.zeros(len(datas), np.int64)
    np.cumsum(cap[:-1], out=off[1:])
    joined = b"".join(datas)
    scan = tls_fast.scan_tls(np.frombuffer(joined + bytes(8), np.uint8), off, cap)
    kinds, sni_start, sni_end = scan.kind.tolist(), scan.sni_start.tolist(), scan.sni_end.tolist()
    alpn_start, alpn_end = scan.alpn_start.tolist(), scan.alpn_end.tolist()
    log, text, alpn_offered = collector.log, tls.text, _alpn_offered
    for i, (seq, uid, direction, ts, data) in enumerate(hellos):
        if kinds[i] == tls_fast.HELLO:
            a, b = sni_start[i], alpn_start[i]
            sni = text(joined[a:sni_end[i]]) if a >= 0 else None
            alpn = alpn_offered(joined[b:alpn_end[i]]) if b >= 0 else None
        else:
            try:
                hello = tls.parse_client_hello(data)
            except Malformed as bad:
                collector.stats.malformed[bad.reason] += 1
                continue
            sni, alpn = hello.sni, ",".join(hello.alpn) or None
        log.row("hello", uid, sni, alpn, direction, ts, seq=seq)
        collector.hellos.append(uid)
