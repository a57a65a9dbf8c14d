"""The collector's per-chunk picking in one compiled pass over the chunk's packet columns.

MetadataCollector.add (collect.py) reads few of a chunk's rows: DNS over UDP and TCP, early QUIC
long headers, and the first payloads of each TCP flow direction (stream starts and what follows
them). Picking them took some twenty numpy passes over the chunk (masks by protocol, port,
payload length, rank; gathers of payload bytes for the start peeks), each payload byte gathered
again by each later step. Here one loop makes every row list at once and peeks at each early
payload once: its start kind and the few bytes take_fast / take_flights decide on.
`pick_numpy` is the numpy version it replaced: the reference (and the path without numba).
"""
from __future__ import annotations

import mmap
import threading
from typing import NamedTuple

import numpy as np

from ..decode.raw_memory import LITTLE, load_u64, prefetch
from ..reader.walk import njit
from ..records import PacketBatch
from .dns_feed import COMPILED

__all__ = ["Picked", "pick", "pick_keyed", "pick_numpy", "plan_into", "HELLO5", "NOT_HELLO5", "RESPONSE5", "HANDSHAKE0"]

TCP, UDP = 6, 17
# peek bits, per early TCP row (0 elsewhere)
HELLO5 = 1          # payload_cap >= 6 and byte 5 is a ClientHello (1)
NOT_HELLO5 = 2      # payload_cap >= 6 and byte 5 is not
RESPONSE5 = 4       # payload_cap >= 5 and it starts with "HTTP/"
HANDSHAKE0 = 8      # byte 0 is a TLS handshake record (0x16)
_HTTP_SLASH = int.from_bytes(b"HTTP/", "big")


class Picked(NamedTuple):
    """Row lists (ascending row numbers of the chunk) and per-row peeks."""
    dns_udp: np.ndarray        # UDP payloads to or from port 53 or 5353
    dns_answer: np.ndarray     # per dns_udp row: the QR bit (byte 2 & 0x80; 0 past the buffer's end)
    quic: np.ndarray           # other UDP payloads early in their flow direction, >= 20 bytes, a long
                               # header of a version quic.initial_crypto reads
    quic_version: np.ndarray   # per quic row: bytes 1-4
    dns_tcp: np.ndarray        # TCP port-53 payloads among a direction's first `dns_tcp_payloads`
    early: np.ndarray          # TCP payloads of rank < early
    later: np.ndarray          # TCP payloads of rank < max_segments
    late: np.ndarray           # TCP payloads of rank >= early
    start_kind: np.ndarray     # per chunk row: collect._start_kind at early rows, 0 elsewhere
    peek: np.ndarray           # per chunk row: the bits above at early rows, 0 elsewhere
    starting: np.ndarray       # early rows whose start_kind is not 0
    idle: np.ndarray           # early rows whose start_kind is 0
    alerts: np.ndarray         # early rows of 7 bytes, start_kind 1, an alert record


def pick(buf: np.ndarray, pk: PacketBatch, rank: np.ndarray, limits: tuple[int, int, int],
         words: tuple[np.ndarray, np.ndarray]) -> Picked:
    """limits: (EARLY, MAX_SEGMENTS, DNS_TCP_PAYLOADS); words: collect's HTTP and PROXY start words."""
    if not COMPILED:
        return pick_numpy(buf, pk, rank, limits, words)
    n, none = len(pk), np.empty(0, np.int64)
    return _picked(buf, pk, rank, limits, words, none, none.view(np.int8), none,
                   (np.zeros(n, np.int64), np.zeros(n, np.uint8), none))[0]


def pick_keyed(buf: np.ndarray, pk: PacketBatch, uid: np.ndarray, rank: np.ndarray, limits: tuple[int, int, int],
               words: tuple[np.ndarray, np.ndarray], plan: tuple) -> tuple:
    """pick, and the rows' flow-direction keys (uid * 2 + direction) with their min and max, made
    in the same first pass (a pass of their own over the cold columns took ~2 ms a run), and
    collect._plan's (start_rows, rows, unstarted, is_start) or None when its tables are too
    small or the keys' span too wide; then the uid of each dns_udp row and their (min, max)
    ((0, 0) when none), and the key of each `late` row. plan: (pending, first, kinds, mark, is_start, started,
    max_span), collect._plan_into's. Compiled only; uid int64, at least one row. What it
    returns but the keys is this thread's room, valid until its next call (MetadataCollector.add
    reads it within the chunk)."""
    n = len(pk)
    key = np.empty(n, np.int64)
    kept = getattr(_ROW_ARRAYS, "got", None)
    if kept is None or len(kept[0]) < n:
        size = max(n, 1 << 17, 2 * len(kept[0]) if kept is not None else 0)
        kept = _ROW_ARRAYS.got = [np.zeros(size, np.int64), np.zeros(size, np.uint8), np.empty(0, np.int64),
                                  paged_room((_LATE_KEY + 1, size))]
    got = _picked(buf, pk, rank, limits, words, uid, np.ascontiguousarray(pk.direction), key,
                  tuple(kept[:3]), kept[3], plan)
    kept[2] = got[0].early          # the only rows written: cleared by the next call
    return got


