"""TLS server flights spread over several segments of one chunk, without Python per segment.

A TLS 1.2 server flight (ServerHello, Certificate chain, ServerHelloDone) usually spans a few
TCP segments. The stream path (collect.py) reads one: it parses the first segment alone (the
flight is incomplete), then all segments the chunk holds, reassembled in sequence order, and
writes what each parse found. Here the same happens for all such flights of a chunk at once:
numba reassembles them, as lists of pieces of the chunk buffer rather than copies, and scans
them where they lie (decode/tls_flight.py), and the two writes per flight go
to the metadata log as columns. A flight is taken only when the outcome is certain to be the
stream path's: its flow has nothing else on the stream path in this chunk (neither direction),
and both reads are plain and end it (complete, or at the stream path's limits). Any other
flight, with every segment of it, stays on the stream path.
"""
from __future__ import annotations

import functools
import threading
from itertools import islice

import numpy as np
import pyarrow as pa

from ..decode import tls, tls_flight
from ..decode.raw_memory import prefetch
from ..reader.walk import njit
from ..records import PacketBatch
from . import pick
from .dns_feed import COMPILED
from .fast_streams import alert_text, names_of
from .key_set import isin_keys
from .leaf_names import scan_named
from .text_columns import text_column

__all__ = ["take_flights"]

TLS13 = 0x0304


def take_flights(collector, buf: np.ndarray, pk: PacketBatch, key: np.ndarray, rows: np.ndarray,
                 later: np.ndarray, is_start: np.ndarray, start_kind: np.ndarray, pending: np.ndarray,
                 limits: tuple[int, int], peek: np.ndarray | None = None) -> np.ndarray:
    """Read the flights that qualify among the stream path's `rows` (this chunk's first feed);
    return the rows left for it. A flight taken is done: neither its rows in `rows` nor its
    later rows are fed.

    A flight's direction may hold segments in `rows` besides its start (segments that overtook
    it): the stream path reads them with the start, so the first read does too. The other
    direction may be in `rows` when its stream is a ClientHello: that writes other fields.

    later: the chunk's rows (ascending) the stream path reads on once a stream is open;
    is_start: per chunk row, a stream start the collector picked; limits: (MAX_SEGMENTS,
    MAX_STREAM_BYTES) as the stream path applies them; peek: pick.py's bits per row (else the
    payload bytes are read here)."""
    if not COMPILED or rows.size == 0:
        return rows
    done = collector.done["tls"]
    skeys, starts, n1 = _chosen(buf, pk, key, rows, is_start, start_kind, pending, peek, done)   # skeys ascending
    if skeys.size == 0:
        return rows
    # First read: the key's rows in feed order (the start, then what overtook it). Second read:
    # every segment, in the order the stream path adds them (then this chunk's later payloads of
    # the key after its start: its second feed).
    feed_row, feed_at, first1, seg_row, first_seg, n_seg = _segments(key, rows, later, skeys, starts, n1)
    seg_stream = np.repeat(np.arange(len(starts)), n_seg)
    max_segments, max_bytes = limits
    one = _reassembled(buf, pk, feed_row, first1, starts, collector.max_held, n1)
    # Both reads put their handshake bytes in one buffer (the second after the first), so one
    # text column takes the selected protocol from either.
    room1 = int(one.length.sum())
    hs = _scratch("hs", room1 + int(pk.payload_cap[seg_row].sum()))
    r1 = _read(one, hs, 0)
    # The stream path's verdicts: done after the first read, or after the second; else it goes on.
    exhausted1 = one.capped | (n1 >= max_segments) | (one.length >= max_bytes)
    done1 = r1.ok & (r1.complete | exhausted1)
    plain1 = ~one.capped & ~one.odd
    taken = done1 & plain1
    # The second read (every segment) only for the flights the first one did not finish.
    again = np.flatnonzero(r1.ok & plain1 & ~done1 & (n_seg > n1))
    t_start = pk.ts[starts]
    idx2 = again[:0]
    if again.size:
        wanted = np.zeros(len(starts), bool)
        wanted[again] = True
        a_rows = seg_row[wanted[seg_stream]]
        a_n = n_seg[again]
        a_first = np.concatenate([[0], np.cumsum(a_n)[:-1]]).astype(np.int64)
        all_ = _reassembled(buf, pk, a_rows, a_first, starts[again], collector.max_held, a_n)
        r2 = _read(all_, hs, room1)
        exhausted2 = all_.capped | (a_n >= max_segments) | (all_.length >= max_bytes)
        taken2 = r2.ok & ~all_.capped & (r2.complete | exhausted2) & ~all_.odd
        taken[again] = taken2
    # Flights the stream path would leave open after its reads (incomplete, within its limits,
    # read plainly): the same writes, and the stream it would hold is opened here.
    opening = r1.ok & plain1 & ~done1 & (n_seg == n1)
    open2 = np.zeros(0, bool)
    if again.size:
        open2 = r2.ok & ~all_.capped & ~all_.odd & ~taken2
        opening[again] = open2
        idx2 = np.flatnonzero(taken2 | open2)          # positions in `again`
    if not (taken | opening).any():
        return rows
    idx1 = np.flatnonzero(taken | opening)
    uid = skeys >> 1
    log = collector.log
    # The stream path's writes, in its order: every first read, then the second reads. A
    # stream's first_ts: its earliest segment from the start on (one overtaking the start too).
    first_ts = np.minimum(t_start, one.first_ts)
    second = np.full(len(starts), -1, np.int64)          # per flight: its place in the second read
    first_ts2, r_second = first_ts, r1
    if idx2.size:
        second[again[idx2]] = idx2
        first_ts2, r_second = np.minimum(t_start[again], all_.first_ts), r2
    log.batch("flight", uid[idx1], **_merged_columns(r1, r_second, idx1, second[idx1], first_ts, first_ts2))
    opened = np.flatnonzero(opening)
    written = _last_writes(r1, r_second, opened, second[opened], first_ts, first_ts2) if opened.size else []
    if idx2.size:
        first_ts[again] = first_ts2
    if opened.size:
        _open_streams(collector, buf, pk, opened, skeys, starts, seg_row, first_seg, n_seg, first_ts, written)
    finished = skeys[taken]
    done.update(finished)
    # The rows left: those of no flight taken or opened (a flight's feed rows are all its key's).
    left = np.ones(len(rows), bool)
    left[feed_at[np.repeat(taken | opening, n1)]] = False
    return rows[left]


