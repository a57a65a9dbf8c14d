"""DNS messages (UDP payloads, or messages reassembled from TCP) into the collector's records.

The compiled scan (decode/dns_fast.py) reads the usual message of a chunk; Python only turns
its offsets into names and addresses and keeps the records. Messages the scan leaves alone go
through parse_dns, the reference, one by one, in their place in capture order.
"""
from __future__ import annotations

import socket

import numpy as np
import pyarrow as pa

from ..decode import dns
from ..decode.dns_fast import FALLBACK, OK, REASONS, scan_dns
from ..decode.malformed import Malformed
from ..reader.walk import njit
from .dns_records import DnsFailure
from .held import gather_ranges

COMPILED = njit.__module__.startswith("numba")     # walk.py falls back to plain Python without numba

# Address text by its bytes: answers repeat the same CDN addresses over and over.
_V4: dict[int, str] = {}
_V6: dict[bytes, str] = {}
_CACHE_MAX = 1 << 16


def feed_dns(collector, buf: np.ndarray, off: np.ndarray, cap: np.ndarray, uids, tss) -> None:
    """Every message at buf[off:off+cap] (one per uid/ts: arrays or lists), in order."""
    n = len(off)
    if n == 0:
        return
    # One sequence number per message: the metadata log then orders the question names the
    # scan and parse_dns give as they come in the capture.
    first_seq = collector.log.reserve(n)
    uid_col, ts_col = np.asarray(uids, np.int64), np.asarray(tss, np.float64)
    if not COMPILED:        # the scan is only worth it compiled: plain Python is parse_dns's job
        for j in range(n):
            _reference(collector, buf[off[j]: off[j] + cap[j]].tobytes(), int(uid_col[j]), float(ts_col[j]),
                       first_seq + j)
        return
    scan = scan_dns(buf, off, cap)
    reason, response = scan.reason, scan.is_response
    malformed = collector.stats.malformed
    for r in reason[(reason != OK) & (reason != FALLBACK) & response].tolist():
        malformed[REASONS[r]] += 1                    # as _reference counts them: answers only
    ok = reason == OK
    asked = np.flatnonzero(ok & (scan.qdcount > 0))
    qnames = _question_names(scan, asked)
    collector.log.batch("query", uid_col[asked], seq=first_seq + asked, dns_query=qnames)
    # Answers of the messages read here, then those parse_dns reads: merged in message order.
    found = _Found()
    answered = np.flatnonzero(ok & response)
    if answered.size:
        _answers(found, buf, scan, answered, uid_col, ts_col, _names_of(answered, asked, qnames))
    fallback = np.flatnonzero(reason == FALLBACK)
    if fallback.size == 0:
        found.into(collector.dns)
        return
    late = _Found()
    for j in fallback.tolist():
        before = len(late.ts), len(late.failures)
        _reference(collector, buf[off[j]: off[j] + cap[j]].tobytes(), int(uid_col[j]), float(ts_col[j]),
                   first_seq + j, late)
        late.message.extend([j] * (len(late.ts) - before[0]))
        late.failed.extend([j] * (len(late.failures) - before[1]))
    found.merged(late).into(collector.dns)


class _Found:
    """DNS answers and failures with the message each came from (to merge in capture order)."""

    def __init__(self) -> None:
        self.ts, self.address, self.name, self.message = [], [], [], []
        self.failures, self.failed = [], []

    def merged(self, other: "_Found") -> "_Found":
        out = _Found()
        for mine, theirs, by, key in ((self, other, "message", ("ts", "address", "name")),
                                      (self, other, "failed", ("failures",))):
            order = np.argsort(np.array(getattr(mine, by) + getattr(theirs, by), np.int64), kind="stable")
            for name in key:
                joined = getattr(mine, name) + getattr(theirs, name)
                setattr(out, name, [joined[i] for i in order.tolist()])
        return out

    def into(self, records) -> None:
        records.ts.extend(self.ts)
        records.address.extend(self.address)
        records.name.extend(self.name)
        records.failures.extend(self.failures)