def paged_room(shape: tuple[int, int]) -> np.ndarray:
    """An int64 array (of zeros) whose pages become resident only as they are written, 4 KiB at
    a time: numpy asks for huge pages above 4 MiB, so each row list's first write made a 2 MiB
    page of its row resident, ~32 MB for the 15 lists of engine_10m's chunks where they use a
    few percent of it (reading peak ~30 MB lower). Private anonymous memory, advised against
    huge pages where the system would give them unasked (transparent huge pages "always")."""
    count = shape[0] * shape[1]
    room = mmap.mmap(-1, max(count, 1) * 8, flags=mmap.MAP_PRIVATE)
    if hasattr(mmap, "MADV_NOHUGEPAGE"):
        room.madvise(mmap.MADV_NOHUGEPAGE)
    return np.frombuffer(room, np.int64, count).reshape(shape)


# Per thread: start_kind and peek kept between chunks, all 0 but at the last chunk's early rows
# (zeroing fresh ones, an int64 per row, cost ~2.4 ms a run), those rows, and the row lists' room
# (the lists are views of it: copying them out cost ~1 ms a run).
_ROW_ARRAYS = threading.local()


def _picked(buf, pk, rank, limits, words, uid, direction, key, row_arrays, room=None, plan=None
            ) -> tuple[Picked, np.ndarray, int, int, tuple | None]:
    """row_arrays: start_kind and peek (>= n rows, 0 but at the rows of the third: cleared first).
    room: the row lists' (they are views of it), else _scratch's (they are copies)."""
    n = len(pk)
    rows = _scratch(n) if room is None else room
    start_kind, peek, clear = row_arrays
    counts = np.zeros(_LISTS + 2, np.int64)
    early, max_segments, dns_tcp_payloads = limits
    if plan is None:
        none = np.empty(0, np.int64)
        plan = (none, none, none.view(np.uint8), none.view(np.bool_), none.view(np.bool_), none, 0)
    pending, first, kinds, mark, is_start, started, max_span = plan
    lo, hi, planned, start_rows, plan_rows, unstarted = _pick(
        np.ascontiguousarray(buf, np.uint8), _i64(pk.proto), _i64(pk.payload_off), _i64(pk.payload_cap),
        _i64(pk.port_a), _i64(pk.port_b), _i64(rank), early, max_segments, dns_tcp_payloads, words[0], words[1],
        _HTTP_SLASH, rows, counts, start_kind, peek, uid, direction, key, clear,
        np.ascontiguousarray(pending, np.int64), first, kinds, mark, is_start, started, max_span)
    got = [rows[j, :counts[j]] if room is not None else rows[j, :counts[j]].copy() for j in range(_LISTS)]
    version = rows[_QUIC_VERSION, :counts[1]]
    return (Picked(got[0], rows[_DNS_ANSWER, :counts[0]].astype(bool), got[1], version if room is not None else version.copy(),
                   got[2], got[3], got[4], got[5], start_kind[:n], peek[:n], got[6], got[7], got[8]), key, lo, hi,
            (start_rows, plan_rows, unstarted, is_start[:n]) if planned else None,
            rows[_DNS_UID, :counts[0]], (int(counts[_LISTS]), int(counts[_LISTS + 1])), rows[_LATE_KEY, :counts[5]])


def _i64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, np.int64)


_SCRATCH: list[np.ndarray] = []
_LISTS = 9
# Scratch rows after the lists, written by the first pass (sequential there; gathered by row
# number later they missed the cache): the early rows' payload_cap and payload_off, and the DNS
# and QUIC rows' payload_off, which their loops replace in place by the QR bit and the version.
_EARLY_CAP, _EARLY_OFF, _DNS_ANSWER, _QUIC_VERSION, _DNS_UID, _LATE_KEY = 9, 10, 11, 12, 13, 14
_AHEAD = 16     # rows between a payload head's prefetch and its load (scattered over 32 MB: misses)


