"""scan_dns against parse_dns on messages built with compression pointers (to the question's
name at offset 12, to other names, in chains), names near the 255-byte limit and labels that
parse_dns escapes; and dns_failures against DnsFailure's own constructor."""
from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dns_scan_check import check_dns

from apnstrace.metadata import dns_feed
from apnstrace.metadata.dns_records import DnsFailure, dns_failures

SETTINGS = settings(max_examples=800, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_PLAIN = st.sampled_from(b"abcxyz019-_")
_ODD = st.sampled_from(b"ABZ.\\\x00\x01\x1f\x7f\x80\xff ")
_LABEL = st.lists(st.one_of(_PLAIN, _PLAIN, _PLAIN, _ODD), min_size=1, max_size=63).map(bytes)


@st.composite
def _name(draw, earlier: list[int], here: int) -> bytes:
    """Labels, then the root or a pointer (to 12, to an earlier name, or anywhere before here)."""
    labels = draw(st.lists(_LABEL, max_size=draw(st.sampled_from([2, 6, 12]))))
    wire = b"".join(bytes([len(x)]) + x for x in labels)
    end = draw(st.sampled_from(["root", "q", "earlier", "any"]))
    if end == "root" or here <= 12:
        return wire + b"\0"
    if end == "q" or not earlier:
        target = 12
    elif end == "earlier":
        target = draw(st.sampled_from(earlier))
    else:
        target = draw(st.integers(0, here + len(wire)))       # also forward / self: bad pointers
    return wire + struct.pack("!H", 0xC000 | target)


@st.composite
def messages(draw) -> bytes:
    flags = draw(st.sampled_from([0x0100, 0x8180, 0x8183, 0x8182, 0x8580]))
    qd, an = draw(st.integers(0, 2)), draw(st.integers(0, 6))
    out = bytearray(struct.pack("!HHHHHH", draw(st.integers(0, 0xFFFF)), flags, qd, an, 0, 0))
    starts: list[int] = []
    for _ in range(qd):
        starts.append(len(out))
        out += draw(_name(starts[:-1], len(out))) + struct.pack("!HH", draw(st.sampled_from([1, 28, 5, 65])), 1)
    for _ in range(an):
        starts.append(len(out))
        out += draw(_name(starts[:-1], len(out)))
        rtype = draw(st.sampled_from([1, 1, 28, 5, 16]))
        if rtype == 1:
            rdata = draw(st.sampled_from([b"\x0a\x00\x00\x01", b"\x00\x00\x00\x00", b"\x7f\x00\x00\x01", b"\x01\x02\x03"]))
        elif rtype == 28:
            rdata = draw(st.sampled_from([bytes(16), bytes(15) + b"\x01", b"\xfe\x80" + bytes(13) + b"\x01"]))
        elif rtype == 5:
            rdata = draw(_name(starts, len(out) + 10))
        else:
            rdata = draw(st.binary(max_size=8))
        out += struct.pack("!HHIH", rtype, 1, 60, len(rdata)) + rdata
    cut = draw(st.sampled_from([None, None, None, -1, -3]))
    return bytes(out if cut is None else out[:cut])


def _pointer_chain(depth: int, labels: int) -> bytes:
    """A question of `labels` 3-byte labels, then answers whose owner names point to the one
    before, the first to the question: the last name is `depth` jumps from it."""
    out = bytearray(struct.pack("!HHHHHH", 7, 0x8180, 1, depth, 0, 0))
    out += b"".join(b"\x03abc" for _ in range(labels)) + b"\0" + struct.pack("!HH", 1, 1)
    target = 12
    for _ in range(depth):
        here = len(out)
        out += b"\x01x" + struct.pack("!H", 0xC000 | target) + struct.pack("!HHIH", 1, 1, 60, 4) + b"\x0a\0\0\x01"
        target = here
    return bytes(out)


pytestmark = pytest.mark.skipif(not dns_feed.COMPILED, reason="the scan runs only compiled")


@SETTINGS
@given(st.lists(messages(), min_size=1, max_size=4))
def test_scan_equals_parse_dns_on_compressed_messages(payloads: list[bytes]) -> None:
    check_dns(payloads)


@pytest.mark.parametrize("labels", [1, 20, 60, 61, 62, 63])
@pytest.mark.parametrize("depth", [1, 2, 31, 32, 33, 40])
def test_pointer_chains_to_the_question_and_the_name_limit(depth: int, labels: int) -> None:
    # 63 labels of 3 bytes: the question is 253 wire bytes; "x" plus a pointer to it is 255
    # (allowed), two such steps are 257 (dns_name_too_long), whatever the chain's length.
    check_dns([_pointer_chain(depth, labels)])


def test_the_usual_answers_are_read_not_left_to_parse_dns() -> None:
    # Answer owners pointing at the question (c00c) and short chains: read by the scan itself.
    assert check_dns([_pointer_chain(3, 5), _pointer_chain(1, 62)]) == 2


@given(st.lists(st.tuples(st.floats(allow_nan=False), st.integers(), st.text(), st.text(), st.text()), max_size=20))
def test_dns_failures_equal_the_constructor(rows: list[tuple]) -> None:
    built = dns_failures(*(list(c) for c in zip(*rows))) if rows else dns_failures([], [], [], [], [])
    assert built == [DnsFailure(*r) for r in rows]
    assert [hash(f) for f in built] == [hash(DnsFailure(*r)) for r in rows]


def _meaningful(scan) -> dict:
    """What a DnsScan says (the unfilled tails of its budget arrays left out)."""
    used, a_used, _, _, n_asked = scan.used.tolist()
    k = int(scan.answer_first[-1])
    out = {name: getattr(scan, name).tolist() for name in (
        "reason", "is_response", "rcode", "failed", "qdcount", "qtype", "qname_at", "qname_len", "answer_first",
        "used", "bad_count", "bad_first")}
    out.update(answer_msg=scan.answer_msg[:k].tolist(), answer_at=scan.answer_at[:k].tolist(),
               answer_v6=scan.answer_v6[:k].tolist(), answer_name_end=scan.answer_name_end[:k + 1].tolist(),
               names=scan.names[:used].tobytes(), answer_names=scan.answer_names[:a_used].tobytes(),
               asked=scan.asked[:n_asked].tolist(), asked_off=scan.asked_off[:n_asked + 1].tolist(),
               sizes=[len(scan.names), len(scan.answer_names), len(scan.answer_msg), len(scan.reason)])
    return out


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.lists(messages(), max_size=6), min_size=1, max_size=5))
def test_a_scan_into_reused_arrays_equals_a_fresh_one(batches: list[list[bytes]]) -> None:
    # Scans one after another into the thread's scratch (growing, shrinking, left dirty by
    # the one before) say what a scan into fresh arrays says.
    from apnstrace.decode import dns_fast
    from dns_scan_check import payload_column
    for payloads in batches:
        buf, off, cap = payload_column(payloads)
        assert _meaningful(dns_fast.scan_dns(buf, off, cap, reuse=True)) == _meaningful(
            dns_fast.scan_dns(buf, off, cap))


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(messages(), max_size=8))
def test_failed_lookups_equal_the_references(payloads: list[bytes]) -> None:
    # feed_dns's failures (names decoded from the scan's) against parse_dns's, message by message.
    from dns_scan_check import payload_column

    from apnstrace.metadata import MetadataCollector
    from apnstrace.stats import RunStats
    buf, off, cap = payload_column(payloads)
    got = []
    for compiled in (True, False):
        collector = MetadataCollector(RunStats())
        dns_feed.COMPILED = compiled
        try:
            dns_feed.feed_dns(collector, buf, off, cap, list(range(len(off))), [float(i) for i in range(len(off))])
        finally:
            dns_feed.COMPILED = True
        got.append(collector.dns.failures)
    assert got[0] == got[1]
