"""The common TCP case without Python per packet: a flow direction whose first TLS or HTTP
payload holds its whole ClientHello, server flight, request head or status line.

Per chunk, numpy picks those payloads among the rows the collector would feed its streams and
compiled scans (decode/tls_fast.py, http_fast.py) read all of them at once; Python then only
turns offsets into the few strings FlowMeta keeps. A payload qualifies only when reading it
alone gives exactly what the stream path would: it is its flow direction's only row in this
feed, no stream is open or finished for it, and the other direction has nothing in this feed
that writes the same FlowMeta fields (so the order the stream path would have used is moot).
Everything else, and anything the scans do not read plainly, stays on the stream path.
"""
from __future__ import annotations

import numpy as np

from ..decode import http_fast, tls, tls_fast
from ..records import PacketBatch
from .dns_feed import COMPILED

# What a stream start writes: 1 ClientHello, 2 server flight, 3 HTTP request, 4 HTTP response.
# 0: any other row (a continuation, a PROXY header): it keeps its flow direction on the stream path.
HELLO, FLIGHT, REQUEST, RESPONSE = 1, 2, 3, 4
_HTTP_SLASH = int.from_bytes(b"HTTP/", "big")

_ALPN: dict[bytes, str | None] = {}      # ALPN lists by their bytes: a handful of distinct ones
_CACHE_MAX = 4096


def take_fast(collector, buf: np.ndarray, pk: PacketBatch, key: np.ndarray, rows: np.ndarray,
              is_start: np.ndarray, start_kind: np.ndarray, pending: np.ndarray) -> np.ndarray:
    """Read the rows that qualify; return the others, in their order, for the stream path.

    is_start: per row of the chunk, a stream start the collector picked (its first TLS / HTTP
    start in this chunk); pending: keys with a stream open before this chunk."""
    if not COMPILED or rows.size == 0:
        return rows
    role = _roles(buf, pk, rows, is_start, start_kind)
    rk = key[rows]
    uniq, inv, counts = np.unique(rk, return_inverse=True, return_counts=True)
    written = np.zeros(len(uniq), np.int64)              # per key: bit r set when a row has role r
    np.bitwise_or.at(written, inv, np.left_shift(1, role))
    other = rk ^ 1
    at = np.minimum(np.searchsorted(uniq, other), len(uniq) - 1)
    other_written = np.where(uniq[at] == other, written[at], 0)
    fast = ((role > 0) & (counts[inv] == 1) & ~np.isin(rk, pending) & ~np.isin(other, pending)
            & ((other_written & 1) == 0) & (((other_written >> role) & 1) == 0))
    cand = np.flatnonzero(fast)
    if cand.size == 0:
        return rows
    # Finished streams: a direction reads only its first message; a ClientHello must not race
    # the other direction's late alert (which reads client_dir).
    done_tls, done_http = collector.done["tls"], collector.done["http"]
    keep = [not (k in done_tls or (r == HELLO and (k ^ 1) in done_tls)) if r <= FLIGHT else k not in done_http
            for k, r in zip(rk[cand].tolist(), role[cand].tolist())]
    cand = cand[np.array(keep, bool)]
    taken = np.zeros(len(rows), bool)
    is_tls = role[cand] <= FLIGHT
    taken[cand[is_tls]] = _tls_rows(collector, buf, pk, key, rows[cand[is_tls]])
    taken[cand[~is_tls]] = _http_rows(collector, buf, pk, key, rows[cand[~is_tls]])
    return rows[~taken]


def _roles(buf, pk, rows, is_start, start_kind) -> np.ndarray:
    off, cap = pk.payload_off[rows], pk.payload_cap[rows]
    kind = np.where(is_start[rows], start_kind[rows], 0)
    b5 = buf[np.where(cap >= 6, off + 5, 0)]
    hello = (cap >= 6) & (b5 == tls.CLIENT_HELLO)
    word = np.zeros(len(rows), np.int64)
    five = np.where(cap >= 5, off, 0)
    for j in range(5):
        word = (word << 8) | buf[five + j]
    response = (cap >= 5) & (word == _HTTP_SLASH)
    return np.select([kind == 1, kind == 2], [np.where(hello, HELLO, FLIGHT), np.where(response, RESPONSE, REQUEST)],
                     0).astype(np.int64)


def _tls_rows(collector, buf, pk, key, rows) -> np.ndarray:
    scan = tls_fast.scan_tls(buf, pk.payload_off[rows], pk.payload_cap[rows])
    done = collector.done["tls"]
    text = tls.text
    for k, t, kind, s0, s1, a0, a1, version, alert in zip(
            key[rows].tolist(), pk.ts[rows].tolist(), scan.kind.tolist(), scan.sni_start.tolist(),
            scan.sni_end.tolist(), scan.alpn_start.tolist(), scan.alpn_end.tolist(), scan.version.tolist(),
            scan.alert.tolist()):
        if kind == tls_fast.FALLBACK:
            continue
        uid, direction = divmod(k, 2)
        meta = collector._meta(uid)
        if kind == tls_fast.HELLO:
            meta.sni = text(buf[s0:s1].tobytes()) if s0 >= 0 else None
            meta.alpn = _alpn_offered(buf[a0:a1].tobytes()) if a0 >= 0 else None
            meta.client_dir, meta.hello_ts = direction, t
            collector.hellos.append(uid)
        else:
            if version >= 0:
                if meta.server_ts is None:
                    meta.server_ts = t
                meta.tls_version = tls.version_name(version)
            meta.server_alpn = meta.server_alpn or (text(buf[a0:a1].tobytes()) if a0 >= 0 else None)
            meta.tls_alert = meta.tls_alert or (tls.alert_name(alert >> 8, alert & 0xFF) if alert >= 0 else None)
        done.add(k)
    return scan.kind != tls_fast.FALLBACK


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


def _http_rows(collector, buf, pk, key, rows) -> np.ndarray:
    scan = http_fast.scan_http(buf, pk.payload_off[rows], pk.payload_cap[rows])
    done = collector.done["http"]
    text = tls.text
    for k, off, kind, m1, t0, t1, h0, h1, u0, u1, status in zip(
            key[rows].tolist(), pk.payload_off[rows].tolist(), scan.kind.tolist(), scan.method_end.tolist(),
            scan.target_start.tolist(), scan.target_end.tolist(), scan.host_start.tolist(),
            scan.host_end.tolist(), scan.agent_start.tolist(), scan.agent_end.tolist(), scan.status.tolist()):
        if kind == http_fast.FALLBACK:
            continue
        uid, direction = divmod(k, 2)
        meta = collector._meta(uid)
        if kind == http_fast.RESPONSE:
            meta.http_status = status
        else:
            meta.http_method = buf[off:m1].tobytes().decode("ascii")
            meta.http_host = text(buf[h0:h1].tobytes())
            meta.http_path = text(buf[t0:t1].tobytes())
            meta.http_user_agent = text(buf[u0:u1].tobytes()) if u0 >= 0 else None
            if meta.client_dir is None:
                meta.client_dir = direction
        done.add(k)
    return scan.kind != http_fast.FALLBACK