def _scratch(n: int) -> np.ndarray:
    """Row lists' room, kept between chunks (fresh pages each chunk cost page faults)."""
    if not _SCRATCH or _SCRATCH[0].shape[1] < n:
        _SCRATCH[:] = [np.empty((_LATE_KEY + 1, max(n, 1 << 16)), np.int64)]
    return _SCRATCH[0]


@njit(cache=True)
def quic_version_read(version):
    """quic.is_supported_version (a version whose client Initials quic.py decrypts: _salts),
    compiled; tests/unit/test_pick.py holds the two together."""
    if version == 0x00000001 or version == 0x6B3343CF:
        return True
    if version >> 8 == 0xFF0000:
        return 22 <= (version & 0xFF) <= 34
    if version == 0xFACEB001 or version == 0xFACEB002 or version == 0xFACEB00E:
        return True
    if version == 0x54303530 or version == 0x54303531:
        return True
    return (version & 0x0F0F0F0F) == 0x0A0A0A0A


@njit(cache=True, inline="always")
def _head8(buf, p, n_buf):
    """The 8 bytes from p as a little-endian word (byte t at bits 8t), zeros past the buffer's end."""
    if LITTLE and p + 8 <= n_buf:
        return load_u64(buf, p)
    w = np.uint64(0)
    for t in range(max(min(n_buf - p, 8), 0)):
        w |= np.uint64(buf[p + t]) << np.uint64(8 * t)
    return w


@njit(cache=True, inline="always")
def _bytes6(w):
    """Bytes 0-5 of _head8's word, as int64."""
    m = np.uint64(0xFF)
    return (np.int64(w & m), np.int64((w >> np.uint64(8)) & m), np.int64((w >> np.uint64(16)) & m),
            np.int64((w >> np.uint64(24)) & m), np.int64((w >> np.uint64(32)) & m), np.int64((w >> np.uint64(40)) & m))