def _question_names(scan, rows: np.ndarray) -> pa.Array:
    """The scan's question names of `rows` as strings (ASCII: the scan escapes like parse_dns)."""
    lengths = scan.qname_len[rows]
    offsets = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    slot = scan.qname.shape[1]
    data = gather_ranges(scan.qname.reshape(-1), rows * slot, lengths)
    return pa.Array.from_buffers(pa.large_string(), len(rows), [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _names_of(rows: np.ndarray, asked: np.ndarray, qnames: pa.Array) -> np.ndarray:
    """Per message of `rows`: its question name (None when it has none), as an object array:
    only the answered messages' names become Python strings."""
    pos = np.minimum(np.searchsorted(asked, rows), max(len(asked) - 1, 0))
    has = (pos < len(asked)) & (asked[pos] == rows) if len(asked) else np.zeros(len(rows), bool)
    out = np.full(len(rows), None, object)
    if has.any():
        out[has] = _objects(qnames.take(pa.array(pos[has])).to_pylist())
    return out


def _objects(values: list) -> np.ndarray:
    """A 1-D object array of these values (np.array would not keep strings whole in every case)."""
    out = np.empty(len(values), object)
    out[:] = values
    return out


def _answers(found: _Found, buf: np.ndarray, scan, rows: np.ndarray, uid: np.ndarray, ts: np.ndarray,
             qname: np.ndarray) -> None:
    """Responses the scan read: their addresses (named by the question) and failed lookups.
    qname: per message of `rows`, its question name or None."""
    first = scan.answer_first
    counts = first[rows + 1] - first[rows]
    ends = np.cumsum(counts)
    every = np.arange(int(ends[-1]), dtype=np.int64) + np.repeat(first[rows] - (ends - counts), counts)
    texts = _addresses(buf, scan.answer_at[every], scan.answer_v6[every])
    sinkhole = _sinkholes(buf, scan.answer_at[every], scan.answer_v6[every])
    # per message: every address a sinkhole (and at least one)
    bad_count = np.zeros(len(rows), np.int64)
    np.add.at(bad_count, np.repeat(np.arange(len(rows)), counts), ~sinkhole)
    rcode = scan.rcode[rows]
    failing = np.flatnonzero((rcode != 0) | ((counts > 0) & (bad_count == 0)))
    for i in failing.tolist():
        j = int(rows[i])
        failure = dns.rcode_name(int(rcode[i])) if rcode[i] else "SINKHOLE"
        qd = scan.qdcount[j] > 0
        found.failures.append(DnsFailure(float(ts[j]), int(uid[j]), qname[i] or "",
                                         dns.type_name(int(scan.qtype[j])) if qd else "", failure))
        found.failed.append(j)
    if every.size:
        # Named by the question, else (no question name: mDNS announcements) by the owner name.
        per_answer = np.repeat(np.arange(len(rows)), counts)
        names = qname[per_answer]
        owner_at = scan.owner_at[every]
        owned = np.flatnonzero(owner_at >= 0)
        if owned.size:
            owners = _owner_names(scan, owner_at[owned], scan.owner_len[every[owned]])
            for i, name in zip(owned.tolist(), owners):
                names[i] = names[i] or name
        found.ts.extend(ts[rows][per_answer].tolist())
        found.address.extend(texts)
        found.name.extend(names.tolist())
        found.message.extend(rows[per_answer].tolist())


def _owner_names(scan, at: np.ndarray, length: np.ndarray) -> list[str]:
    """Owner names the scan wrote (ASCII: escaped like parse_dns), as strings."""
    offsets = np.zeros(len(at) + 1, np.int64)
    np.cumsum(length, out=offsets[1:])
    data = gather_ranges(scan.owners, at, length)
    return pa.Array.from_buffers(pa.large_string(), len(at), [None, pa.py_buffer(offsets),
                                                             pa.py_buffer(data)]).to_pylist()


def _sinkholes(buf: np.ndarray, at: np.ndarray, v6: np.ndarray) -> np.ndarray:
    """Per address: a null route (0/8, 127/8, ::, ::1), as _sinkhole reads its text."""
    first = buf[at]
    four = (first == 0) | (first == 127)
    six = np.zeros(len(at), bool)
    if v6.any():
        bytes16 = buf[at[v6][:, None] + np.arange(16)[None, :]]
        six[v6] = (bytes16[:, :15] == 0).all(axis=1) & (bytes16[:, 15] <= 1)
    return np.where(v6, six, four)


def _reference(collector, payload: bytes, uid: int, ts: float, seq: int, found=None) -> None:
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
    store = collector.dns if found is None else found
    failure = failure_of(message)
    if failure is not None:
        qname, qtype = message.questions[0] if message.questions else ("", "")
        store.failures.append(DnsFailure(ts, uid, qname, qtype, failure))
    record_answers(store, ts, message)


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
    """Address text as parse_dns writes it, for every answer the scan found (each distinct
    IPv4 address written once: answers repeat the same CDN addresses over and over)."""
    if len(at) == 0:
        return []
    v6 = v6[:len(at)]
    out = np.empty(len(at), object)
    four = np.flatnonzero(~v6)
    if four.size:
        a = at[four]
        words = ((buf[a].astype(np.uint32) << 24) | (buf[a + 1].astype(np.uint32) << 16)
                 | (buf[a + 2].astype(np.uint32) << 8) | buf[a + 3])
        distinct, inverse = np.unique(words, return_inverse=True)
        out[four] = _objects([_v4_text(w) for w in distinct.tolist()])[inverse.reshape(-1)]
    for j in np.flatnonzero(v6).tolist():
        raw = buf[at[j]: at[j] + 16].tobytes()
        text = _V6.get(raw)
        if text is None:
            text = socket.inet_ntop(socket.AF_INET6, raw)
            if len(_V6) < _CACHE_MAX:
                _V6[raw] = text
        out[j] = text
    return out.tolist()


def _v4_text(w: int) -> str:
    text = _V4.get(w)
    if text is None:
        text = f"{w >> 24}.{(w >> 16) & 255}.{(w >> 8) & 255}.{w & 255}"
        if len(_V4) < _CACHE_MAX:
            _V4[w] = text
    return text