def _chosen(buf, pk, key, rows, is_start, start_kind, pending, peek, done) -> tuple[np.ndarray, ...]:
    """The flights to take among `rows`: their keys (ascending), start rows (each key's first row
    in feed order) and row counts in `rows`. A flight's start: a TLS stream start the collector
    picked, not a ClientHello, the key's only start, not open before (pending) nor read (done);
    its other direction absent, or a ClientHello stream starting here (its writes are not a
    flight's), and not open before. One compiled call (the numpy steps cost ~0.13 ms a chunk)."""
    if peek is None or not COMPILED:
        return _chosen_numpy(buf, pk, key, rows, is_start, start_kind, pending, peek, done)
    mask = _chosen_mask(key, rows, is_start, start_kind, peek, np.sort(pending), done.bits)
    return mask[0], mask[1], mask[2]


def _chosen_numpy(buf, pk, key, rows, is_start, start_kind, pending, peek, done):
    """_chosen with numpy (and the payload bytes read here when pick.py did not peek)."""
    rk = key[rows]
    uniq, first, counts = np.unique(rk, return_index=True, return_counts=True)
    starts_per_key = np.bincount(np.searchsorted(uniq, rk), weights=is_start[rows], minlength=len(uniq))
    head = rows[first]                                   # each key's first row in feed order: its stream start
    if peek is not None:            # start_kind is 0 but at early rows, where pick.py peeked
        bits = peek[head]
        tls_head = (start_kind[head] == 1) & ((bits & pick.HANDSHAKE0) != 0)
        flight_head = tls_head & ((bits & pick.NOT_HELLO5) != 0)
        hello_head = tls_head & ((bits & pick.HELLO5) != 0)
    else:
        off, cap = pk.payload_off[head], pk.payload_cap[head]
        tls_head = (start_kind[head] == 1) & (cap >= 6) & (buf[off] == tls.HANDSHAKE)
        b5 = buf[np.where(cap >= 6, off + 5, 0)]
        flight_head, hello_head = tls_head & (b5 != tls.CLIENT_HELLO), tls_head & (b5 == tls.CLIENT_HELLO)
    # One stream start per key (the rest of its rows continue it), none open before this chunk.
    single = is_start[head] & (starts_per_key == 1) & ~isin_keys(uniq, pending)
    other = uniq ^ 1
    at = np.minimum(np.searchsorted(uniq, other), len(uniq) - 1)
    present = uniq[at] == other
    # The other direction: absent, or a ClientHello stream (its writes are not a flight's).
    other_ok = ~isin_keys(other, pending) & (~present | (single[at] & hello_head[at]))
    chosen = np.flatnonzero(flight_head & single & other_ok)
    chosen = chosen[~done.contains(uniq[chosen])]
    return uniq[chosen], head[chosen], counts[chosen]


