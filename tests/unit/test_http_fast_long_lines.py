"""http_fast on heads with long lines (targets, header values, User-Agents of hundreds of
bytes), several payloads per call at any offset: read, and read as http.parse_request does."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apnstrace.decode import http, http_fast, tls
from apnstrace.metadata import dns_feed

pytestmark = pytest.mark.skipif(not dns_feed.COMPILED, reason="the fast paths run only compiled")

_PRINTABLE = bytes(b for b in range(0x21, 0x7F) if b != ord(":"))


def _word(rng: np.random.Generator, size: int) -> bytes:
    return bytes(rng.choice(np.frombuffer(_PRINTABLE, np.uint8), size).tolist())


def _head(rng: np.random.Generator, target: int, agent: int, others: list[int], host_at: int) -> bytes:
    lines = [b"X-" + _word(rng, 8) + b": " + _word(rng, n) for n in others]
    lines.insert(min(host_at, len(lines)), b"Host: " + _word(rng, 1 + target % 90))
    if agent:
        lines.insert(len(lines) // 2, b"User-Agent: " + _word(rng, agent))
    return b"\r\n".join([b"GET /" + _word(rng, target) + b" HTTP/1.1"] + lines) + b"\r\n\r\nbody"


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.integers(0, 2**32 - 1), st.lists(st.tuples(st.integers(0, 500), st.integers(0, 300),
                                                     st.lists(st.integers(0, 300), max_size=6),
                                                     st.integers(0, 6), st.integers(0, 9)), min_size=1, max_size=8))
def test_long_heads_read_as_parse_request(seed: int, shapes) -> None:
    rng = np.random.default_rng(seed)
    payloads, gaps = [], []
    for target, agent, others, host_at, gap in shapes:
        payloads.append(_head(rng, target, agent, others, host_at))
        gaps.append(gap)
    buf, off = bytearray(), []
    for payload, gap in zip(payloads, gaps):
        buf += b"\xAA" * gap
        off.append(len(buf))
        buf += payload
    arr = np.frombuffer(bytes(buf) + b"\xAA" * 8, np.uint8)
    scan = http_fast.scan_http(arr, np.array(off, np.int64), np.array([len(p) for p in payloads], np.int64))

    def text(a, b):
        return tls.text(arr[a:b].tobytes()) if a >= 0 else None
    for i, payload in enumerate(payloads):
        assert scan.kind[i] == http_fast.REQUEST
        ref = http.parse_request(payload)
        got = (arr[off[i]:scan.method_end[i]].tobytes().decode(), text(scan.host_start[i], scan.host_end[i]),
               text(scan.target_start[i], scan.target_end[i]), text(scan.agent_start[i], scan.agent_end[i]))
        assert got == (ref.method, ref.host, ref.path, ref.user_agent)
