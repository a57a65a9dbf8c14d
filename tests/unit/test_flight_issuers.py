"""flight_streams._issuers names each distinct leaf certificate of a chunk once and gives every
flight its own leaf's name: leaves equal to an earlier one take its name, any other (however
close: same length, same last byte, one byte apart) is named from its own bytes."""
from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from apnstrace.decode import tls
from apnstrace.metadata import flight_streams
from apnstrace.metadata.dns_feed import COMPILED

pytestmark = pytest.mark.skipif(not COMPILED, reason="take_flights runs only compiled")

# A few leaves and their near twins (one byte changed inside: same length, same last byte).
BASES = [bytes(range(7, 7 + 40)), b"\x30\x82" + bytes(200), b"\x01", b"\xAA" * 9]
LEAVES = BASES + [b[:len(b) // 2] + bytes([b[len(b) // 2] ^ 0x5A]) + b[len(b) // 2 + 1:] for b in BASES if len(b) > 2]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, len(LEAVES) - 1), st.integers(0, 5)), min_size=1, max_size=30))
def test_each_leaf_gets_the_name_of_its_own_bytes(picks: list[tuple[int, int]]) -> None:
    blob, start, end = bytearray(), [], []
    for which, gap in picks:                       # the leaves laid out with filler between them
        blob += b"\x16" * gap
        start.append(len(blob))
        blob += LEAVES[which]
        end.append(len(blob))
    named = []

    def names(der: bytes) -> tuple:
        named.append(der)
        return None, der.hex(), None

    with mock.patch.object(tls, "_x509_names", names):
        got = flight_streams._issuers(np.frombuffer(bytes(blob), np.uint8), np.array(start, np.int64),
                                      np.array(end, np.int64))
    assert list(got) == [LEAVES[w].hex() for w, _ in picks]
    assert sorted(named) == sorted({LEAVES[w] for w, _ in picks})      # each distinct leaf named once