@njit(cache=True)
def _chosen_mask(key, rows, is_start, start_kind, peek, pending, done_bits):
    n = len(rows)
    # Each row's fields gathered first, in a tight loop of independent loads (the columns are
    # cold: the loads overlap there; in the loops below each waited on the ones before).
    rk = np.empty(n, np.int64)
    fed_start = np.empty(n, np.bool_)
    tls_start = np.empty(n, np.bool_)
    bits = np.empty(n, peek.dtype)
    for x in range(n):
        r = rows[x]
        rk[x] = key[r]
        fed_start[x] = is_start[r]
        tls_start[x] = start_kind[r] == 1
        bits[x] = peek[r]
    order = np.argsort(rk, kind="mergesort")          # stable: a key's rows in feed order
    uniq = np.empty(n, np.int64)
    head = np.empty(n, np.int64)                      # each key's first row: its place in `rows`
    count = np.zeros(n, np.int64)
    starts = np.zeros(n, np.int64)
    m = 0
    for x in range(n):
        k = rk[order[x]]
        if m == 0 or uniq[m - 1] != k:
            uniq[m] = k
            head[m] = order[x]
            m += 1
        count[m - 1] += 1
        if fed_start[order[x]]:
            starts[m - 1] += 1
    single = np.zeros(m, np.bool_)
    flight = np.zeros(m, np.bool_)
    hello = np.zeros(m, np.bool_)
    other_open = np.zeros(m, np.bool_)
    p = 0                          # both ascend: one walk finds k and k ^ 1 (k +- 1) among the open
    for u in range(m):
        k = uniq[u]
        while p < len(pending) and pending[p] < k - 1:
            p += 1
        is_open = False
        q = p
        while q < len(pending) and pending[q] <= k + 1:
            if pending[q] == k:
                is_open = True
            elif pending[q] == k ^ 1:
                other_open[u] = True
            q += 1
        h = head[u]
        b = bits[h]
        tls_head = tls_start[h] and (b & _HANDSHAKE0) != 0
        flight[u] = tls_head and (b & _NOT_HELLO5) != 0
        hello[u] = tls_head and (b & _HELLO5) != 0
        single[u] = fed_start[h] and starts[u] == 1 and not is_open
    keep = np.zeros(m, np.bool_)
    got = 0
    for u in range(m):
        k = uniq[u]
        if not (flight[u] and single[u]) or other_open[u] or (k < len(done_bits) and done_bits[k]):
            continue
        at = u + 1 if k & 1 == 0 else u - 1           # where k ^ 1 is when there (uniq ascends)
        if 0 <= at < m and uniq[at] == k ^ 1 and not (single[at] and hello[at]):
            continue
        keep[u] = True
        got += 1
    out_key = np.empty(got, np.int64)
    out_start = np.empty(got, np.int64)
    out_count = np.empty(got, np.int64)
    j = 0
    for u in range(m):
        if keep[u]:
            out_key[j] = uniq[u]
            out_start[j] = rows[head[u]]
            out_count[j] = count[u]
            j += 1
    return out_key, out_start, out_count


_HELLO5, _NOT_HELLO5, _HANDSHAKE0 = pick.HELLO5, pick.NOT_HELLO5, pick.HANDSHAKE0


