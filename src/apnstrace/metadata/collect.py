"""Pick the few packets that carry metadata and feed them to the Python parsers.

Per chunk, numpy does the picking: the first payload-carrying packets of each TCP flow
direction whose payload starts like a TLS record or an HTTP message (and the packets that
continue such a stream while it is incomplete), and DNS over UDP. Only those reach Python:
they are reassembled in sequence order, parsed once complete, and reduced to a few fields
per flow. Memory holds only streams still being reassembled.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..decode import dns, http, tls
from ..decode.malformed import Malformed
from ..records import PacketBatch
from ..stats import RunStats

EARLY = 8                  # a stream must start within a flow direction's first payloads
                           # (STARTTLS, SOCKS and CONNECT put a few messages before the ClientHello)
MAX_SEGMENTS = 12          # payloads read per stream at most (a TLS 1.2 server flight fits)
MAX_STREAM_BYTES = 24_576
DNS_PORTS = (53, 5353)
TCP, UDP = 6, 17
HTTP_STARTS = (b"GET ", b"POST", b"HEAD", b"PUT ", b"DELE", b"OPTI", b"PATC", b"CONN", b"HTTP")
PROXY_V1, PROXY_V2 = b"PROXY ", b"\r\n\r\n\x00\r\nQUIT\n"   # HAProxy PROXY protocol before the real stream


@dataclass
class FlowMeta:
    """What the parsers found in one flow (keys: the flow table's uid)."""

    sni: str | None = None
    alpn: str | None = None
    client_dir: int | None = None          # canonical direction of the ClientHello / request
    hello_ts: float | None = None
    server_ts: float | None = None         # first server handshake record
    tls_version: str | None = None
    tls_alert: str | None = None
    cert_issuer: str | None = None
    http_method: str | None = None
    http_host: str | None = None
    http_path: str | None = None
    http_user_agent: str | None = None
    http_status: int | None = None
    dns_query: str | None = None           # first question of a DNS flow


@dataclass
class _Stream:
    kind: str                               # "tls" or "http"
    first_ts: float
    start_seq: int                          # where the stream begins (earlier bytes are not its)
    segments: dict[int, bytes] = field(default_factory=dict)   # seq -> payload
    seen: int = 0


@dataclass
class DnsRecords:
    """Columns of DNS answers (address -> name) and failures, in capture order."""

    ts: list[float] = field(default_factory=list)
    address: list[str] = field(default_factory=list)
    name: list[str] = field(default_factory=list)
    failures: list[tuple[float, str, str, str]] = field(default_factory=list)   # ts, qname, rcode, server


class MetadataCollector:
    def __init__(self, stats: RunStats) -> None:
        self.stats = stats
        self.flows: dict[int, FlowMeta] = {}
        self.streams: dict[int, _Stream] = {}            # key uid*2+dir -> stream being read
        self.done: dict[str, set[int]] = {"tls": set(), "http": set()}   # keys whose first one was read
        self.dns = DnsRecords()

    # -- per chunk ----------------------------------------------------------------------
    def add(self, buf: np.ndarray, pk: PacketBatch, uid: np.ndarray, rank: np.ndarray) -> None:
        if len(pk) == 0:
            return
        has_data = pk.payload_cap > 0
        self._dns_over_udp(buf, pk, uid, np.flatnonzero(has_data & (pk.proto == UDP) & _port_in(pk, DNS_PORTS)))
        key = uid * 2 + pk.direction
        tcp = has_data & (pk.proto == TCP)
        early = tcp & (rank < EARLY)
        starts = early & _looks_like_start(buf, pk.payload_off, pk.payload_cap)
        start_keys = np.unique(key[starts])
        pending = np.fromiter(self.streams.keys(), np.int64, len(self.streams))
        chosen = (early & np.isin(key, start_keys)) | (tcp & (rank < MAX_SEGMENTS) & np.isin(key, pending))
        rows = np.flatnonzero(chosen)
        if rows.size == 0:
            return
        # Stream starts first: a segment that overtook its stream's first one is kept, not dropped.
        rows = np.concatenate([rows[starts[rows]], rows[~starts[rows]]])
        touched = set()
        offs, caps, seqs = pk.payload_off[rows].tolist(), pk.payload_cap[rows].tolist(), pk.seq[rows].tolist()
        for i, k, t, off, cap, seq in zip(rows.tolist(), key[rows].tolist(), pk.ts[rows].tolist(), offs, caps, seqs):
            data = buf[off: off + cap].tobytes()
            kind, skip = _stream_start(data)
            stream = self.streams.get(k)
            if kind is not None and k in self.done[kind]:
                continue            # only a flow's first ClientHello / HTTP message counts
            if stream is not None and kind is not None and kind != stream.kind:
                self._try_parse(k, final=True)      # e.g. CONNECT answered, then TLS begins
                stream = None
            if stream is None:
                if kind is None:
                    continue        # no stream start for this flow direction in reach
                if skip:
                    data, seq = data[skip:], (seq + skip) & 0xFFFFFFFF
                stream = self.streams[k] = _Stream(kind, t, seq)
            stream.segments.setdefault(seq, data)
            stream.first_ts = min(stream.first_ts, t)
            stream.seen += 1
            touched.add(k)
        for k in touched:
            self._try_parse(k)

    def finish(self) -> None:
        """Parse what incomplete streams hold (a capture cut mid-handshake)."""
        for k in list(self.streams):
            self._try_parse(k, final=True)

    # -- parsing ------------------------------------------------------------------------
    def _try_parse(self, k: int, final: bool = False) -> None:
        stream = self.streams[k]
        data = _contiguous(stream.segments, stream.start_seq)
        uid, direction = divmod(k, 2)
        exhausted = final or stream.seen >= MAX_SEGMENTS or len(data) >= MAX_STREAM_BYTES
        try:
            if stream.kind == "http":
                done = self._http(uid, direction, data, exhausted)
            else:
                done = self._tls(uid, direction, stream, data, exhausted)
        except Malformed as bad:
            self.stats.malformed[bad.reason] += 1
            done = True
        if done or exhausted:
            del self.streams[k]
            self.done[stream.kind].add(k)

    def _meta(self, uid: int) -> FlowMeta:
        meta = self.flows.get(uid)
        if meta is None:
            meta = self.flows[uid] = FlowMeta()
        return meta

    def _tls(self, uid: int, direction: int, stream: _Stream, data: bytes, exhausted: bool) -> bool:
        if data[5:6] == b"\x01":                                  # ClientHello
            needed = tls.needed_length(data)
            if needed is not None and len(data) < needed and not exhausted:
                return False
            hello = tls.parse_client_hello(data)
            meta = self._meta(uid)
            meta.sni, meta.alpn = hello.sni, ",".join(hello.alpn) or None
            meta.client_dir, meta.hello_ts = direction, stream.first_ts
            return True
        flight = tls.parse_server_flight(data)
        meta = self._meta(uid)
        if flight.hello_seen and meta.server_ts is None:
            meta.server_ts = stream.first_ts
        meta.tls_version = flight.version or meta.tls_version
        meta.tls_alert = meta.tls_alert or flight.alert
        meta.cert_issuer = flight.cert_issuer or meta.cert_issuer
        # A TLS 1.2 server flight ends with ServerHelloDone; wait for the certificate until then.
        complete = flight.alert is not None or flight.version == "TLS 1.3" or flight.cert_issuer is not None \
            or getattr(flight, "hello_done", False)
        return complete or exhausted

    def _http(self, uid: int, direction: int, data: bytes, exhausted: bool) -> bool:
        meta = self._meta(uid)
        if data.startswith(b"HTTP/"):
            meta.http_status = http.parse_response(data)
            return True
        if b"\r\n\r\n" not in data and not exhausted:
            return False
        request = http.parse_request(data)
        meta.http_method, meta.http_host = request.method, request.host
        meta.http_path, meta.http_user_agent = request.path, request.user_agent
        meta.client_dir = direction if meta.client_dir is None else meta.client_dir
        return True

    def _dns_over_udp(self, buf: np.ndarray, pk: PacketBatch, uid: np.ndarray, rows: np.ndarray) -> None:
        for i in rows.tolist():
            off, cap = int(pk.payload_off[i]), int(pk.payload_cap[i])
            try:
                message = dns.parse_dns(buf[off: off + cap].tobytes())
            except Malformed as bad:
                self.stats.malformed[bad.reason] += 1
                continue
            if message.questions:
                meta = self._meta(int(uid[i]))
                meta.dns_query = meta.dns_query or message.questions[0][0]
            if not message.is_response:
                continue
            ts = float(pk.ts[i])
            if message.rcode_name != "NOERROR" or not any(a.rtype in ("A", "AAAA") for a in message.answers):
                qname = message.questions[0][0] if message.questions else ""
                reason = message.rcode_name if message.rcode_name != "NOERROR" else "NOANSWER"
                self.dns.failures.append((ts, qname, reason, ""))
            _record_answers(self.dns, ts, message)


def _record_answers(store: DnsRecords, ts: float, message) -> None:
    """Each address answered gets the name the client asked for (the question, not the CNAME)."""
    asked = message.questions[0][0] if message.questions else None
    for answer in message.answers:
        if answer.rtype in ("A", "AAAA") and answer.value:
            store.ts.append(ts)
            store.address.append(answer.value)
            store.name.append(asked or answer.name)


def _port_in(pk: PacketBatch, ports) -> np.ndarray:
    out = np.zeros(len(pk), bool)
    for port in ports:
        out |= (pk.port_a == port) | (pk.port_b == port)
    return out


def _looks_like_start(buf: np.ndarray, off: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Payload starts a TLS handshake/alert record or an HTTP/1 message (peek at 4 bytes)."""
    enough = cap >= 4
    at = np.where(enough, off, 0)
    b0, b1, b2, b3 = (buf[at + i] for i in range(4))
    tls_record = ((b0 == 0x16) | (b0 == 0x15)) & (b1 == 3) & (b2 <= 4)
    word = (b0.astype(np.uint32) << 24) | (b1.astype(np.uint32) << 16) | (b2.astype(np.uint32) << 8) | b3
    words = [int.from_bytes(s[:4], "big") for s in HTTP_STARTS + (PROXY_V1, PROXY_V2)]
    return enough & (tls_record | np.isin(word, np.array(words, np.uint32)))


def _tls_start(data: bytes) -> bool:
    return len(data) >= 3 and data[0] in (0x16, 0x15) and data[1] == 3


def _stream_start(data: bytes) -> tuple[str | None, int]:
    """What stream a payload starts ("tls", "http" or None) and how many prefix bytes to skip."""
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
    ahead = sorted((_signed(seq - start), data) for seq, data in segments.items())
    out = bytearray()
    for offset, data in ahead:
        if offset < 0:
            continue                    # bytes before the stream began (e.g. STARTTLS dialogue)
        if offset > len(out):
            break
        out += data[len(out) - offset:]
    return bytes(out)


def _signed(diff: int) -> int:
    diff &= 0xFFFFFFFF
    return diff - (1 << 32) if diff >= 1 << 31 else diff
