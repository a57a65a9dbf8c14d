"""DNS messages (UDP payloads, or messages reassembled from TCP) into the collector's records.

The compiled scan (decode/dns_fast.py) reads the usual message of a chunk; Python only turns
its offsets into names and addresses and keeps the records. Messages the scan leaves alone go
through parse_dns, the reference, one by one, in their place in capture order.
"""
from __future__ import annotations

import socket

import numpy as np

from ..decode import dns
from ..decode.dns_fast import FALLBACK, OK, REASONS, scan_dns
from ..decode.malformed import Malformed
from ..reader.walk import njit
from .dns_records import DnsFailure

COMPILED = njit.__module__.startswith("numba")     # walk.py falls back to plain Python without numba

# Address text by its bytes: answers repeat the same CDN addresses over and over.
_V4: dict[int, str] = {}
_V6: dict[bytes, str] = {}
_CACHE_MAX = 1 << 16


def feed_dns(collector, buf: np.ndarray, off: np.ndarray, cap: np.ndarray, uids: list[int],
             tss: list[float]) -> None:
    """Every message at buf[off:off+cap] (one per uid/ts), in order."""
    n = len(off)
    if n == 0:
        return
    # One sequence number per message: the metadata log then orders the question names the
    # scan and parse_dns give as they come in the capture.
    first_seq = collector.log.reserve(n)
    if not COMPILED:        # the scan is only worth it compiled: plain Python is parse_dns's job
        for j in range(n):
            _reference(collector, buf[off[j]: off[j] + cap[j]].tobytes(), uids[j], tss[j], first_seq + j)
        return
    scan = scan_dns(buf, off, cap)
    texts = _addresses(buf, scan.answer_at[:scan.answer_first[-1]], scan.answer_v6)
    first = scan.answer_first.tolist()
    names = scan.qname
    lengths = scan.qname_len.tolist()
    offs, caps = off.tolist(), cap.tolist()
    malformed = collector.stats.malformed
    asked: list[int] = []               # messages with a question: their name is a dns_query write
    asked_names: list[str] = []
    for j, (reason, response, rcode, qd, qtype) in enumerate(zip(
            scan.reason.tolist(), scan.is_response.tolist(), scan.rcode.tolist(), scan.qdcount.tolist(),
            scan.qtype.tolist())):
        if reason != OK:
            if reason == FALLBACK:
                _reference(collector, buf[offs[j]: offs[j] + caps[j]].tobytes(), uids[j], tss[j], first_seq + j)
            elif response:
                malformed[REASONS[reason]] += 1      # as _reference counts them: answers only
            continue
        qname = names[j, :lengths[j]].tobytes().decode("ascii") if qd else None
        if qd:
            asked.append(j)
            asked_names.append(qname)
        if not response:
            continue
        addresses = texts[first[j]:first[j + 1]]
        records = collector.dns
        failure = dns.rcode_name(rcode) if rcode else None
        if failure is None and addresses and all(_sinkhole(a) for a in addresses):
            failure = "SINKHOLE"
        if failure is not None:
            records.failures.append(DnsFailure(tss[j], uids[j], qname or "", dns.type_name(qtype) if qd else "",
                                               failure))
        if addresses:
            # The scan leaves messages without a question name to parse_dns: qname names them all.
            records.ts.extend([tss[j]] * len(addresses))
            records.address.extend(addresses)
            records.name.extend([qname] * len(addresses))
    if asked:
        at = np.array(asked, np.int64)
        collector.log.batch("query", np.array(uids, np.int64)[at], seq=first_seq + at, dns_query=asked_names)


def _reference(collector, payload: bytes, uid: int, ts: float, seq: int) -> None:
    """One message through parse_dns, as the collector always read them."""
    try:
        message = dns.parse_dns(payload)
    except Malformed as bad:
        # Counted for answers only: whether a query is read at all depends on where its
        # answer fell (same chunk or not), and counts must not depend on chunking.
        if len(payload) > 2 and payload[2] & 0x80:
            collector.stats.malformed[bad.reason] += 1
        return
    if message.questions:
        collector.log.row("query", uid, message.questions[0][0], seq=seq)
    if not message.is_response:
        return
    failure = failure_of(message)
    if failure is not None:
        qname, qtype = message.questions[0] if message.questions else ("", "")
        collector.dns.failures.append(DnsFailure(ts, uid, qname, qtype, failure))
    record_answers(collector.dns, ts, message)


def failure_of(message) -> str | None:
    """The rcode of a failed answer, SINKHOLE when every address answered is a null route,
    None when the lookup worked (NOERROR without the asked type is a valid empty answer)."""
    if message.rcode_name != "NOERROR":
        return message.rcode_name
    addresses = [a.value for a in message.answers if a.rtype in ("A", "AAAA") and a.value]
    if addresses and all(_sinkhole(a) for a in addresses):
        return "SINKHOLE"
    return None


def _sinkhole(address: str) -> bool:
    return address.startswith(("0.", "127.")) or address in ("::", "::1")


def record_answers(store, ts: float, message) -> None:
    """Each address answered gets the name the client asked for (the question, not the CNAME)."""
    asked = message.questions[0][0] if message.questions else None
    for answer in message.answers:
        if answer.rtype in ("A", "AAAA") and answer.value:
            store.ts.append(ts)
            store.address.append(answer.value)
            store.name.append(asked or answer.name)


def _addresses(buf: np.ndarray, at: np.ndarray, v6: np.ndarray) -> list[str]:
    """Address text as parse_dns writes it, for every answer the scan found."""
    if len(at) == 0:
        return []
    v6 = v6[:len(at)]
    out: list[str] = [""] * len(at)
    four = np.flatnonzero(~v6)
    if four.size:
        a = at[four]
        words = ((buf[a].astype(np.uint32) << 24) | (buf[a + 1].astype(np.uint32) << 16)
                 | (buf[a + 2].astype(np.uint32) << 8) | buf[a + 3]).tolist()
        for j, w in zip(four.tolist(), words):
            text = _V4.get(w)
            if text is None:
                text = f"{w >> 24}.{(w >> 16) & 255}.{(w >> 8) & 255}.{w & 255}"
                if len(_V4) < _CACHE_MAX:
                    _V4[w] = text
            out[j] = text
    for j in np.flatnonzero(v6).tolist():
        raw = buf[at[j]: at[j] + 16].tobytes()
        text = _V6.get(raw)
        if text is None:
            text = socket.inet_ntop(socket.AF_INET6, raw)
            if len(_V6) < _CACHE_MAX:
                _V6[raw] = text
        out[j] = text
    return out