def _segments(key: np.ndarray, rows: np.ndarray, later: np.ndarray, skeys: np.ndarray, starts: np.ndarray,
              n1: np.ndarray) -> tuple[np.ndarray, ...]:
    """Flights skeys' (ascending; start row starts, n1 rows in `rows`) segments: the rows of
    `rows` with their key, grouped by flight in feed order (feed_row, flight i's from first1[i];
    feed_at: their places in `rows`),
    and those followed by the rows of `later` with their key after their start and not in
    `rows`, in `later`'s order (seg_row: flight i's n_seg[i] from first_seg[i]). One compiled
    pass over `later` with a table of the keys' span (the numpy steps it replaced cost ~0.2 ms
    a chunk); numpy for a span too wide for a table."""
    span = int(skeys[-1] - skeys[0]) + 1
    if not COMPILED or span > max(1 << 20, 4 * len(key)):
        return _segments_sorted(key, rows, later, skeys, starts, n1)
    n1 = n1.astype(np.int64)
    feed_row = np.empty(int(n1.sum()), np.int64)
    feed_at = np.empty(len(feed_row), np.int64)
    first1 = np.empty(len(skeys), np.int64)
    first_seg = np.empty(len(skeys), np.int64)
    n_seg = np.empty(len(skeys), np.int64)
    seg_row = _segment_rows(key, rows, later, skeys, starts.astype(np.int64), n1, span, feed_row, feed_at, first1,
                            first_seg, n_seg)
    return feed_row, feed_at, first1, seg_row, first_seg, n_seg


def _segments_sorted(key, rows, later, skeys, starts, n1):
    """_segments with numpy (sorts and searches)."""
    rk = key[rows]
    in_feed = np.flatnonzero(isin_keys(rk, skeys))
    feed_stream = np.searchsorted(skeys, rk[in_feed])
    by_stream = np.argsort(feed_stream, kind="stable")
    feed_stream, feed_at = feed_stream[by_stream], in_feed[by_stream]
    feed_row = rows[feed_at]
    first1 = np.concatenate([[0], np.cumsum(n1)[:-1]]).astype(np.int64)
    more = later[isin_keys(key[later], skeys)]
    at = np.searchsorted(skeys, key[more])
    after = (more > starts[at]) & ~isin_keys(more, feed_row)
    more, at = more[after], at[after]
    seg_stream = np.concatenate([feed_stream, at])
    seg_row = np.concatenate([feed_row, more])
    by_stream = np.argsort(seg_stream, kind="stable")
    seg_stream, seg_row = seg_stream[by_stream], seg_row[by_stream]
    first_seg = np.searchsorted(seg_stream, np.arange(len(starts)))
    n_seg = np.diff(np.append(first_seg, len(seg_stream)))
    return feed_row, feed_at, first1, seg_row, first_seg, n_seg


@njit(cache=True)
def _segment_rows(key, rows, later, skeys, starts, n1, span, feed_row, feed_at, first1, first_seg, n_seg):
    lo = skeys[0]
    flight = np.full(span, -1, np.int32)          # per key - lo: its flight
    for i in range(len(skeys)):
        flight[skeys[i] - lo] = i
    at = 0
    for i in range(len(skeys)):
        first1[i] = at
        n_seg[i] = n1[i]
        at += n1[i]
    fill = first1.copy()
    fed = np.zeros(len(key), np.bool_)
    for x in range(len(rows)):
        r = rows[x]
        if x + 16 < len(rows):            # the rows are scattered: their keys asked for ahead
            prefetch(key, np.uint64(rows[x + 16]))
        k = key[r] - lo
        if 0 <= k < span and flight[k] >= 0:
            i = flight[k]
            feed_row[fill[i]] = r
            feed_at[fill[i]] = x
            fill[i] += 1
            fed[r] = True
    # The later rows' keys gathered first, in a tight loop of independent loads (cold: they
    # overlap there; below, each waited on the table lookups before it).
    of_later = np.empty(len(later), np.int64)     # per later row: its key - lo, then its flight (-1: not read)
    for x in range(len(later)):
        if x + 32 < len(later):           # asked for ahead, as the rows' keys above (~0.15 ms a run)
            prefetch(key, np.uint64(later[x + 32]))
        of_later[x] = key[later[x]] - lo
    for x in range(len(later)):
        r = later[x]
        k = of_later[x]
        i = -1
        if 0 <= k < span:
            i = flight[k]
            if i >= 0 and (r <= starts[i] or fed[r]):
                i = -1
        of_later[x] = i
        if i >= 0:
            n_seg[i] += 1
    at = 0
    for i in range(len(skeys)):
        first_seg[i] = at
        at += n_seg[i]
    seg_row = np.empty(at, np.int64)
    for i in range(len(skeys)):
        for q in range(n1[i]):
            seg_row[first_seg[i] + q] = feed_row[first1[i] + q]
        fill[i] = first_seg[i] + n1[i]
    for x in range(len(later)):
        i = of_later[x]
        if i >= 0:
            seg_row[fill[i]] = later[x]
            fill[i] += 1
    return seg_row


