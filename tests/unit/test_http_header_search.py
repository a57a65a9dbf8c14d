"""http.parse_request finds Host and User-Agent by a search over the header lines: the same
answers as the walk line by line it replaced (kept here as the reference), on varied heads."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from apnstrace.decode import http
from apnstrace.decode.malformed import Malformed
from apnstrace.decode.tls import text


def _walk(payload: bytes) -> tuple[str | None, str | None] | None:
    """(host header, user agent) as the line walk read them; None if the request line is cut."""
    space = payload.find(b" ", 0, 8)
    head_end = min(len(payload), http.MAX_HEAD)
    line_end = payload.find(b"\n", space, head_end)
    if line_end < 0:
        return None
    host = agent = None
    pos = line_end + 1
    while pos < head_end:
        stop = payload.find(b"\n", pos, head_end)
        if stop < 0:
            break
        colon = payload.find(b":", pos, stop)
        if colon < 0:
            if not payload[pos:stop].strip():
                break
            pos = stop + 1
            continue
        name = payload[pos:colon].strip().lower()
        if name == b"host" and host is None:
            host = text(payload[colon + 1:stop].strip())
        elif name == b"user-agent" and agent is None:
            agent = text(payload[colon + 1:stop].strip())
        pos = stop + 1
    return host, agent


_NAMES = st.sampled_from([b"Host", b"host", b"HOST", b" Host", b"Host ", b"\tuser-agent", b"User-Agent",
                          b"USER-AGENT\x0b", b"X-Host", b"Hostx", b"User-Agent2", b"Accept", b"", b"a:b"])
_SPACES = st.sampled_from([b"", b" ", b"\t", b"\r", b"  \x0c", b"\x1c"])
_VALUES = st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"")) | st.sampled_from([b"example.com", b"", b" x "])
_ENDS = st.sampled_from([b"\r\n", b"\n", b"\r\r\n"])
_LINES = st.one_of(
    st.tuples(_SPACES, _NAMES, _SPACES, _VALUES, _ENDS).map(lambda t: t[0] + t[1] + t[2] + b":" + t[3] + t[4]),
    st.tuples(_SPACES, _ENDS).map(lambda t: t[0] + t[1]),              # blank (only whitespace)
    st.tuples(_VALUES, _ENDS).map(lambda t: t[0].replace(b":", b"") + t[1]),   # no colon
)


@settings(max_examples=1500, deadline=None, derandomize=True)
@given(st.lists(_LINES, max_size=10), st.binary(max_size=8), st.integers(0, 400))
def test_headers_as_the_line_walk(lines, tail, cut):
    payload = b"GET /a HTTP/1.1\r\n" + b"".join(lines) + tail
    for data in (payload, payload[:len(payload) - cut] if cut < len(payload) else payload):
        try:
            got = http.parse_request(data)
        except Malformed:
            continue
        expected = _walk(data)
        if expected is not None:        # (an origin-form target names no authority)
            assert (got.host, got.user_agent) == (expected[0] or None, expected[1])


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(_LINES, max_size=8))
def test_head_cut_at_max_head(lines):
    """The head limit: lines past MAX_HEAD are not read, as in the walk."""
    head = b"POST / HTTP/1.1\r\n" + b"".join(lines)
    payload = head + b"x" * (http.MAX_HEAD - len(head) - 3) + b"\nHost: late\n\n"
    got = http.parse_request(payload)
    expected = _walk(payload)
    assert (got.host, got.user_agent) == (expected[0] or None, expected[1])
