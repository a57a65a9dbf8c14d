"""tls_flight.scan_pieces reads a server flight from the segments where they lie in the chunk
(take_flights no longer copies them into one stream first). However the stream is cut into
pieces, and wherever the pieces sit in the buffer, the scan must answer exactly what it answers
for the same bytes in one piece (which test_metadata_fast_path checks against parse_server_flight).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import mutated
from apnstrace.decode import tls_flight
from apnstrace.metadata.dns_feed import COMPILED
from test_parse_tls import ALERT, CODM_SH, CURL_TO_LEAF, SELFSIGNED_FLIGHT, TLS13_SH

SEEDS = [SELFSIGNED_FLIGHT, CURL_TO_LEAF, TLS13_SH, ALERT, CODM_SH]
pytestmark = pytest.mark.skipif(not COMPILED, reason="the scan runs only compiled")


def _answers(scan: tls_flight.FlightScan, i: int) -> tuple:
    """Flight i's answers, offsets into hs turned into the bytes they point at."""
    def span(a: int, b: int):
        return scan.hs[a:b].tobytes() if a >= 0 else int(a)
    return (int(scan.kind[i]), bool(scan.hello_seen[i]), bool(scan.hello_done[i]), int(scan.version[i]),
            int(scan.alert[i]), span(scan.alpn_start[i], scan.alpn_end[i]),
            span(scan.leaf_start[i], scan.leaf_end[i]))


def _in_pieces(streams: list[bytes], cuts: list[list[int]]) -> tls_flight.FlightScan:
    """The streams cut at `cuts`, their pieces laid out last first with filler between them."""
    pieces = [[s[a:b] for a, b in zip([0] + c, c + [len(s)])] for s, c in zip(streams, cuts)]
    order = [(i, j) for i, p in enumerate(pieces) for j in range(len(p))][::-1]
    blob, where = bytearray(), {}
    for i, j in order:
        blob += b"\x16\x03" * 3                     # filler that reads like a record start
        where[i, j] = len(blob)
        blob += pieces[i][j]
    off = [where[i, j] for i, p in enumerate(pieces) for j in range(len(p))]
    length = [len(x) for p in pieces for x in p]
    first = np.concatenate([[0], np.cumsum([len(p) for p in pieces])]).astype(np.int64)
    total = np.array([len(s) for s in streams], np.int64)
    hs_start = np.concatenate([[0], np.cumsum(total)[:-1]]).astype(np.int64)
    hs = np.full(int(total.sum()), 0xEE, np.uint8)
    return tls_flight.scan_pieces(np.frombuffer(bytes(blob) or b"\0", np.uint8), np.array(off, np.int64),
                                  np.array(length, np.int64), first, hs_start, hs)


def _whole(streams: list[bytes]) -> tls_flight.FlightScan:
    buf = np.frombuffer(b"".join(streams) or b"\0", np.uint8)
    length = np.array([len(s) for s in streams], np.int64)
    return tls_flight.scan_flights(buf, np.concatenate([[0], np.cumsum(length)[:-1]]).astype(np.int64), length)


@pytest.mark.parametrize("seed", range(len(SEEDS)))
def test_every_two_piece_cut_reads_as_the_whole_stream(seed: int) -> None:
    s = SEEDS[seed]
    want = _answers(_whole([s]), 0)
    assert want[0] == tls_flight.READ                  # the seeds read plainly: the check has teeth
    streams = [s] * (len(s) + 1)
    got = _in_pieces(streams, [[c] for c in range(len(s) + 1)])
    for c in range(len(s) + 1):
        assert _answers(got, c) == want, c


def test_byte_by_byte_pieces_and_empty_pieces_read_as_the_whole_stream() -> None:
    whole = _whole(SEEDS)
    bytewise = _in_pieces(SEEDS, [list(range(1, len(s))) for s in SEEDS])
    padded = _in_pieces(SEEDS, [sorted([0, 0, 5, 5, len(s) // 2, len(s)]) for s in SEEDS])
    for i in range(len(SEEDS)):
        assert _answers(bytewise, i) == _answers(whole, i) == _answers(padded, i)


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(mutated(SEEDS), min_size=1, max_size=3), st.data())
def test_mutated_streams_in_random_pieces_read_as_in_one(streams: list[bytes], data) -> None:
    cuts = [sorted(data.draw(st.lists(st.integers(0, len(s)), max_size=8))) for s in streams]
    whole, got = _whole(streams), _in_pieces(streams, cuts)
    for i in range(len(streams)):
        assert _answers(got, i) == _answers(whole, i)