@njit(cache=True)
def _pick(buf, proto, off, cap, port_a, port_b, rank, early, max_segments, dns_tcp_payloads, http_words,
          proxy_words, http_slash, rows, counts, start_kind, peek, uid, direction, key, clear,
          pending, plan_first, kinds, mark, is_start, started, max_span):
    """First the row lists from the columns alone (sequential reads), then the payload heads of
    the rows that need a peek, gathered in tight loops (independent loads that overlap, where
    a branch on each byte as it arrives would stall on every cache miss; one 8-byte load per
    payload, not a byte loop: 34.6 -> 25.7 ms over engine_2m), then the peeks. With `key` not
    empty: key[i] = uid[i] * 2 + direction[i] in the first pass; returns their (min, max).
    start_kind, peek: 0 but at the rows in `clear` (the last chunk's early rows), zeroed here.
    Then, keyed and with `plan_first` room for the keys' span (< max_span, lo >= 0), plan_into's
    rows: (lo, hi, planned, start_rows, rows, unstarted)."""
    for r in clear:
        start_kind[r] = 0
        peek[r] = 0
    n_buf = len(buf)
    n_dns = n_quic = n_dtcp = n_early = n_later = n_late = n_start = n_idle = n_alert = 0
    keyed = len(key) > 0
    lo = hi = uid[0] * 2 + direction[0] if keyed else 0
    dns_lo = dns_hi = np.int64(0)
    k = np.int64(0)
    for i in range(len(proto)):
        if keyed:
            k = uid[i] * 2 + direction[i]
            key[i] = k
            lo = min(lo, k)
            hi = max(hi, k)
        c = cap[i]
        if c <= 0:
            continue
        r = rank[i]
        pr = proto[i]
        a = port_a[i]
        b = port_b[i]
        if pr == UDP:
            if a == 53 or b == 53 or a == 5353 or b == 5353:
                rows[0, n_dns] = i
                rows[_DNS_ANSWER, n_dns] = off[i]
                if keyed:
                    u = uid[i]
                    rows[_DNS_UID, n_dns] = u
                    dns_lo = min(dns_lo, u) if n_dns else u
                    dns_hi = max(dns_hi, u) if n_dns else u
                n_dns += 1
            elif r < early and c >= 20:
                rows[1, n_quic] = i
                rows[_QUIC_VERSION, n_quic] = off[i]
                n_quic += 1
        elif pr == TCP:
            if (a == 53 or b == 53) and r < dns_tcp_payloads:
                rows[2, n_dtcp] = i
                n_dtcp += 1
            if r < max_segments:
                rows[4, n_later] = i
                n_later += 1
            if r >= early:
                rows[5, n_late] = i
                rows[_LATE_KEY, n_late] = k
                n_late += 1
            else:
                rows[3, n_early] = i
                rows[_EARLY_CAP, n_early] = c
                rows[_EARLY_OFF, n_early] = off[i]
                n_early += 1
    # DNS: the QR bit
    answer = rows[_DNS_ANSWER]
    for j in range(n_dns):
        prefetch(buf, answer[min(j + _AHEAD, n_dns - 1)])
        at = answer[j] + 2
        answer[j] = buf[min(at, n_buf - 1)] >> 7 if at < n_buf else 0
    # QUIC: a long header (top bits 11) of a version quic.py reads; the others leave the list
    head = np.empty(n_quic, np.uint64)
    versions = rows[_QUIC_VERSION]
    for j in range(n_quic):
        prefetch(buf, versions[min(j + _AHEAD, n_quic - 1)])
        head[j] = _head8(buf, versions[j], n_buf)
    kept = 0
    for j in range(n_quic):
        b0, b1, b2, b3, b4, _ = _bytes6(head[j])
        if (b0 & 0xC0) != 0xC0:
            continue
        version = (b1 << 24) | (b2 << 16) | (b3 << 8) | b4
        if quic_version_read(version):
            rows[1, kept] = rows[1, j]
            versions[kept] = version
            kept += 1
    n_quic = kept
    # early TCP payloads: their first 8 bytes, one load each
    first = np.empty(n_early, np.uint64)
    early_off = rows[_EARLY_OFF]
    for j in range(n_early):
        prefetch(buf, early_off[min(j + _AHEAD, n_early - 1)])
        first[j] = _head8(buf, early_off[j], n_buf)
    for j in range(n_early):
        i = rows[3, j]
        c = rows[_EARLY_CAP, j]
        # bytes past the payload (the next packet's) are read, but byte t is used only where c > t;
        # no branch on the bytes (a mispredicted one costs more than the arithmetic)
        b0, b1, b2, b3, b4, b5 = _bytes6(first[j])
        word = (b0 << 24) | (b1 << 16) | (b2 << 8) | b3
        http = False
        for w in http_words:
            http |= word == w
        proxy = False
        for w in proxy_words:
            proxy |= word == w
        tls = ((b0 == 0x16) | (b0 == 0x15)) & (b1 == 3) & (b2 <= 4)
        kind = 3 if proxy else 0
        kind = 2 if http else kind
        kind = 1 if tls else kind
        kind = kind if c >= 4 else 0
        start_kind[i] = kind
        six = c >= 6
        bits = (HANDSHAKE0 * (b0 == 0x16) | (HELLO5 * (six & (b5 == 1))) | (NOT_HELLO5 * (six & (b5 != 1)))
                | RESPONSE5 * ((c >= 5) & (((b0 << 32) | (b1 << 24) | (b2 << 16) | (b3 << 8) | b4) == http_slash)))
        peek[i] = bits
        rows[7, n_idle] = i
        n_idle += kind == 0
        rows[6, n_start] = i
        n_start += kind != 0
        rows[8, n_alert] = i
        n_alert += (kind == 1) & (c == 7) & (b0 == 0x15)
    counts[0], counts[1], counts[2], counts[3], counts[4], counts[5] = n_dns, n_quic, n_dtcp, n_early, n_later, n_late
    counts[6], counts[7], counts[8] = n_start, n_idle, n_alert
    counts[9], counts[10] = dns_lo, dns_hi
    none = np.empty(0, np.int64)
    if not keyed or lo < 0 or hi - lo >= max_span or hi - lo >= len(plan_first):
        return lo, hi, False, none, none, none
    start_rows = np.empty(n_start, np.int64)
    plan_rows = np.empty(n_start + n_idle + n_later, np.int64)
    unstarted = np.empty(n_idle, np.int64)
    a, b, c = plan_into(key, lo, hi, rows[6, :n_start], start_kind, rows[7, :n_idle], rows[4, :n_later], pending,
                        plan_first, kinds, mark, start_rows, plan_rows, unstarted, is_start, np.empty(n_idle, np.int64),
                        np.empty(n_later, np.int64), started)
    return lo, hi, True, start_rows[:a], plan_rows[:b], unstarted[:c]