def _last_writes(r1: _Read, r2: _Read, idx: np.ndarray, at2: np.ndarray, ts1: np.ndarray,
                 ts2: np.ndarray) -> list[tuple]:
    """Flights idx's last writes as the stream path keeps them (collect._Stream.written): the
    second read's where they had one (at2 >= 0: its flight there), else the first read's. The
    log holds the two merged; a final parse of the same bytes writes the last read's row. The
    values as _merged_columns' columns hold them; each field picked with numpy, then named per
    flight (a few dozen flights a chunk: per-flight numpy scalars cost ~4 µs a flight)."""
    s1, s2 = r1.scan, r2.scan
    if (at2 < 0).all():
        def pick(a, b):
            return a[idx].tolist()
    else:
        twice, j = at2 >= 0, np.maximum(at2, 0)

        def pick(a, b):
            return np.where(twice, b[j], a[idx]).tolist()
    hs2 = [s2.hs if t >= 0 else s1.hs for t in at2.tolist()] if s1.hs is not s2.hs else None
    alpn = []
    for x, (a, e) in enumerate(zip(pick(s1.alpn_start, s2.alpn_start), pick(s1.alpn_end, s2.alpn_end))):
        alpn.append(None if a < 0 else tls.text((s1.hs if hs2 is None else hs2[x])[a:e].tobytes()))
    return [(ts if seen else None, tls.version_name(version) if version >= 0 else None, text,
             alert_text(alert) if alert >= 0 else None, issuer)
            for seen, ts, version, text, alert, issuer in zip(
                pick(s1.hello_seen, s2.hello_seen), pick(ts1, ts2), pick(s1.version, s2.version), alpn,
                pick(s1.alert, s2.alert), pick(r1.issuer, r2.issuer))]


def _open_streams(collector, buf, pk, idx, skeys, starts, seg_row, first_seg, n_seg, first_ts, written) -> None:
    """The streams collect._feed would hold for flights idx after feeding their segments
    (seg_row[first_seg[i]:][:n_seg[i]], in feed order): a repeated seq keeps its first
    payload; none is capped (those flights stay on the stream path). written: each one's last
    write, as the stream path keeps it (collect._Stream.written). Which payloads are kept, and
    their seqs, come from one compiled call; each payload is copied once, from the chunk buffer
    straight into its bytes (a copy gathered first, then made bytes and cut, copied it three
    times); Python makes the dicts."""
    from .collect import _Stream
    start_seq, kept, held, seq, at, end = _kept_segments(
        buf, pk.payload_off, pk.payload_cap, pk.seq, seg_row, first_seg, n_seg, np.ascontiguousarray(idx, np.int64),
        np.ascontiguousarray(starts, np.int64))
    view = memoryview(buf)
    pairs = zip(seq.tolist(), [view[a:e].tobytes() for a, e in zip(at.tolist(), end.tolist())])
    streams = collector.streams
    for key, s_seq, ts, m, k, h, row in zip(skeys[idx].tolist(), start_seq.tolist(), first_ts[idx].tolist(),
                                            n_seg[idx].tolist(), kept.tolist(), held.tolist(), written):
        streams[key] = _Stream("tls", ts, s_seq, segments=dict(islice(pairs, k)), seen=m, held=h, written=row,
                               written_seen=m)


