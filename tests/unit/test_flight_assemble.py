"""take_flights' reassembly (flight_streams._reassembled) flags a flight whose later segment
starts like another stream (an HTTP message, a PROXY header: collect.py's words), as the stream
path would start that stream instead: such flights stay on the stream path."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from apnstrace.metadata import collect, flight_streams as fs
from apnstrace.metadata.dns_feed import COMPILED

pytestmark = pytest.mark.skipif(not COMPILED, reason="take_flights runs only compiled")

WORDS = [w[:4] for w in collect.HTTP_STARTS + (collect.PROXY_V1, collect.PROXY_V2)]


def _odd(second: bytes) -> bool:
    """One flight: a TLS record's first segment, then `second` right after it in sequence."""
    first = b"\x16\x03\x03\x00\x40" + bytes(20)
    buf = np.frombuffer(first + second, np.uint8)
    pk = SimpleNamespace(payload_off=np.array([0, len(first)]), payload_cap=np.array([len(first), len(second)]),
                         seq=np.array([1000, 1000 + len(first)]), ts=np.array([1.0, 1.1]))
    got = fs._reassembled(buf, pk, np.array([0, 1]), np.array([0]), np.array([0]), 1 << 20, np.array([2]))
    return bool(got.odd[0])


@pytest.mark.parametrize("word", WORDS)
def test_a_later_segment_starting_another_stream_is_odd(word: bytes) -> None:
    assert _odd(word + b" rest of it")


def test_a_plain_continuation_is_not_odd() -> None:
    assert not _odd(bytes(range(40)))
    assert all(not _odd(w[:3] + b"!" + b" rest") for w in WORDS)
