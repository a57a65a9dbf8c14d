"""http_fast reads complete request heads without a Host header exactly as http.parse_request
gives them (host absent unless the target names one, which the reference still decides)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apnstrace.decode import http, http_fast, tls
from apnstrace.decode.malformed import Malformed
from apnstrace.metadata import dns_feed

pytestmark = pytest.mark.skipif(not dns_feed.COMPILED, reason="the fast paths run only compiled")

SETTINGS = settings(max_examples=1500, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _scan(payload: bytes):
    buf = np.frombuffer(b"\xAA" * 3 + payload + b"\xAA" * 7, np.uint8)
    return buf, 3, http_fast.scan_http(buf, np.array([3], np.int64), np.array([len(payload)], np.int64))


def _read(payload: bytes):
    """What the scan says about one payload: None (fallback) or the request's fields."""
    buf, base, scan = _scan(payload)
    if scan.kind[0] != http_fast.REQUEST:
        return None

    def text(a, b):
        return tls.text(buf[a:b].tobytes()) if a >= 0 else None
    return (buf[base:scan.method_end[0]].tobytes().decode(), text(scan.host_start[0], scan.host_end[0]),
            text(scan.target_start[0], scan.target_end[0]), text(scan.agent_start[0], scan.agent_end[0]))


def _reference(payload: bytes):
    try:
        r = http.parse_request(payload)
    except Malformed:
        return "malformed"
    return r.method, r.host, r.path, r.user_agent


def _same(payload: bytes) -> bool:
    """True when the scan read it (and then it must equal the reference), False on fallback."""
    got = _read(payload)
    if got is None:
        return False
    assert got == _reference(payload), payload
    return True


@pytest.mark.parametrize("head", [
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET /index.sucatalog HTTP/1.0\r\nUser-Agent: Darwin/23\r\n\r\n",
    b"POST /a?b=c HTTP/1.1\r\nAccept: */*\r\nContent-Length: 0\r\n\r\n",
    b"GET /abcdefghij://y HTTP/1.1\r\n\r\n",         # "://" past the 9th byte: no authority
    b"GET abcdefghi://y HTTP/1.1\r\n\r\n",
    b"HEAD * HTTP/1.1\r\nX-Host: a\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nhostname: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nfolded line\r\nAgent: x\r\n\r\n",
])
def test_heads_without_host_are_read(head: bytes) -> None:
    assert _same(head)
    assert _read(head)[1] is None


@pytest.mark.parametrize("head", [
    b"GET http://example.com/a HTTP/1.1\r\n\r\n",    # proxy form: the target names the host
    b"GET abcdefgh://y HTTP/1.1\r\n\r\n",            # "://" at 8: still an authority for the reference
    b"GET /x://y HTTP/1.1\r\n\r\n",                  # "://" anywhere in the first 9 bytes
    b"CONNECT example.com:443 HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost:\r\nHost: b\r\n\r\n",   # empty Host: the reference looks at the target
])
def test_targets_that_name_a_host_go_to_the_reference(head: bytes) -> None:
    assert not _same(head)


@pytest.mark.parametrize("head", [
    b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n",
    b"GET http://x.example/ HTTP/1.1\r\nhost:  b.example \r\nUser-Agent: u\r\n\r\n",
])
def test_heads_with_host_still_read(head: bytes) -> None:
    assert _same(head)


_SEEDS = [b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", b"GET http://a.b/c HTTP/1.1\r\n\r\n",
          b"CONNECT a:1 HTTP/1.1\r\nUser-Agent: u\r\n\r\n", b"PUT x://y HTTP/1.0\r\n\r\n",
          b"GET /index.sucatalog HTTP/1.1\r\nUser-Agent: Darwin\r\nHost: h\r\n\r\n"]
_ALPHABET = b" :/\r\n\tHhOoSsTtGETCONNECTxyz-.?#*"


@st.composite
def _mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.integers(0, 2))
        piece = bytes(draw(st.lists(st.sampled_from(_ALPHABET), min_size=1, max_size=6)))
        if op == 0:
            data[at:at] = piece
        elif op == 1:
            del data[at:at + draw(st.integers(1, 8))]
        else:
            data[at:at + len(piece)] = piece
    return bytes(data)


@SETTINGS
@given(_mutated())
def test_scan_equals_parse_request_on_mutated_heads(data: bytes) -> None:
    _same(data)


def _lines_read(payload: bytes) -> bool:
    """http_fast._request alone (the head's lines, not yet whether the head is complete)."""
    buf = np.frombuffer(b"\xAA" * 3 + payload + b"\xAA" * 7, np.uint8)
    return http_fast._request(buf, 3, len(payload), 0, np.full((8, 1), -1, np.int64)) >= 0


_BLANK_SEEDS = [b"GET / HTTP/1.1\r\nHost: a\n\nbody\r\n\r\n", b"GET / HTTP/1.1\r\nHost: a\n\nbody",
                b"GET / HTTP/1.1\r\nHost: a\r\n \r\nX\r\n\r\n", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
                b"GET / HTTP/1.1\r\n\r\n", b"GET / HTTP/1.1\r\nHost: a\r\nX: \r\r\n\r", b"GET / HTTP/1.1\r\n\r\r\n\r\n"]


@pytest.mark.parametrize("payload", _BLANK_SEEDS)
def test_a_head_is_read_only_with_its_blank_line_in_the_payload(payload: bytes) -> None:
    # The scan looks for CR LF CR LF while it reads the lines, then in the rest of the payload
    # only: the collector's test (b"\r\n\r\n" in data) anywhere in the payload, as before.
    complete = b"\r\n\r\n" in payload
    assert (_scan(payload)[2].kind[0] == http_fast.REQUEST) == (_lines_read(payload) and complete)


@SETTINGS
@given(st.one_of(_mutated(), st.sampled_from(_BLANK_SEEDS).map(lambda s: s).flatmap(
    lambda s: st.integers(0, len(s)).map(lambda at: s[:at] + b"\r\n\r\n"[:at % 5] + s[at:]))))
def test_a_head_is_read_only_with_its_blank_line_in_mutated_payloads(payload: bytes) -> None:
    complete = b"\r\n\r\n" in payload
    assert (_scan(payload)[2].kind[0] == http_fast.REQUEST) == (_lines_read(payload) and complete)
