"""DNS messages (UDP payloads, or messages reassembled from TCP) into the collector's records.

The compiled scan (decode/dns_fast.py) reads the usual message of a chunk; Python only turns
its offsets into names and addresses and keeps the records. Messages the scan leaves alone go
through parse_dns, the reference, one by one, in their place in capture order.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..decode import dns
from ..decode.dns_fast import FALLBACK, REASONS, scan_dns
from ..decode.malformed import Malformed
from ..reader.walk import COMPILED     # walk.py falls back to plain Python without numba
from ..decode.address_text import address_text
from .dns_records import DnsFailure, dns_failures


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
        found = _Found()
        for j in range(n):
            _reference(collector, buf[off[j]: off[j] + cap[j]].tobytes(), int(uid_col[j]), float(ts_col[j]),
                       first_seq + j, found)
        found.into(collector.dns)
        return
    scan = scan_dns(buf, off, cap, reuse=True)         # read up before the next feed_dns
    reason = scan.reason
    fallbacks, bad_responses, n_asked = scan.used[2:].tolist()
    if bad_responses:
        # As _reference counts them (answers only), one reason after another: a reason new to
        # the counter comes in where its first response is, as if counted one by one.
        malformed = collector.stats.malformed
        count, first = scan.bad_count.tolist(), scan.bad_first.tolist()
        for r in sorted((r for r in range(len(REASONS)) if count[r]), key=first.__getitem__):
            malformed[REASONS[r]] += count[r]
    asked = scan.asked[:n_asked]                      # ok messages with a question
    collector.log.batch("query", uid_col[asked], seq=first_seq + asked,
                        dns_query=_column(scan.names, scan.asked_off[:n_asked + 1]))
    # Answers of the messages read here, then those parse_dns reads: merged in message order.
    answers, failures = _answers(buf, scan, uid_col, ts_col)
    if fallbacks:
        late = _Found()
        for j in np.flatnonzero(reason == FALLBACK).tolist():
            before = len(late.ts), len(late.failures)
            _reference(collector, buf[off[j]: off[j] + cap[j]].tobytes(), int(uid_col[j]), float(ts_col[j]),
                       first_seq + j, late)
            late.message.extend([j] * (len(late.ts) - before[0]))
            late.failed.extend([j] * (len(late.failures) - before[1]))
        answers, failures = _merged(answers, failures, late)
    collector.dns.append(*answers[:3])
    collector.dns.failures.extend(failures[0])


class _Found:
    """DNS answers and failures parse_dns read, with the message each came from (to merge in
    capture order with the scan's)."""

    def __init__(self) -> None:
        self.ts, self.address, self.name, self.message = [], [], [], []
        self.failures, self.failed = [], []

    def into(self, records) -> None:
        records.append(np.array(self.ts, np.float64), self.address, self.name)
        records.failures.extend(self.failures)


def _merged(answers: tuple, failures: tuple, late: _Found) -> tuple[tuple, tuple]:
    """The scan's answers and failures and parse_dns's, in message order (stable: a message's
    records keep their order; a message is read by one of the two)."""
    ts, address, name, message = answers
    message = np.concatenate([message, np.array(late.message, np.int64)])
    order = np.argsort(message, kind="stable")
    taken = pa.array(order)
    answers = (np.concatenate([ts, np.array(late.ts, np.float64)])[order],
               pa.concat_arrays([address, pa.array(late.address, pa.large_string())]).take(taken),
               pa.concat_arrays([name, pa.array(late.name, pa.large_string())]).take(taken), message[order])
    failed, by = failures[0] + late.failures, np.concatenate([failures[1], np.array(late.failed, np.int64)])
    return answers, ([failed[i] for i in np.argsort(by, kind="stable").tolist()], by)


_NO_TEXT = pa.array([], pa.large_string())


def _column(data: np.ndarray, offsets: np.ndarray) -> pa.Array:
    """Strings the scan wrote back to back (ASCII: escaped like parse_dns): value i is
    data[offsets[i]:offsets[i + 1]]. Only the bytes used are kept (a copy: the scan's buffer is a
    budget, mostly untouched)."""
    start, stop = int(offsets[0]), int(offsets[-1])
    return pa.Array.from_buffers(pa.large_string(), len(offsets) - 1,
                                 [None, pa.py_buffer(offsets - start), pa.py_buffer(data[start:stop].copy())])


def _answers(buf: np.ndarray, scan, uid: np.ndarray, ts: np.ndarray) -> tuple[tuple, tuple]:
    """Responses the scan read: ((ts, address, name, message) per address answered, (failed
    lookups, the message of each)). Columns: no Python object per answer."""
    k = int(scan.answer_first[-1])
    message = scan.answer_msg[:k]
    if k:
        answers = (ts[message], address_text(buf, scan.answer_at[:k], scan.answer_v6[:k]),
                   _column(scan.answer_names, scan.answer_name_end[:k + 1]), message)
    else:                   # no address answered (queries, a DNS over TCP piece): no column built
        answers = (ts[message], _NO_TEXT, _NO_TEXT, message)
    failing = np.flatnonzero(scan.failed)
    if not failing.size:
        return answers, ([], failing)
    code = scan.rcode[failing].tolist()
    qd = scan.qdcount[failing] > 0
    # The names (ASCII: the scan escapes the rest) decoded one by one: a chunk has ~100 failures,
    # fewer than an Arrow column's fixed costs are worth (gather, offsets, to_pylist).
    names = memoryview(scan.names)
    qname = [str(names[a:a + n], "ascii") for a, n in zip(scan.qname_at[failing].tolist(),
                                                           np.where(qd, scan.qname_len[failing], 0).tolist())]
    qtype = np.where(qd, scan.qtype[failing], -1).tolist()           # -1: no question
    # Each distinct type and rcode named once (a chunk has a few of each).
    qtype_text = {t: dns.type_name(t) if t >= 0 else "" for t in set(qtype)}
    rcode_text = {c: dns.rcode_name(c) if c else "SINKHOLE" for c in set(code)}
    failures = dns_failures(ts[failing].tolist(), uid[failing].tolist(), qname,
                            list(map(qtype_text.__getitem__, qtype)), list(map(rcode_text.__getitem__, code)))
    return answers, (failures, failing)


def _reference(collector, payload: bytes, uid: int, ts: float, seq: int, found: _Found) -> None:
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
        found.failures.append(DnsFailure(ts, uid, qname, qtype, failure))
    record_answers(found, ts, message)


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
