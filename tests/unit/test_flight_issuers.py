"""leaf_names.issuers names each distinct leaf certificate once (a chunk's, and those of the
chunks before it, kept) and gives every flight its own leaf's name: leaves equal to one named
before take its name, any other (however close: same length, same last byte, one byte apart) is
named from its own bytes; also when the store of named leaves fills up and starts again."""
from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from apnstrace.decode import tls
from apnstrace.metadata import leaf_names
from apnstrace.metadata.dns_feed import COMPILED

pytestmark = pytest.mark.skipif(not COMPILED, reason="take_flights runs only compiled")

# A few leaves and their near twins (one byte changed inside: same length, same last byte).
BASES = [bytes(range(7, 7 + 40)), b"\x30\x82" + bytes(200), b"\x01", b"\xAA" * 9]
LEAVES = BASES + [b[:len(b) // 2] + bytes([b[len(b) // 2] ^ 0x5A]) + b[len(b) // 2 + 1:] for b in BASES if len(b) > 2]
PICKS = st.lists(st.tuples(st.integers(0, len(LEAVES) - 1), st.integers(0, 5)), max_size=30)


def _chunk(picks: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The picked leaves laid out with filler between them: (hs, start, end)."""
    blob, start, end = bytearray(b"\x16"), [], []
    for which, gap in picks:
        blob += b"\x16" * gap
        start.append(len(blob))
        blob += LEAVES[which]
        end.append(len(blob))
    return np.frombuffer(bytes(blob), np.uint8), np.array(start, np.int64), np.array(end, np.int64)


def _named_in_chunks(chunks: list[list[tuple[int, int]]]) -> tuple[list, list[bytes]]:
    """Each chunk's issuers from a fresh store, and the leaves X.509 parsing saw."""
    parsed = []

    def names(der: bytes) -> tuple:
        parsed.append(der)
        return None, der.hex(), None

    got = []
    with mock.patch.object(tls, "_x509_names", names), mock.patch.object(leaf_names, "_KEPT", leaf_names._Kept()):
        for picks in chunks:
            got.append(list(leaf_names.issuers(*_chunk(picks))))
    return got, parsed


@settings(max_examples=200, deadline=None, derandomize=True)
@given(PICKS, PICKS)
def test_each_leaf_gets_the_name_of_its_own_bytes_each_named_once(first: list, second: list) -> None:
    got, parsed = _named_in_chunks([first, second])
    assert got == [[LEAVES[w].hex() for w, _ in picks] for picks in (first, second)]
    assert sorted(parsed) == sorted({LEAVES[w] for w, _ in first + second})


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.lists(PICKS, min_size=1, max_size=5))
def test_names_stay_right_when_the_store_starts_again(chunks: list) -> None:
    with mock.patch.object(leaf_names, "MAX_KEPT", 3), mock.patch.object(leaf_names, "MAX_KEPT_BYTES", 256):
        got, _ = _named_in_chunks(chunks)
    assert got == [[LEAVES[w].hex() for w, _ in picks] for picks in chunks]