@njit(cache=True)
def _kept_segments(buf, pk_off, pk_cap, pk_seq, seg_row, first_seg, n_seg, idx, starts):
    """Per flight idx[i]: its start's seq, how many segments it keeps (a repeated seq: the
    first) and their bytes; per kept segment (flight by flight, feed order): seq and where its
    payload lies in the chunk buffer (at:end)."""
    n = len(idx)
    start_seq = np.empty(n, np.int64)
    kept = np.zeros(n, np.int64)
    held = np.zeros(n, np.int64)
    most = 0
    for i in range(n):
        most += n_seg[idx[i]]
    seq = np.empty(most, np.int64)
    at = np.empty(most, np.int64)
    end = np.empty(most, np.int64)
    j = 0
    for i in range(n):
        f = idx[i]
        start_seq[i] = pk_seq[starts[f]]
        first = j
        for q in range(first_seg[f], first_seg[f] + n_seg[f]):
            r = seg_row[q]
            s = pk_seq[r]
            dup = False
            for p in range(first, j):
                if seq[p] == s:
                    dup = True
            if dup:
                continue
            seq[j] = s
            at[j] = pk_off[r]
            end[j] = pk_off[r] + pk_cap[r]
            # Its bytes asked for now: the copies that follow (in Python, a few us on) find them
            # in cache (_open_streams 3.0 -> 2.8 ms a run).
            for line in range(np.uint64(0), np.uint64(pk_cap[r]), np.uint64(64)):
                prefetch(buf, np.uint64(at[j]) + line)
            held[i] += pk_cap[r]
            j += 1
        kept[i] = j - first
    return start_seq, kept, held, seq[:j], at[:j], end[:j]


class _Bytes:
    """Reassembled streams, left where they are: stream i is the pieces first_piece[i]:first_piece[i + 1]
    of the chunk buffer (piece_off, piece_len), `length` bytes in all."""

    def __init__(self, buf, piece_off, piece_len, first_piece, length, capped, odd, first_ts):
        self.buf, self.piece_off, self.piece_len, self.first_piece = buf, piece_off, piece_len, first_piece
        self.length, self.capped, self.odd, self.first_ts = length, capped, odd, first_ts


def _scratch(name: str, size: int) -> np.ndarray:
    """A byte buffer kept between chunks (a new one each time would be written to fresh pages,
    and the page faults cost as much as the copying). Valid until the next call with `name`."""
    got = getattr(_SCRATCH, name, None)
    if got is None or len(got) < size:
        got = np.empty(max(size, 1 << 20), np.uint8)
        setattr(_SCRATCH, name, got)
    return got[:size]


_SCRATCH = threading.local()     # per thread: sessions in threads of one process each have their own


def _reassembled(buf, pk, seg_row, first_seg, starts, max_held, n_seg) -> _Bytes:
    n = len(starts)
    piece_off = np.empty(len(seg_row), np.int64)
    piece_len = np.empty(len(seg_row), np.int64)
    first_piece = np.zeros(n + 1, np.int64)
    length = np.zeros(n, np.int64)
    capped = np.zeros(n, np.bool_)
    odd = np.zeros(n, np.bool_)
    first_ts = np.full(n, np.inf)
    # The packet columns whole, gathered in the kernel (numpy's gathers and copies were ~1 ms a run).
    _assemble(buf, pk.payload_off, pk.payload_cap, pk.seq, pk.ts, np.ascontiguousarray(seg_row, np.int64),
              np.ascontiguousarray(first_seg, np.int64), np.ascontiguousarray(n_seg, np.int64),
              np.ascontiguousarray(starts, np.int64), int(max_held), _stream_words(), piece_off, piece_len,
              first_piece, length, capped, odd, first_ts)
    return _Bytes(buf, piece_off, piece_len, first_piece, length, capped, odd, first_ts)


class _Read:
    """A scan's answers; issuer: per flight, also as codes into `names` (leaf_names.scan_named)."""

    def __init__(self, scan, issuer, ok, complete, issuer_code=None, names=None):
        self.scan, self.issuer, self.ok, self.complete = scan, issuer, ok, complete
        self.issuer_code, self.names = issuer_code, names


def _merged_columns(r1: _Read, r2: _Read, idx: np.ndarray, at2: np.ndarray, ts1: np.ndarray,
                    ts2: np.ndarray) -> dict:
    """The flight writes of the first read (flights idx) and, where at2 >= 0, of the second read
    (its flight at2) as one write each: what resolving the two in turn gives (meta_log.py), so the
    log holds one row per flight. A flight read twice was incomplete after the first read: no
    alert, no certificate (each makes it complete)."""
    s1, s2 = r1.scan, r2.scan
    j = np.maximum(at2, 0)
    twice = at2 >= 0
    # The fields picked in one compiled pass (the dozen numpy gathers and wheres cost ~40 µs a chunk)
    server_ts, valid, version, alert, alpn_start, alpn_end = _merged(
        np.ascontiguousarray(idx, np.int64), np.ascontiguousarray(at2, np.int64), ts1, ts2, s1.hello_seen,
        s2.hello_seen, s1.version, s2.version, s1.alert, s2.alert, s1.alpn_start, s1.alpn_end, s2.alpn_start,
        s2.alpn_end)
    # Columns from buffers and tables: pa.array (of floats and a mask, of Python strings) cost
    # ~60-90 µs a chunk in a run (cold), several times these.
    return dict(server_ts=pa.Array.from_buffers(pa.float64(), len(idx), [
                    None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little")),
                    pa.py_buffer(server_ts)]),
                tls_version=names_of(version, tls.version_name),
                server_alpn=text_column(s1.hs, alpn_start, alpn_end),
                tls_alert=names_of(alert, alert_text),
                cert_issuer=_issuers(r1, r2, idx, j, twice))


