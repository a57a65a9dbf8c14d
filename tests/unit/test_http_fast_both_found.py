"""Once Host and User-Agent are both read, http_fast stops reading header lines and only looks
for the head's end (b"\r\n\r\n") in the rest of the payload: the answer must stay parse_request's
fields, read exactly when the payload holds a CR LF CR LF (the collector's test)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apnstrace.decode import http, http_fast, tls
from apnstrace.metadata import dns_feed

pytestmark = pytest.mark.skipif(not dns_feed.COMPILED, reason="the fast paths run only compiled")

SETTINGS = settings(max_examples=2000, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Pieces of what may follow the two headers: line ends alone or in pairs, blank and whitespace
# lines, later Host / User-Agent lines (which must not count), lines without a colon, bytes.
_PIECES = [b"\r\n", b"\n", b"\r", b" \r\n", b"\t\n", b"Host: later\r\n", b"User-Agent: later\r\n", b"host:\r\n",
           b"X-A: b\r\n", b"no colon\r\n", b"\r\n\r\n", b"\r\r\n", b"\n\r\n", b"body", b"\x00\xff", b":", b" "]


@st.composite
def _payloads(draw):
    first, second = draw(st.permutations([b"Host: " + draw(st.sampled_from([b"a", b"b.example:8080", b" c "])),
                                          b"User-Agent: " + draw(st.sampled_from([b"x/1", b"", b" Mozilla/5.0 (y) "]))]))
    before = draw(st.lists(st.sampled_from([b"Accept: */*", b"X-Host: no", b"Use: no"]), max_size=2))
    head = b"\r\n".join([draw(st.sampled_from([b"GET / HTTP/1.1", b"POST /p?q HTTP/1.0"])), *before, first])
    middle = draw(st.lists(st.sampled_from([b"Accept: */*", b"X: y"]), max_size=1))
    head += b"".join(b"\r\n" + m for m in middle) + b"\r\n" + second + draw(st.sampled_from([b"\r\n", b"\n"]))
    tail = b"".join(draw(st.lists(st.sampled_from(_PIECES), max_size=12)))
    return head + tail


def _scan(payload: bytes):
    buf = np.frombuffer(b"\xAA" * 3 + payload + b"\xAA" * 7, np.uint8)
    return buf, http_fast.scan_http(buf, np.array([3], np.int64), np.array([len(payload)], np.int64))


def _check(payload: bytes) -> None:
    buf, scan = _scan(payload)
    complete = b"\r\n\r\n" in payload
    assert (scan.kind[0] == http_fast.REQUEST) == complete, payload
    if not complete:
        return

    def text(a, b):
        return tls.text(buf[a:b].tobytes()) if a >= 0 else None
    r = http.parse_request(payload)
    assert (buf[3:scan.method_end[0]].tobytes().decode(), text(scan.host_start[0], scan.host_end[0]),
            text(scan.target_start[0], scan.target_end[0]), text(scan.agent_start[0], scan.agent_end[0])) == \
        (r.method, r.host, r.path, r.user_agent), payload


@pytest.mark.parametrize("payload", [
    b"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: x\r\n",                       # no end yet
    b"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: x\r\nAccept: */*\r\nX: y\r\n\r\n",
    b"GET / HTTP/1.1\r\nUser-Agent: x\r\nHost: a\r\n\n\r\nbody\r\n\r\n",      # the end after a lone-\n blank line
    b"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: x\r\n\r\r\n\r",
    b"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: x\n\r\n",                      # ends 1 byte after the UA line
    b"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: x\r\nbody without end",
])
def test_heads_with_both_headers(payload: bytes) -> None:
    _check(payload)


@SETTINGS
@given(_payloads())
def test_heads_with_both_headers_and_varied_rests(payload: bytes) -> None:
    _check(payload)
