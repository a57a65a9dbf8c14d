"""The compiled DNS scan read against parse_dns, payload by payload: shared by the corpus-wide
fast-path test (e2e/test_metadata_fast_path.py) and the compression-pointer test
(unit/test_dns_scan_compression.py)."""
from __future__ import annotations

import socket

import numpy as np

from apnstrace.decode import dns, dns_fast
from apnstrace.decode.malformed import Malformed
from apnstrace.metadata import dns_feed


def payload_column(payloads: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Payloads laid out in one buffer, as a chunk holds them (with a gap between them)."""
    buf = np.frombuffer(b"".join(p + b"\xAA" * 7 for p in payloads) or b"\0", np.uint8)
    cap = np.array([len(p) for p in payloads], np.int64)
    off = np.concatenate([[0], np.cumsum(cap + 7)[:-1]]).astype(np.int64) if payloads else cap
    return buf, off, cap


def _reference_dns(p: bytes):
    try:
        m = dns.parse_dns(p)
    except Malformed as bad:
        return bad.reason
    q = m.questions[0] if m.questions else None
    # each address a response gives, with the name the collector gives it (dns_feed.record_answers)
    answers = [(a.value, (q[0] if q else None) or a.name) for a in m.answers
               if a.rtype in ("A", "AAAA") and a.value and m.is_response]
    return m.is_response, m.rcode, len(m.questions), q, answers, m.is_response and dns_feed.failure_of(m) is not None


def check_dns(payloads: list[bytes]) -> int:
    buf, off, cap = payload_column(payloads)
    scan = dns_fast.scan_dns(buf, off, cap)
    read = 0
    # the ok messages' question names lie back to back, in message order
    asked = np.flatnonzero((scan.reason == dns_fast.OK) & (scan.qdcount > 0))
    assert np.array_equal(np.append(scan.qname_at[asked], scan.used[0])[1:], scan.qname_at[asked] + scan.qname_len[asked])
    # the scan's own list of them and their names' offsets, and its count of Malformed responses
    # per reason with the first of each, as plain numpy reads them from the per-message columns
    n_asked = int(scan.used[4])
    assert np.array_equal(scan.asked[:n_asked], asked)
    assert np.array_equal(scan.asked_off[:n_asked + 1], np.append(scan.qname_at[asked], scan.used[0]))
    bad = (scan.reason > dns_fast.FALLBACK) & scan.is_response
    assert int(scan.used[3]) == int(bad.sum())
    for r in range(len(dns_fast.REASONS)):
        which = np.flatnonzero(bad & (scan.reason == r))
        assert scan.bad_count[r] == len(which)
        assert not len(which) or scan.bad_first[r] == which[0]
    for j, p in enumerate(payloads):
        ref = _reference_dns(p)
        reason = int(scan.reason[j])
        if reason == dns_fast.FALLBACK:
            continue
        read += 1
        if reason != dns_fast.OK:
            assert ref == dns_fast.REASONS[reason], p
            assert bool(scan.is_response[j]) == bool(len(p) > 2 and p[2] & 0x80)
            continue
        first, last = scan.answer_first[j], scan.answer_first[j + 1]
        qd = int(scan.qdcount[j])
        q = (_text(scan, scan.qname_at[j], scan.qname_len[j]), dns.type_name(int(scan.qtype[j]))) if qd else None
        answers = [(socket.inet_ntop(socket.AF_INET6 if scan.answer_v6[a] else socket.AF_INET,
                                     buf[scan.answer_at[a]:scan.answer_at[a] + (16 if scan.answer_v6[a] else 4)]
                                     .tobytes()),
                    scan.answer_names[scan.answer_name_end[a]:scan.answer_name_end[a + 1]].tobytes().decode())
                   for a in range(first, last)]
        assert ref == (bool(scan.is_response[j]), int(scan.rcode[j]), qd, q, answers, bool(scan.failed[j])), p
        assert (scan.answer_msg[first:last] == j).all(), p
    return read


def _text(scan, at: int, length: int) -> str:
    return scan.names[at:at + length].tobytes().decode()
