"""flight_streams._segments on chunks long enough for its compiled pass to ask for keys ahead
(16 feed rows, 32 later rows on): the same rows as the numpy steps (_segments_sorted). And
_reassembled over more than 16 segments (its packet columns asked for ahead) as over the same
flights given one at a time (at most a few segments each)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from apnstrace.metadata import flight_streams as fs
from apnstrace.metadata.dns_feed import COMPILED

pytestmark = pytest.mark.skipif(not COMPILED, reason="take_flights runs only compiled")


@st.composite
def _long_chunks(draw):
    n = draw(st.integers(40, 400))
    rnd = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    key = draw(st.sampled_from([0, 7, 1 << 40])) + rnd.integers(0, draw(st.integers(2, 60)), n)
    rows = rnd.permutation(n)[:draw(st.integers(17, n))].astype(np.int64)
    later = np.flatnonzero(rnd.random(n) < draw(st.floats(0.3, 1.0))).astype(np.int64)
    fed_keys = np.unique(key[rows])
    skeys = np.unique(rnd.choice(fed_keys, draw(st.integers(1, len(fed_keys)))))
    starts = np.array([rows[key[rows] == k][0] for k in skeys], np.int64)
    n1 = np.array([(key[rows] == k).sum() for k in skeys], np.int64)
    return key.astype(np.int64), rows, later, skeys.astype(np.int64), starts, n1


@settings(max_examples=200, deadline=None, derandomize=True)
@given(_long_chunks())
def test_long_chunks_segments_are_the_sorted_ones(chunk) -> None:
    got, want = fs._segments(*chunk), fs._segments_sorted(*chunk)
    for g, w in zip(got, want):
        assert g.tolist() == w.tolist()


def _pieces(b, i: int) -> list:
    return [(b.piece_off[j], b.piece_len[j]) for j in range(b.first_piece[i], b.first_piece[i + 1])]


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.integers(0, 2 ** 32 - 1), st.integers(5, 40))
def test_many_segments_reassemble_as_one_flight_at_a_time(seed: int, flights: int) -> None:
    rnd = np.random.default_rng(seed)
    n_seg = rnd.integers(1, 5, flights)
    m = int(n_seg.sum())
    cap = rnd.integers(0, 12, m)
    off = np.concatenate([[0], np.cumsum(cap)[:-1]]).astype(np.int64)
    buf = rnd.integers(0, 256, int(cap.sum()) + 8).astype(np.uint8)
    buf[off[cap >= 1]] = 0x16                       # some read as TLS records
    first_seg = np.concatenate([[0], np.cumsum(n_seg)[:-1]]).astype(np.int64)
    seq = np.empty(m, np.int64)
    for i in range(flights):                         # in order, with some shuffled and repeated
        a, k = first_seg[i], n_seg[i]
        seq[a:a + k] = 1000 + np.concatenate([[0], np.cumsum(cap[a:a + k])[:-1]])
        if k > 1 and rnd.random() < 0.5:
            seq[a + 1:a + k] = rnd.permutation(seq[a + 1:a + k])
    order = rnd.permutation(m)                       # the segments' rows anywhere in the columns
    place = np.empty(m, np.int64)
    place[order] = np.arange(m)
    pk = SimpleNamespace(payload_off=off[order], payload_cap=cap[order], seq=seq[order], ts=rnd.random(m)[order])
    seg_row = place
    starts = seg_row[first_seg]
    got = fs._reassembled(buf, pk, seg_row, first_seg, starts, 30, n_seg)
    for i in range(flights):
        a, k = first_seg[i], n_seg[i]
        one = fs._reassembled(buf, pk, seg_row[a:a + k], np.array([0]), starts[i:i + 1], 30, n_seg[i:i + 1])
        assert _pieces(got, i) == _pieces(one, 0)
        for f in ("length", "capped", "odd", "first_ts"):
            assert getattr(got, f)[i] == getattr(one, f)[0], f