@njit(cache=True)
def _merged(idx, at2, ts1, ts2, seen1, seen2, version1, version2, alert1, alert2, alpn_start1, alpn_end1,
            alpn_start2, alpn_end2):
    """_merged_columns' fields: flight idx[x] of the first read, merged with flight at2[x] of the
    second where at2[x] >= 0. server_ts: the first one written; tls_version: the last named;
    tls_alert: the last read's; server_alpn: the first non-empty, else the last written."""
    n = len(idx)
    server_ts = np.empty(n, np.float64)
    valid = np.empty(n, np.bool_)
    version = np.empty(n, np.int64)
    alert = np.empty(n, np.int64)
    alpn_start = np.empty(n, np.int64)
    alpn_end = np.empty(n, np.int64)
    for x in range(n):
        i = idx[x]
        twice = at2[x] >= 0
        j = max(at2[x], 0)
        server_ts[x] = ts1[i] if seen1[i] else ts2[j]
        valid[x] = seen1[i] or (twice and seen2[j])
        version[x] = version2[j] if twice and version2[j] >= 0 else version1[i]
        alert[x] = alert2[j] if twice else alert1[i]
        a, e = alpn_start1[i], alpn_end1[i]
        if twice and not (a >= 0 and e > a):
            a, e = alpn_start2[j], alpn_end2[j]
        alpn_start[x] = a
        alpn_end[x] = e
    return server_ts, valid, version, alert, alpn_start, alpn_end


def _issuers(r1: _Read, r2: _Read, idx: np.ndarray, j: np.ndarray, twice: np.ndarray) -> pa.Array:
    """cert_issuer: the second read's where there is one (j), else the first one's (idx)."""
    if r1.names is not None and r1.names is r2.names:
        return r1.names.take(np.where(twice, r2.issuer_code[j], r1.issuer_code[idx]))
    issuer = r1.issuer[idx]              # the store of names started again between the reads
    if twice.any():
        issuer = issuer.copy()
        issuer[twice] = r2.issuer[j[twice]]
    return pa.array(issuer.tolist(), type=pa.large_string())


def _read(b: _Bytes, hs: np.ndarray, base: int) -> _Read:
    """Scan the flights; their handshake bytes go to hs from `base` on."""
    hs_start = base + np.concatenate([[0], np.cumsum(b.length)[:-1]]).astype(np.int64)
    scan, issuer, code, names = scan_named(b.buf, b.piece_off, b.piece_len, b.first_piece, hs_start, hs)
    ok = scan.kind == tls_flight.READ
    complete = (scan.alert >= 0) | (scan.version == TLS13) | np.not_equal(issuer, None) | scan.hello_done
    return _Read(scan, issuer, ok, complete, code, names)


@functools.cache
def _stream_words() -> np.ndarray:
    """The 4-byte starts that make a payload begin another stream (HTTP, PROXY): collect.py's.
    Made once (read-only: shared by every call)."""
    from .collect import HTTP_STARTS, PROXY_V1, PROXY_V2
    words = np.array([int.from_bytes(w[:4], "big") for w in HTTP_STARTS + (PROXY_V1, PROXY_V2)], np.int64)
    words.flags.writeable = False
    return words


@njit(cache=True)
def _signed(diff):
    diff &= 0xFFFFFFFF
    return diff - (1 << 32) if diff >= (1 << 31) else diff