@njit(cache=True)
def plan_into(key, lo, hi, starting, start_kind, idle, later, pending, first, kinds, mark,
               start_rows, rows, unstarted, is_start, ahead, more, started):
    """collect._plan's kernel (_plan_numpy says what it makes; here for _pick to call it: numba's
    cache does not see a kernel's edits from another file's). first, kinds, mark: by key - lo,
    at rest -1, 0, False; left so. Row lists ascend.
    is_start: False but at `started` (the last call's start rows), cleared first."""
    for r in started:
        is_start[r] = False
    n_start = 0
    for r in starting:
        k = key[r] - lo
        bit = np.uint8(1 << start_kind[r])
        if kinds[k] & bit == 0:
            kinds[k] |= bit
            start_rows[n_start] = r
            n_start += 1
            is_start[r] = True
            if first[k] < 0:
                first[k] = r
    for p in pending:
        if lo <= p <= hi:
            mark[p - lo] = True
    rows[:n_start] = start_rows[:n_start]
    # The idle rows that overtook their direction's first start, the pending directions' later
    # rows (both ascend): merged, without repeats and starts.
    n_ahead = n_unstarted = 0
    for r in idle:
        f = first[key[r] - lo]
        if f < 0:
            unstarted[n_unstarted] = r
            n_unstarted += 1
        elif r < f:
            ahead[n_ahead] = r
            n_ahead += 1
    n_more = 0
    for r in later:
        if mark[key[r] - lo]:
            more[n_more] = r
            n_more += 1
    n = n_start
    i = j = 0
    while i < n_ahead or j < n_more:
        if j >= n_more or (i < n_ahead and ahead[i] < more[j]):
            r = ahead[i]
            i += 1
        elif i >= n_ahead or more[j] < ahead[i]:
            r = more[j]
            j += 1
        else:
            r = ahead[i]
            i += 1
            j += 1
        if not is_start[r]:
            rows[n] = r
            n += 1
    for r in starting:
        k = key[r] - lo
        kinds[k] = 0
        first[k] = -1
    for p in pending:
        if lo <= p <= hi:
            mark[p - lo] = False
    return n_start, n, n_unstarted


def pick_numpy(buf: np.ndarray, pk: PacketBatch, rank: np.ndarray, limits: tuple[int, int, int],
               words: tuple[np.ndarray, np.ndarray]) -> Picked:
    """The numpy expressions `pick` replaced (collect.add, fast_streams._roles, take_flights)."""
    from .collect import DNS_PORTS, _port_in, _start_kind, _versions_known
    early, max_segments, dns_tcp_payloads = limits
    has_data = pk.payload_cap > 0
    udp_rows = np.flatnonzero(has_data & (pk.proto == UDP))
    tcp_rows = np.flatnonzero(has_data & (pk.proto == TCP))
    dns_udp = _port_in(pk, DNS_PORTS, udp_rows)
    dns_rows = udp_rows[dns_udp]
    answer = (buf[pk.payload_off[dns_rows] + 2] & 0x80) != 0
    dns_tcp = tcp_rows[_port_in(pk, (53,), tcp_rows)]
    quic = udp_rows[~dns_udp]
    quic = quic[(rank[quic] < early) & (pk.payload_cap[quic] >= 20) & ((buf[pk.payload_off[quic]] & 0xC0) == 0xC0)]
    version = np.zeros(len(quic), np.int64)
    for j in range(1, 5):
        version = (version << 8) | buf[pk.payload_off[quic] + j]
    known = _versions_known(version)
    quic, version = quic[known], version[known]
    early_rows = tcp_rows[rank[tcp_rows] < early]
    later_rows = tcp_rows[rank[tcp_rows] < max_segments]
    start_kind = np.zeros(len(pk), np.int64)
    off, cap = pk.payload_off[early_rows], pk.payload_cap[early_rows]
    start_kind[early_rows] = _start_kind(buf, off, cap)
    b0 = buf[off]
    b5 = buf[np.where(cap >= 6, off + 5, 0)]
    five = np.where(cap >= 5, off, 0)
    word = np.zeros(len(early_rows), np.int64)
    for j in range(5):
        word = (word << 8) | buf[five + j]
    bits = (np.where((cap >= 6) & (b5 == 1), HELLO5, 0) | np.where((cap >= 6) & (b5 != 1), NOT_HELLO5, 0)
            | np.where((cap >= 5) & (word == _HTTP_SLASH), RESPONSE5, 0) | np.where(b0 == 0x16, HANDSHAKE0, 0))
    peek = np.zeros(len(pk), np.uint8)
    peek[early_rows] = bits
    alerts = early_rows[(pk.payload_cap[early_rows] == 7) & (start_kind[early_rows] == 1)
                        & (buf[pk.payload_off[early_rows]] == 0x15)]
    return Picked(dns_rows, answer, quic, version, dns_tcp[rank[dns_tcp] < dns_tcp_payloads], early_rows,
                  later_rows, tcp_rows[rank[tcp_rows] >= early], start_kind, peek,
                  early_rows[start_kind[early_rows] > 0], early_rows[start_kind[early_rows] == 0], alerts)
