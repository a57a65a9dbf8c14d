"""Pick the few packets that carry metadata and feed them to the Python parsers.

Per chunk, numpy does the picking: the first payload-carrying packets of each TCP flow
direction whose payload starts like a TLS record or an HTTP message (and the packets that
continue such a stream while it is incomplete), and DNS over UDP and TCP. The usual hello,
flight, HTTP head or DNS message in one payload is read by compiled scans (fast_streams.py,
dns_feed.py); only the rest reach Python: they are reassembled in sequence order, parsed once
complete, and reduced to a few fields per flow. Memory holds only streams still being reassembled.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ..decode import http, quic, tls
from ..decode.malformed import Malformed
from ..records import PacketBatch
from ..stats import RunStats
from ..reader.walk import njit
from .dns_feed import COMPILED, feed_dns
from .dns_records import DnsFailure, DnsRecords
from .dns_tcp import MAX_PAYLOADS as DNS_TCP_PAYLOADS, DnsOverTcp
from .fast_streams import read_hellos, take_fast
from .flight_streams import take_flights
from .held import HeldSegments
from .key_set import _MAX_TABLE, KeySet, first_occurrences, first_row_of, isin_keys, key_table
from .meta_log import KINDS, TYPES, FlowMeta, MetaLog, MetaTable
from .pick import pick, pick_keyed, plan_into as _plan_into

__all__ = ["DnsFailure", "DnsRecords", "FlowMeta", "MetadataCollector"]

EARLY = 8                  # a stream must start within a flow direction's first payloads
                           # (STARTTLS, SOCKS and CONNECT put a few messages before the ClientHello)
MAX_SEGMENTS = 12          # payloads read per stream at most (a TLS 1.2 server flight fits)
MAX_STREAM_BYTES = 24_576
DNS_PORTS = (53, 5353)
TCP, UDP = 6, 17
HTTP_STARTS = (b"GET ", b"POST", b"HEAD", b"PUT ", b"DELE", b"OPTI", b"PATC", b"CONN", b"HTTP")
MAX_HELD_EARLY = 4 << 20   # bytes of early payloads held for directions whose stream has not started
PROXY_V1, PROXY_V2 = b"PROXY ", b"\r\n\r\n\x00\r\nQUIT\n"   # HAProxy PROXY protocol before the real stream


@dataclass(slots=True)
class _Stream:
    kind: str                               # "tls" or "http"
    first_ts: float
    start_seq: int                          # where the stream begins (earlier bytes are not its)
    segments: dict[int, bytes] = field(default_factory=dict)   # seq -> payload
    seen: int = 0
    held: int = 0                           # payload bytes in `segments`
    capped: bool = False                    # reached the reassembly limit: parse what is held
    # A server flight's last write and `seen` then: parsing the same bytes again at the end of
    # the capture would write the same row (most streams left open are flights cut short).
    written: tuple | None = None
    written_seen: int = -1

    def changed_since_written(self) -> bool:
        """Parsing it again could write something new (else its last write is written again)."""
        return self.written is None or self.written_seen != self.seen


@dataclass
class _Quic:
    client_dir: int
    dcid: bytes
    first_ts: float
    pieces: list = field(default_factory=list)


_EMPTY_FLIGHT = tls.ServerFlight(None, None, None, None, None, False, False)


def _one_sealed_alert(data: bytes) -> bool:
    """The data is one whole alert record, encrypted (not 2 bytes): how most directions seen
    mid-connection start (~600 parses on engine_2m). parse_server_flight reads nothing in it
    (_EMPTY_FLIGHT); this answers without walking it (~1 ms a run)."""
    return (data[:1] == b"\x15" and len(data) >= 5 and data[1] == 3
            and len(data) == 5 + (data[3] << 8 | data[4]) != 7 and len(data) <= 5 + tls.MAX_RECORD)


class MetadataCollector:
    def __init__(self, stats: RunStats, max_reassembly_bytes: int = 256 << 10) -> None:
        self.stats = stats
        self.max_held = max_reassembly_bytes       # payload bytes held per flow direction (FlowOptions)
        self.log = MetaLog()                             # what the parsers found, resolved by table()
        self.streams: dict[int, _Stream] = {}            # key uid*2+dir -> stream being read
        self.done = {"tls": KeySet(), "http": KeySet()}   # keys whose first stream was read
        self.quic: dict[int, _Quic] = {}                  # uid -> QUIC Initials being read
        self.quic_done: set[int] = set()
        # Early payloads of flow directions with no stream start yet, from earlier chunks: a server
        # segment can overtake its flight's first one across a chunk boundary.
        self.held = HeldSegments(MAX_HELD_EARLY)
        self.dns = DnsRecords()
        self.dns_tcp = DnsOverTcp()
        self.hellos: list = []                            # uids (ints, arrays) whose ClientHello was read
        self.hellos_mark = (0, 0)                         # the log's sequence numbers at the last two take_hellos()
        # The keys of `streams` when the last add ended (_hold's): only add opens streams, so
        # between chunks they can only close, and the same count means the same streams.
        self._open_after: np.ndarray | None = None

    # -- per chunk ----------------------------------------------------------------------
    def add(self, buf: np.ndarray, pk: PacketBatch, uid: np.ndarray, rank: np.ndarray) -> None:
        if len(pk) == 0:
            return
        buf = buf.view(np.ndarray)          # a plain array: slicing a memmap costs a Python object each
        # The rows each path reads, picked in one pass (pick.py): payload-carrying UDP rows by
        # port, TCP rows early in their flow direction (the only ones peeked at), and the peeks.
        # The flow-direction keys come out of the same pass (_keys: a pass of their own).
        # So does _plan's (below) when its tables have room (it reads the starts and the keys
        # while they are at hand); the streams pending are those left open by the chunks before.
        pending_before = self._open_after
        self._open_after = None             # (an add that fails part-way leaves no stale keys)
        if pending_before is None or len(pending_before) != len(self.streams):
            pending_before = np.fromiter(self.streams.keys(), np.int64, len(self.streams))
        plan = None
        if COMPILED and uid.dtype == np.int64:
            t = _plan_tables(0).rows(len(pk))
            got, key, lo, hi, plan, dns_uid, dns_span, late_key = pick_keyed(
                buf, pk, uid, rank, (EARLY, MAX_SEGMENTS, DNS_TCP_PAYLOADS), (_HTTP_WORDS, _PROXY_WORDS),
                (pending_before, t.first, t.kinds, t.mark, t.is_start, t.started, _MAX_PLAN_SPAN))
            span = (lo, hi) if hi - lo < _MAX_PLAN_SPAN and lo >= 0 else None
            if plan is not None:
                t.started = plan[0]
        else:
            got = pick(buf, pk, rank, (EARLY, MAX_SEGMENTS, DNS_TCP_PAYLOADS), (_HTTP_WORDS, _PROXY_WORDS))
            key, span = _keys(uid, pk.direction)
            dns_uid = dns_span = late_key = None
        dns_rows = got.dns_udp
        if dns_rows.size:
            # A lookup answered in this chunk is read from its answer (which repeats the question);
            # only unanswered queries are parsed themselves.
            dns_rows = _answers_or_unanswered(uid, dns_rows, got.dns_answer, dns_uid, dns_span)
        self._dns_over_udp(buf, pk, uid, dns_rows)
        self.dns_tcp.add(self, buf, pk, key, uid, got.dns_tcp)
        self._quic_initials(buf, pk, uid, got.quic)
        later_rows, start_kind = got.later, got.start_kind
        start_rows, rows, unstarted, is_start = plan if plan is not None else _plan(key, span, got, pending_before)
        # Held segments of the directions that start here join the stream path like `ahead` ones.
        held = self.held.take(key[start_rows])
        fast_pending = np.concatenate([pending_before, np.array([h[0] for h in held], np.int64)])
        left = take_fast(self, buf, pk, key, rows, is_start, start_kind, fast_pending, got.peek)
        left = take_flights(self, buf, pk, key, left, later_rows, is_start, start_kind, fast_pending,
                            (MAX_SEGMENTS, MAX_STREAM_BYTES), got.peek)
        # Streams take_flights opened hold this chunk's segments already: not fed again.
        # _feed opens streams only for the keys it is fed: those not open before it and open
        # after it are the ones it opened (two snapshots of every open stream cost ~25 us each).
        streams = self.streams
        fed = set(key[left].tolist())
        fed.update([h[0] for h in held])
        was_open = [k for k in fed if k in streams]
        self._feed(buf, pk, key, left, held, int(is_start[left].sum()))
        # Streams opened in this chunk and still incomplete read on in this chunk.
        opened = fed.difference(was_open)
        opened = [k for k in opened if k in streams]
        if opened:
            self._feed(buf, pk, key, _read_on(key, span, later_rows, np.array(opened, np.int64), start_rows, rows))
        # A lone alert record early in a direction that already sent its ClientHello: the client
        # refusing the server's certificate. Alert records are 7 bytes; a handful per capture.
        for i in got.alerts.tolist():
            off = int(pk.payload_off[i])
            self._late_alert(int(key[i]), buf[off: off + 7].tobytes())
        self._hold(buf, pk, key, unstarted, got.late, late_key)

    def _hold(self, buf: np.ndarray, pk: PacketBatch, key: np.ndarray, rows: np.ndarray, late: np.ndarray,
              late_key: np.ndarray | None = None) -> None:
        """Hold early payloads of directions with no stream (open or read) until one starts, when
        the other direction has started one (a server answering a ClientHello or a request: the
        overtaking segments are the answer's); drop them once a direction is past its early
        payloads (no start can come)."""
        open_keys = self._open_after = np.fromiter(self.streams.keys(), np.int64, len(self.streams))
        k = key[rows]
        kept = _holdable(k, self.done["tls"].bits, self.done["http"].bits, open_keys)
        # key[late]: made by pick_keyed's first pass where it ran
        self.held.add_rows_then_drop(buf, k[kept], rows[kept], pk.ts, pk.seq, pk.payload_off, pk.payload_cap,
                                     late_key if late_key is not None else key[late])

    def _feed(self, buf: np.ndarray, pk: PacketBatch, key: np.ndarray, rows: np.ndarray,
              held: list[tuple[int, float, int, bytes]] | None = None, starts: int = 0) -> None:
        """Python from here on: copy each chosen payload into its stream, parse what completed.

        held: (key, ts, seq, payload) from earlier chunks, fed after the first `starts` rows (the
        stream starts) as the earliest of the rest."""
        if rows.size == 0 and not held:
            return
        touched = set()
        mem = memoryview(buf)           # a payload sliced from the view costs less than from the array
        # Iterated as made (zip reuses its tuple when the loop keeps none): a list only to insert into.
        entries = zip(key[rows].tolist(), pk.ts[rows].tolist(), pk.seq[rows].tolist(),
                      pk.payload_off[rows].tolist(), pk.payload_cap[rows].tolist())
        if held:
            entries = list(entries)
            entries[starts:starts] = [(k, t, seq, data, None) for k, t, seq, data in held]
        streams, done = self.streams, self.done
        # ClientHellos complete here: read at the end, all at once (read_hellos).
        later: list[tuple] = []
        for k, t, seq, off, cap in entries:
            data = mem[off: off + cap].tobytes() if cap is not None else off
            first = data[:1]
            if first in _TLS_FIRST:         # _stream_start's first case, inline (most payloads here)
                kind, skip = ("tls" if len(data) >= 3 and data[1] == 3 else None), 0
            elif first in _OTHER_FIRST:
                kind, skip = _stream_start(data)
            else:                           # no start begins so: most continuations and idle payloads
                kind, skip = None, 0
            stream = streams.get(k)
            if kind is not None and k in done[kind]:
                if kind == "tls" and data[:1] == b"\x15":
                    self._late_alert(k, data)
                continue            # only a flow's first ClientHello / HTTP message counts
            if stream is not None and kind is not None and kind != stream.kind:
                self._try_parse(k, final=True, later=later)     # e.g. CONNECT answered, then TLS begins
                stream = None
            if stream is None:
                if kind is None:
                    continue        # no stream start for this flow direction in reach
                if skip:
                    data, seq = data[skip:], (seq + skip) & 0xFFFFFFFF
                stream = streams[k] = _Stream(kind, t, seq)
                if kind == "http":
                    self.log.row("touch", k // 2)   # the flow has metadata now, even if nothing is read
            segments = stream.segments
            if seq not in segments:
                room = self.max_held - stream.held
                if len(data) > room:
                    if not stream.capped:
                        self.stats.limits["reassembly_bytes_capped"] += 1     # once per stream
                    data, stream.capped = data[:room], True
                segments[seq] = data
                stream.held += len(data)
            # Bytes before the stream (a STARTTLS dialogue; offsets past 2**31 taken as negative)
            # are not its; a segment at its very first byte is its start only if it reads as one
            # (not a few bytes of padding that some stacks send at that seq before the real segment).
            offset = (seq - stream.start_seq) & 0xFFFFFFFF
            if 0 < offset < 0x80000000 or (offset == 0 and kind == stream.kind):
                if t < stream.first_ts:
                    stream.first_ts = t
            stream.seen += 1
            touched.add(k)
        for k in touched:
            if k in self.streams:
                self._try_parse(k, later=later)
        if later:
            read_hellos(self, later)

    def finish(self) -> None:
        """Parse what incomplete streams hold (a capture cut mid-handshake).

        As _final_parse per stream, but the flight streams fed nothing since their last write
        (~1,500 of ~1,600 on engine_2m) write that row again as one batch, each at the sequence
        number its own write would have taken (the log's precedence stays the same)."""
        streams, reserve = self.streams, self.log.reserve
        keys, seqs, rows = [], [], []
        for k, stream in list(streams.items()):
            if stream.changed_since_written():
                self._try_parse(k, final=True)
            else:
                keys.append(k)
                seqs.append(reserve(1))
                rows.append(stream.written)
        if not keys:
            return
        for k in keys:
            del streams[k]
        key = np.array(keys, np.int64)
        self.done["tls"].update(key)             # `written`: only a TLS flight stream has one
        self.log.batch("flight", key // 2, np.array(seqs, np.int64),
                       **{name: pa.array(column, type=TYPES[name])
                          for name, column in zip(KINDS["flight"], zip(*rows))})

    def _final_parse(self, k: int) -> None:
        """_try_parse(k, final=True); a flight stream fed nothing since its last write writes
        that row again without reassembling and parsing it."""
        stream = self.streams[k]
        if stream.changed_since_written():
            self._try_parse(k, final=True)
            return
        self.log.row("flight", k // 2, *stream.written)
        del self.streams[k]
        self.done[stream.kind].add(k)

    # -- parsing ------------------------------------------------------------------------
    def _try_parse(self, k: int, final: bool = False, later: list | None = None) -> None:
        """later: where a complete ClientHello goes to be read by read_hellos (None: read here)."""
        stream = self.streams[k]
        data = _contiguous(stream.segments, stream.start_seq)
        uid, direction = divmod(k, 2)
        exhausted = final or stream.capped or stream.seen >= MAX_SEGMENTS or len(data) >= MAX_STREAM_BYTES
        try:
            if stream.kind == "http":
                done = self._http(uid, direction, data, exhausted)
            else:
                done = self._tls(uid, direction, stream, data, exhausted, later)
        except Malformed as bad:
            self.stats.malformed[bad.reason] += 1
            done = True
        if done or exhausted:
            del self.streams[k]
            self.done[stream.kind].add(k)

    def finish_flows(self, uids: np.ndarray) -> None:
        """finish() for these flows only: they are over (a live window lets them go)."""
        wanted = set(np.asarray(uids).tolist())
        for k in [k for k in self.streams if k // 2 in wanted]:
            self._final_parse(k)

    def forget(self, uids: np.ndarray) -> None:
        """Forget finished flows: what their parsers found and their DNS failures. The DNS
        answers stay: they name the servers of flows still to come."""
        self.log.forget(uids)
        gone = set(np.asarray(uids).tolist())
        self.dns.failures[:] = [f for f in self.dns.failures if f.uid not in gone]

    def take_hellos(self) -> np.ndarray:
        """The uids whose ClientHello (SNI/ALPN) was read since the last call."""
        got = np.concatenate([np.atleast_1d(np.asarray(h, np.int64)) for h in self.hellos]) if self.hellos \
            else np.empty(0, np.int64)
        self.hellos = []
        self.hellos_mark = (self.hellos_mark[1], self.log.seq)
        return got

    def recent_hellos(self) -> dict[int, FlowMeta]:
        """SNI and ALPN of the ClientHellos read since the last take_hellos() but one, by uid:
        what a per-chunk reader (sequences' activity) needs without resolving the whole log."""
        uid, cols = self.log.kind_since("hello", self.hellos_mark[0])
        return {u: FlowMeta(sni=s, alpn=a) for u, s, a in zip(uid.tolist(), cols["sni"].to_pylist(),
                                                               cols["alpn"].to_pylist())}

    def table(self, last: bool = False) -> MetaTable:
        """What the parsers found so far, one row per flow (attach() joins it on uid). `last`:
        the log's last reader (after finish()): the log is let go, its writes then held by the
        table alone (gone with it, not kept beside the frame through the stages after: ~55 MB
        on engine_10m); later reads find nothing."""
        table = self.log.resolve()
        if last:
            self.log = self.log.emptied()
        return table

    @property
    def flows(self) -> dict[int, FlowMeta]:
        """The same as one FlowMeta per flow uid (built on each access: for merging and tests)."""
        return self.table().metas()

    def _tls(self, uid: int, direction: int, stream: _Stream, data: bytes, exhausted: bool,
             later: list | None = None) -> bool:
        if data[:1] == b"\x16" and data[5:6] == b"\x01":         # a handshake record holding a ClientHello
            needed = tls.needed_length(data)
            if needed is not None and len(data) < needed and not exhausted:
                return False
            if later is not None:       # its write keeps its place in the log (a reserved seq)
                later.append((self.log.reserve(1), uid, direction, stream.first_ts, data))
                return True
            hello = tls.parse_client_hello(data)
            self.log.row("hello", uid, hello.sni, ",".join(hello.alpn) or None, direction, stream.first_ts)
            self.hellos.append(uid)
            return True
        flight = _EMPTY_FLIGHT if _one_sealed_alert(data) else tls.parse_server_flight(data)
        written = (stream.first_ts if flight.hello_seen else None, flight.version, flight.alpn, flight.alert,
                   flight.cert_issuer)
        self.log.row("flight", uid, *written)
        stream.written, stream.written_seen = written, stream.seen
        # A TLS 1.2 server flight ends with ServerHelloDone; wait for the certificate until then.
        complete = flight.alert is not None or flight.version == "TLS 1.3" or flight.cert_issuer is not None \
            or flight.hello_done
        return complete or exhausted

    def _late_alert(self, k: int, data: bytes) -> None:
        """An alert record after a direction's first TLS stream: the client refusing the server's
        certificate (unknown_ca, bad_certificate) is how an intercepted courier ends."""
        uid, direction = divmod(k, 2)
        if len(data) >= 7 and data[3:5] == b"\x00\x02" and data[5] in (1, 2):
            # Kept if this direction is the flow's client when it is sent: the log resolves that.
            self.log.row("late_alert", uid, direction, tls.alert_name(data[5], data[6]))

    def _http(self, uid: int, direction: int, data: bytes, exhausted: bool) -> bool:
        if data.startswith(b"HTTP/"):
            self.log.row("response", uid, http.parse_response(data))
            return True
        if b"\r\n\r\n" not in data and not exhausted:
            return False
        request = http.parse_request(data)
        self.log.row("request", uid, request.method, request.host, request.path, request.user_agent, direction)
        return True

    def _quic_initials(self, buf: np.ndarray, pk: PacketBatch, uid: np.ndarray, rows: np.ndarray) -> None:
        """QUIC long-header packets early in a UDP flow: decrypt the client's Initials (keys come
        from the connection ID) until the ClientHello in their CRYPTO frames is complete."""
        if len(rows) == 0:
            return
        # Python values per column at once (a numpy scalar per field and row cost ~0.5 us a row)
        columns = (uid[rows].tolist(), pk.direction[rows].tolist(), pk.payload_off[rows].tolist(),
                   pk.payload_cap[rows].tolist(), pk.ts[rows].tolist())
        quic_done, quic_states = self.quic_done, self.quic
        for u, direction, off, cap, ts in zip(*columns):
            if u in quic_done:
                continue
            state = quic_states.get(u)
            if state is not None and direction != state.client_dir:
                continue                    # the server's Initials: not needed, not decryptable
            try:
                got = quic.initial_crypto(buf[off: off + cap].tobytes(), state.dcid if state else None)
                if got is None:
                    continue
                if state is None:
                    state = quic_states[u] = _Quic(direction, got.dcid, ts)
                state.pieces.extend(got.pieces)
                hello = quic.client_hello_from_crypto(state.pieces)
            except Malformed as bad:
                self.stats.malformed[bad.reason] += 1
                continue
            if hello is not None or len(state.pieces) > 64:
                if hello is not None:
                    self.log.row("hello", u, hello.sni, ",".join(hello.alpn) or None, direction, state.first_ts)
                    self.hellos.append(u)
                del self.quic[u]
                self.quic_done.add(u)

    def _dns_over_udp(self, buf: np.ndarray, pk: PacketBatch, uid: np.ndarray, rows: np.ndarray) -> None:
        feed_dns(self, buf, pk.payload_off[rows], pk.payload_cap[rows], uid[rows], pk.ts[rows])


def _port_in(pk: PacketBatch, ports, rows: np.ndarray) -> np.ndarray:
    """Per row of `rows`: either endpoint's port is one of `ports`."""
    a, b = pk.port_a[rows], pk.port_b[rows]
    out = np.zeros(len(rows), bool)
    for port in ports:
        out |= (a == port) | (b == port)
    return out


def _quic_version_known(buf: np.ndarray, off: np.ndarray) -> np.ndarray:
    """Per long-header payload: its first packet's version is one quic.initial_crypto reads.
    Any other payload (most UDP payloads with the top bits set are not QUIC at all) would make
    it return None without reading further, so it is not handed over."""
    version = np.zeros(len(off), np.int64)
    for j in range(1, 5):
        version = (version << 8) | buf[off + j]
    return _versions_known(version)


def _versions_known(version: np.ndarray) -> np.ndarray:
    """Per QUIC long header's version (bytes 1-4): one quic.initial_crypto reads."""
    values, inverse = np.unique(version, return_inverse=True)
    known = np.array([v != 0 and quic.is_supported_version(v) for v in values.tolist()], bool)
    return known[inverse.reshape(-1)]


def _start_kind(buf: np.ndarray, off: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """0: not a stream start; 1: a TLS handshake/alert record; 2: an HTTP/1 message; 3: a PROXY
    protocol header (what follows it is read in Python). Peeks at 4 bytes, whole chunk at once."""
    if COMPILED:
        out = np.zeros(len(off), np.int64)
        _start_kinds(buf, np.ascontiguousarray(off, np.int64), np.ascontiguousarray(cap, np.int64), _HTTP_WORDS,
                     _PROXY_WORDS, out)
        return out
    enough = cap >= 4
    at = np.where(enough, off, 0)
    b0, b1, b2, b3 = (buf[at + i] for i in range(4))
    tls_record = ((b0 == 0x16) | (b0 == 0x15)) & (b1 == 3) & (b2 <= 4)
    word = (b0.astype(np.uint32) << 24) | (b1.astype(np.uint32) << 16) | (b2.astype(np.uint32) << 8) | b3
    http = np.isin(word, np.array([int.from_bytes(s[:4], "big") for s in HTTP_STARTS], np.uint32))
    proxy = np.isin(word, np.array([int.from_bytes(s[:4], "big") for s in (PROXY_V1, PROXY_V2)], np.uint32))
    return np.select([enough & tls_record, enough & http, enough & proxy], [1, 2, 3], 0)


_HTTP_WORDS = np.array([int.from_bytes(s[:4], "big") for s in HTTP_STARTS], np.int64)
_PROXY_WORDS = np.array([int.from_bytes(s[:4], "big") for s in (PROXY_V1, PROXY_V2)], np.int64)


@njit(cache=True)
def _start_kinds(buf, off, cap, http_words, proxy_words, out):
    """_start_kind's numpy expression, one payload at a time (no whole-array temporaries)."""
    for i in range(len(off)):
        if cap[i] < 4:
            continue
        p = off[i]
        b0, b1, b2, b3 = np.int64(buf[p]), np.int64(buf[p + 1]), np.int64(buf[p + 2]), np.int64(buf[p + 3])
        if (b0 == 0x16 or b0 == 0x15) and b1 == 3 and b2 <= 4:
            out[i] = 1
            continue
        word = (b0 << 24) | (b1 << 16) | (b2 << 8) | b3
        for w in http_words:
            if word == w:
                out[i] = 2
        if out[i] == 0:
            for w in proxy_words:
                if word == w:
                    out[i] = 3


def _holdable(k: np.ndarray, tls: np.ndarray, http: np.ndarray, open_keys: np.ndarray) -> np.ndarray:
    """Per key of `k`: its other direction has a stream (read: done bits `tls`, `http`; or
    open), it has none open, and not both kinds were read. One compiled pass (the numpy
    expression, _holdable_numpy, took six passes and two isin_keys: 1.3 -> 0.5 ms a run)."""
    if not COMPILED or len(k) == 0 or k.dtype != np.int64:
        return _holdable_numpy(k, tls, http, open_keys)
    out = np.empty(len(k), np.bool_)
    lo, hi = (int(open_keys.min()), int(open_keys.max())) if len(open_keys) else (0, -1)
    if hi - lo >= _MAX_TABLE:
        return _holdable_numpy(k, tls, http, open_keys)
    _holdable_into(k, tls, http, np.ascontiguousarray(open_keys, np.int64), lo, hi, key_table(max(hi - lo, 0)),
                   out)
    return out


def _holdable_numpy(k: np.ndarray, tls: np.ndarray, http: np.ndarray, open_keys: np.ndarray) -> np.ndarray:
    def done(bits: np.ndarray, keys: np.ndarray) -> np.ndarray:
        inside = keys < len(bits)
        out = np.zeros(len(keys), bool)
        out[inside] = bits[keys[inside]]
        return out
    answering = done(tls, k ^ 1) | done(http, k ^ 1) | isin_keys(k ^ 1, open_keys)
    return answering & ~isin_keys(k, open_keys) & ~(done(tls, k) & done(http, k))


@njit(cache=True)
def _holdable_into(k, tls, http, open_keys, lo, hi, table, out):
    """table: all False at rest (key_set's), indexed key - lo; left so."""
    for o in open_keys:
        table[o - lo] = True
    n_tls, n_http = len(tls), len(http)
    for i in range(len(k)):
        x = k[i]
        y = x ^ 1
        answering = (y < n_tls and tls[y]) or (y < n_http and http[y]) or (lo <= y <= hi and table[y - lo])
        is_open = lo <= x <= hi and table[x - lo]
        both = x < n_tls and tls[x] and x < n_http and http[x]
        out[i] = answering and not is_open and not both
    for o in open_keys:
        table[o - lo] = False


def _answers_or_unanswered(uid: np.ndarray, rows: np.ndarray, answer: np.ndarray, row_uid: np.ndarray | None = None,
                           span: tuple[int, int] | None = None) -> np.ndarray:
    """The rows that are answers (answer: per row) or queries of a flow with no answer among
    `rows`. Compiled: one pass each way over the rows, no gathers (numpy: ~1.8 ms a run).
    row_uid, span: uid[rows] and its (min, max), when pick made them (read in order, not gathered)."""
    if not COMPILED or uid.dtype != np.int64 or len(rows) == 0:
        return _answers_or_unanswered_numpy(uid, rows, answer)
    if row_uid is not None:
        lo, hi = span
        if hi - lo < _MAX_TABLE:
            out = np.empty(len(rows), np.int64)
            n = _answers_or_unanswered_in_order(row_uid, _i64(rows), np.ascontiguousarray(answer, np.bool_), lo,
                                                key_table(hi - lo), out)
            return out[:n]
    lo, hi = _uid_span(uid, rows)
    if hi - lo >= _MAX_TABLE:
        return _answers_or_unanswered_numpy(uid, rows, answer)
    out = np.empty(len(rows), np.int64)
    n = _answers_or_unanswered_into(uid, _i64(rows), np.ascontiguousarray(answer, np.bool_), lo,
                                     key_table(hi - lo), out)
    return out[:n]


def _answers_or_unanswered_numpy(uid: np.ndarray, rows: np.ndarray, answer: np.ndarray) -> np.ndarray:
    answered = isin_keys(uid[rows], uid[rows[answer]])
    return rows[answer | ~answered]


@njit(cache=True)
def _answers_or_unanswered_in_order(row_uid, rows, answer, lo, table, out):
    """_answers_or_unanswered_into with each row's uid given (row_uid[i]: rows[i]'s)."""
    for i in range(len(rows)):
        if answer[i]:
            table[row_uid[i] - lo] = True
    n = 0
    for i in range(len(rows)):
        if answer[i] or not table[row_uid[i] - lo]:
            out[n] = rows[i]
            n += 1
    for i in range(len(rows)):
        table[row_uid[i] - lo] = False
    return n


@njit(cache=True)
def _uid_span(uid, rows):
    lo = hi = uid[rows[0]]
    for r in rows:
        lo = min(lo, uid[r])
        hi = max(hi, uid[r])
    return lo, hi


@njit(cache=True)
def _answers_or_unanswered_into(uid, rows, answer, lo, table, out):
    """table: all False at rest (key_set's), indexed uid - lo; left so."""
    for i in range(len(rows)):
        if answer[i]:
            table[uid[rows[i]] - lo] = True
    n = 0
    for i in range(len(rows)):
        if answer[i] or not table[uid[rows[i]] - lo]:
            out[n] = rows[i]
            n += 1
    for i in range(len(rows)):
        table[uid[rows[i]] - lo] = False
    return n


def _keys(uid: np.ndarray, direction: np.ndarray) -> tuple[np.ndarray, tuple[int, int] | None]:
    """(uid * 2 + direction per row, the keys' (lo, hi) or None when _plan's tables would not
    fit). One compiled pass: numpy's expression (a cast, two passes over cold columns) took
    ~4 ms a run, the min/max another two passes."""
    if not COMPILED or uid.dtype != np.int64 or len(uid) == 0:
        return uid * 2 + direction, None
    key = np.empty(len(uid), np.int64)
    lo, hi = _keys_into(uid, np.ascontiguousarray(direction), key)
    return key, ((lo, hi) if hi - lo < _MAX_PLAN_SPAN and lo >= 0 else None)


_MAX_PLAN_SPAN = 1 << 24     # keys spanning more take _plan_numpy (int64 tables of the span)


@njit(cache=True)
def _keys_into(uid, direction, out):
    lo = hi = uid[0] * 2 + direction[0]
    for i in range(np.uint64(len(uid))):
        k = uid[i] * 2 + direction[i]
        out[i] = k
        lo = min(lo, k)
        hi = max(hi, k)
    return lo, hi


class _PlanTables:
    """_plan's lookup tables by key - lo, kept between chunks (per thread; at rest: first -1,
    kinds 0, mark False), and its per-row flags (zeroing fresh ones each chunk cost more than
    clearing the few rows set: is_start True at `started` only, fed all False)."""

    def __init__(self) -> None:
        self.first = np.empty(0, np.int64)
        self.kinds = np.empty(0, np.uint8)
        self.mark = np.empty(0, np.bool_)
        self.is_start = np.empty(0, np.bool_)
        self.started = np.empty(0, np.int64)
        self.fed = np.empty(0, np.bool_)

    def room(self, span: int) -> "_PlanTables":
        if len(self.first) <= span:
            size = max(span + 1, 1 << 18, 2 * len(self.first))
            self.first, self.kinds, self.mark = (np.full(size, -1, np.int64), np.zeros(size, np.uint8),
                                                 np.zeros(size, np.bool_))
        return self

    def rows(self, n: int) -> "_PlanTables":
        if len(self.is_start) < n:
            size = max(n, 1 << 17, 2 * len(self.is_start))
            self.is_start, self.fed, self.started = np.zeros(size, np.bool_), np.zeros(size, np.bool_), np.empty(0, np.int64)
        return self


_PLAN_TABLES = threading.local()


def _plan_tables(span: int) -> _PlanTables:
    got = getattr(_PLAN_TABLES, "t", None)
    if got is None:
        got = _PLAN_TABLES.t = _PlanTables()
    return got.room(span)


def _plan(key: np.ndarray, span: tuple[int, int] | None, got, pending: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(start_rows, rows, unstarted, is_start) of a chunk (_plan_numpy says what each is), in one
    compiled pass over the picked rows (the numpy steps took ~7 ms a run)."""
    if span is None:
        return _plan_numpy(key, got, pending)
    lo, hi = span
    t = _plan_tables(hi - lo).rows(len(key))
    n_start, n_idle, n_later = len(got.starting), len(got.idle), len(got.later)
    start_rows = np.empty(n_start, np.int64)
    rows = np.empty(n_start + n_idle + n_later, np.int64)
    unstarted = np.empty(n_idle, np.int64)
    counts = _plan_into(key, lo, hi, _i64(got.starting), _i64(got.start_kind), _i64(got.idle), _i64(got.later),
                        np.ascontiguousarray(pending, np.int64), t.first, t.kinds, t.mark,
                        start_rows, rows, unstarted, t.is_start, np.empty(n_idle, np.int64),
                        np.empty(n_later, np.int64), t.started)
    n_start, n_rows, n_unstarted = counts
    t.started = start_rows = start_rows[:n_start]       # this thread's is_start: valid until the next call
    return start_rows, rows[:n_rows], unstarted[:n_unstarted], t.is_start[:len(key)]


def _i64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, np.int64)


def _plan_numpy(key: np.ndarray, got, pending: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The reference. start_rows: the first start of each kind in each flow direction (a
    keep-alive flow's later requests are not read: the first one is the flow's). rows: the
    stream path's rows, the starts first, then in capture order the segments that overtook
    their direction's first start (`ahead`) and the later payloads of streams left open by a
    chunk before (`pending`). unstarted: the idle rows of directions with no start here."""
    candidates, start_kind, idle, later_rows = got.starting, got.start_kind, got.idle, got.later
    start_rows = candidates[first_occurrences(key[candidates] * 4 + start_kind[candidates])]
    idle_start = _first_start(key[idle], key, start_rows)
    ahead = idle[idle < idle_start]
    rows = _ordered_unique(np.concatenate(
        [start_rows, np.sort(np.concatenate([ahead, later_rows[isin_keys(key[later_rows], pending)]]))]))
    is_start = np.zeros(len(key), bool)
    is_start[start_rows] = True
    return start_rows, rows, idle[idle_start < 0], is_start


def _read_on(key: np.ndarray, span: tuple[int, int] | None, later: np.ndarray, opened: np.ndarray,
             start_rows: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The later rows of the streams `opened` in this chunk after their start, not in `rows`
    (fed already): they read on in this chunk. One compiled pass (numpy: ~2.5 ms a run)."""
    if span is None:
        return _read_on_numpy(key, later, opened, start_rows, rows)
    lo, hi = span
    t = _plan_tables(hi - lo).rows(len(key))
    out = np.empty(len(later), np.int64)
    n = _read_on_into(key, lo, hi, _i64(later), _i64(opened), _i64(start_rows), _i64(rows), t.first,
                      t.mark, t.fed, out)
    return out[:n]


def _read_on_numpy(key: np.ndarray, later: np.ndarray, opened: np.ndarray, start_rows: np.ndarray,
                   rows: np.ndarray) -> np.ndarray:
    more = later[isin_keys(key[later], opened)]
    at = _first_start(key[more], key, start_rows)
    more = more[more > np.where(at < 0, len(key), at)]
    return more[~isin_keys(more, rows)]


@njit(cache=True)
def _read_on_into(key, lo, hi, later, opened, start_rows, rows, first, mark, fed, out):
    """first, mark: as _plan_into's; fed: all False at rest, left so."""
    for o in opened:
        if lo <= o <= hi:
            mark[o - lo] = True
    for r in start_rows:
        k = key[r] - lo
        if first[k] < 0:
            first[k] = r
    for r in rows:
        fed[r] = True
    n = 0
    for r in later:
        k = key[r] - lo
        if mark[k] and 0 <= first[k] < r and not fed[r]:
            out[n] = r
            n += 1
    for o in opened:
        if lo <= o <= hi:
            mark[o - lo] = False
    for r in start_rows:
        first[key[r] - lo] = -1
    for r in rows:
        fed[r] = False
    return n


def _first_start(wanted: np.ndarray, key: np.ndarray, start_rows: np.ndarray) -> np.ndarray:
    """For each key in `wanted`, the row of its flow direction's first stream start in this chunk
    (-1 if none)."""
    return first_row_of(wanted, key[start_rows], start_rows)       # start_rows ascend: first = min


def _ordered_unique(rows: np.ndarray) -> np.ndarray:
    """Rows without repeats, stream starts first (as given), then the rest in capture order."""
    return rows[first_occurrences(rows)]


_TLS_FIRST = (b"\x16", b"\x15")
# First bytes of the other starts _stream_start finds (HTTP, PROXY v1 and v2): any other
# payload starts nothing.
_OTHER_FIRST = frozenset(s[:1] for s in (*HTTP_STARTS, PROXY_V1, PROXY_V2))


def _tls_start(data: bytes) -> bool:
    return len(data) >= 3 and data[0] in (0x16, 0x15) and data[1] == 3


def _stream_start(data: bytes) -> tuple[str | None, int]:
    """What stream a payload starts ("tls", "http" or None) and how many prefix bytes to skip."""
    if data[:1] in _TLS_FIRST:      # most payloads here: no PROXY or HTTP start begins so
        return ("tls" if len(data) >= 3 and data[1] == 3 else None), 0
    skip = 0
    if data.startswith(PROXY_V1):
        end = data.find(b"\r\n")
        skip = end + 2 if 0 < end <= 107 else 0
    elif data.startswith(PROXY_V2) and len(data) >= 16:
        skip = 16 + int.from_bytes(data[14:16], "big")
    rest = data[skip:]
    if rest[:4] in HTTP_STARTS:
        return "http", skip
    if _tls_start(rest):
        return "tls", skip
    return None, 0


def _contiguous(segments: dict[int, bytes], start: int) -> bytes:
    """The in-order bytes from the stream's start, up to the first gap (overlaps trimmed)."""
    if len(segments) == 1 and start in segments:
        return segments[start]
    # Offsets taken unsigned: bytes before the stream began (e.g. STARTTLS dialogue; negative
    # offsets) sort after every other and lie past the first gap, so they are never read.
    ahead = sorted([((seq - start) & 0xFFFFFFFF, data) for seq, data in segments.items()])
    pieces = []             # joined once at the end (a bytearray grown and copied out cost ~30 % more)
    have = 0
    for offset, data in ahead:
        if offset > have:
            break
        if offset < have:
            data = data[have - offset:]
        pieces.append(data)
        have += len(data)
    return b"".join(pieces)


def _signed(diff: int) -> int:
    diff &= 0xFFFFFFFF
    return diff - (1 << 32) if diff >= 1 << 31 else diff
