"""leaf_names.scan_named names each distinct leaf certificate once (a chunk's, and those of the
chunks before it, kept) and gives every flight its own leaf's name: the flight scan looks each
leaf up among the kept ones where it lies (cut into segments, spread over handshake records);
leaves equal to one named before take its name (as a value, and as a code into the store's table), any other (however close: same length, same
last byte, one byte apart) is named from its own bytes; also when the store of named leaves
fills up and starts again."""
from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from apnstrace.decode import tls, tls_flight
from apnstrace.metadata import leaf_names
from apnstrace.metadata.dns_feed import COMPILED

pytestmark = pytest.mark.skipif(not COMPILED, reason="take_flights runs only compiled")

# A few leaves and their near twins (one byte changed inside, early or late: same length, same last byte).
BASES = [bytes(range(7, 7 + 40)), b"\x30\x82" + bytes(200), b"\x01", b"\xAA" * 9, bytes(range(256)) * 3]
LEAVES = BASES + [b[:at] + bytes([b[at] ^ 0x5A]) + b[at + 1:] for b in BASES if len(b) > 2
                  for at in (1, len(b) // 2, len(b) - 2)]
# one leaf, a cut of its flight into two segments, a handshake record size
PICKS = st.lists(st.tuples(st.integers(0, len(LEAVES) - 1), st.integers(0, 1000), st.integers(1, 300)), max_size=30)
HELLO = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x2f" + b"\x00"


def _flight(leaf: bytes, record_size: int) -> bytes:
    """ServerHello, Certificate (the leaf and one more), ServerHelloDone, in records of record_size."""
    def message(kind: int, body: bytes) -> bytes:
        return bytes([kind]) + len(body).to_bytes(3, "big") + body
    chain = b"".join(len(c).to_bytes(3, "big") + c for c in (leaf, b"\x30\x03abc"))
    hs = message(2, HELLO) + message(11, len(chain).to_bytes(3, "big") + chain) + message(14, b"")
    return b"".join(b"\x16\x03\x03" + len(part).to_bytes(2, "big") + part
                    for part in (hs[a:a + record_size] for a in range(0, len(hs), record_size)))


def _scan(picks: list[tuple[int, int, int]]) -> list:
    """The picked leaves' flights, each cut in two segments laid out last first with filler."""
    flights = [_flight(LEAVES[w], size) for w, _, size in picks]
    pieces = [(f[:cut % (len(f) + 1)], f[cut % (len(f) + 1):]) for f, (_, cut, _) in zip(flights, picks)]
    blob, off, length = bytearray(b"\x16"), {}, {}
    for i in reversed(range(len(pieces))):
        for j in (1, 0):
            blob += b"\x16\x03"
            off[i, j], length[i, j] = len(blob), len(pieces[i][j])
            blob += pieces[i][j]
    order = [(i, j) for i in range(len(pieces)) for j in (0, 1)]
    total = np.array([len(f) for f in flights], np.int64)
    hs = np.full(int(total.sum()), 0xEE, np.uint8)
    scan, issuer, code, names = leaf_names.scan_named(
        np.frombuffer(bytes(blob), np.uint8), np.array([off[o] for o in order], np.int64),
        np.array([length[o] for o in order], np.int64), np.arange(0, 2 * len(pieces) + 1, 2, dtype=np.int64),
        np.concatenate([[0], np.cumsum(total)[:-1]]).astype(np.int64), hs)
    assert (scan.kind == tls_flight.READ).all()             # the flights read plainly: the check has teeth
    assert names.take(code).to_pylist() == list(issuer)     # the codes name the same
    return list(issuer)


def _named_in_chunks(chunks: list[list]) -> tuple[list, list[bytes]]:
    """Each chunk's issuers from a fresh store, and the leaves X.509 parsing saw."""
    parsed = []

    def names(der: bytes) -> tuple:
        parsed.append(der)
        return None, der.hex(), None

    got = []
    with mock.patch.object(tls, "_x509_names", names), mock.patch.object(leaf_names, "_KEPT", leaf_names._Kept()):
        for picks in chunks:
            got.append(_scan(picks))
    return got, parsed


@settings(max_examples=200, deadline=None, derandomize=True)
@given(PICKS, PICKS)
def test_each_leaf_gets_the_name_of_its_own_bytes_each_named_once(first: list, second: list) -> None:
    got, parsed = _named_in_chunks([first, second])
    assert got == [[LEAVES[w].hex() for w, _, _ in picks] for picks in (first, second)]
    assert sorted(parsed) == sorted({LEAVES[w] for w, _, _ in first + second})


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.lists(PICKS, min_size=1, max_size=5))
def test_names_stay_right_when_the_store_starts_again(chunks: list) -> None:
    with mock.patch.object(leaf_names, "MAX_KEPT", 3), mock.patch.object(leaf_names, "MAX_KEPT_BYTES", 256):
        got, _ = _named_in_chunks(chunks)
    assert got == [[LEAVES[w].hex() for w, _, _ in picks] for picks in chunks]


def test_a_scan_without_known_leaves_puts_every_leaf_in_hs() -> None:
    flights = [_flight(LEAVES[0], 50), _flight(LEAVES[0], 7)]
    buf = np.frombuffer(b"".join(flights), np.uint8)
    scan = tls_flight.scan_flights(buf, np.array([0, len(flights[0])], np.int64),
                                   np.array([len(f) for f in flights], np.int64))
    assert [scan.hs[a:b].tobytes() for a, b in zip(scan.leaf_start, scan.leaf_end)] == [LEAVES[0]] * 2