@njit(cache=True)
def _assemble(buf, pk_off, pk_cap, pk_seq, pk_ts, seg_row, first_seg, n_seg, starts, max_held, words, piece_off,
              piece_len, first_piece, length, capped, odd, first_ts):
    """collect._feed + _contiguous for each stream's segments (feed order): a repeated seq is
    dropped, bytes past max_held are cut (capped), then the in-order bytes from the start up to
    the first gap, as pieces of buf (stream i: pieces first_piece[i]:first_piece[i + 1]). first_ts: the earliest segment at or after the start (the start only if it
    reads as a TLS record); odd: a later segment that would start another stream."""
    most = 0
    for i in range(len(n_seg)):
        most = max(most, n_seg[i])
    # Every segment's first 4 bytes first, in a tight loop of independent loads (they miss the
    # cache, and overlap there; in the loop below each waited for the one before).
    m_all = len(seg_row)
    off = np.empty(m_all, np.int64)
    cap = np.empty(m_all, np.int64)
    seq = np.empty(m_all, np.int64)
    ts = np.empty(m_all, np.float64)
    for j in range(m_all):
        r = seg_row[j]
        # The columns' lines of the segment 16 on, and this one's first bytes (read below), asked
        # for ahead: the rows are scattered over the chunk (_reassembled 4.6 -> 3.8 ms a run).
        if j + 16 < m_all:
            ahead = np.uint64(seg_row[j + 16])
            prefetch(pk_off, ahead)
            prefetch(pk_cap, ahead)
            prefetch(pk_seq, ahead)
            prefetch(pk_ts, ahead)
        off[j] = pk_off[r]
        prefetch(buf, np.uint64(off[j]))
        cap[j] = pk_cap[r]
        seq[j] = pk_seq[r]
        ts[j] = pk_ts[r]
    start_seq = np.empty(len(starts), np.int64)
    for i in range(len(starts)):
        start_seq[i] = pk_seq[starts[i]]
    head = np.full(m_all, -1, np.int64)
    for j in range(m_all):
        if cap[j] >= 4:
            p = off[j]
            head[j] = (np.int64(buf[p]) << 24) | (np.int64(buf[p + 1]) << 16) | (np.int64(buf[p + 2]) << 8) \
                | np.int64(buf[p + 3])
    k_off = np.empty(most, np.int64)          # the kept segments of one stream (scratch, reused)
    k_len = np.empty(most, np.int64)
    k_pos = np.empty(most, np.int64)
    k_seq = np.empty(most, np.int64)
    for i in range(len(first_seg)):
        a = first_seg[i]
        m = n_seg[i]
        k = 0
        held = 0
        for j in range(a, a + m):
            p = off[j]
            c = cap[j]
            word = head[j]
            other = False
            for w in words:
                if word == w:
                    other = True
            if other and j > a:
                odd[i] = True
            if c >= 4:
                tls_start = (not other) and (word >> 24 == 0x16 or word >> 24 == 0x15) and (word >> 16) & 0xFF == 3
            else:
                tls_start = c == 3 and (buf[p] == 0x16 or buf[p] == 0x15) and buf[p + 1] == 3
            o = _signed(seq[j] - start_seq[i])
            if o > 0 or (o == 0 and tls_start):
                first_ts[i] = min(first_ts[i], ts[j])
            dup = False
            for q in range(k):
                if k_seq[q] == seq[j]:
                    dup = True
            if dup:
                continue
            n = c
            if n > max_held - held:
                n = max_held - held
                capped[i] = True
            k_off[k] = p
            k_len[k] = n
            k_pos[k] = o
            k_seq[k] = seq[j]
            held += n
            k += 1
        # insertion sort by offset (a dozen segments at most)
        for x in range(1, k):
            y = x
            while y > 0 and k_pos[y - 1] > k_pos[y]:
                k_pos[y - 1], k_pos[y] = k_pos[y], k_pos[y - 1]
                k_off[y - 1], k_off[y] = k_off[y], k_off[y - 1]
                k_len[y - 1], k_len[y] = k_len[y], k_len[y - 1]
                y -= 1
        n = 0
        at = first_piece[i]
        for q in range(k):
            o = k_pos[q]
            if o < 0:
                continue
            if o > n:
                break
            skip = n - o
            if k_len[q] > skip:
                add = k_len[q] - skip
                piece_off[at] = k_off[q] + skip
                piece_len[at] = add
                at += 1
                n += add
        length[i] = n
        first_piece[i + 1] = at
