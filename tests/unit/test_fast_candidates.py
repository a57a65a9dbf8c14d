"""metadata/fast_streams.candidates (one compiled pass) against candidates_numpy, the numpy
expressions it replaced: which rows of a feed the fast path may read, and their roles."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from apnstrace.metadata import fast_streams
from apnstrace.metadata.dns_feed import COMPILED
from apnstrace.metadata.key_set import KeySet

pytestmark = pytest.mark.skipif(not COMPILED, reason="compiled only with numba")


def _key_set(keys: np.ndarray) -> KeySet:
    out = KeySet()
    out.update(keys)
    return out


def _feed(seed: int, n_chunk: int, n_keys: int, base: int):
    """A chunk's columns and a feed over them: rows in any order, keys of a few flows (both
    directions often present), every kind of start and peek bits."""
    rng = np.random.default_rng(seed)
    key = base + rng.integers(0, n_keys, n_chunk).astype(np.int64)
    is_start = rng.random(n_chunk) < 0.6
    start_kind = rng.integers(0, 4, n_chunk).astype(np.int64)
    peek = rng.integers(0, 16, n_chunk).astype(np.uint8)
    rows = rng.permutation(n_chunk)[:rng.integers(1, n_chunk + 1)].astype(np.int64)
    pending = base + rng.integers(0, n_keys, rng.integers(0, 4)).astype(np.int64)
    done_tls = _key_set(base + rng.integers(0, n_keys, rng.integers(0, 4)).astype(np.int64))
    done_http = _key_set(base + rng.integers(0, n_keys, rng.integers(0, 4)).astype(np.int64))
    return rows, key, is_start, start_kind, peek, pending, done_tls, done_http


def assert_same(*feed) -> None:
    role, cand = fast_streams.candidates(*feed)
    want_role, want_cand = fast_streams.candidates_numpy(*feed)
    assert role.tolist() == want_role.tolist()
    assert cand.tolist() == want_cand.tolist()


@given(st.integers(0, 2**32 - 1), st.integers(1, 60), st.integers(1, 24), st.sampled_from([0, 1, 7, 1 << 20]))
@settings(max_examples=400, deadline=None, derandomize=True)
def test_candidates_equal_numpy(seed: int, n_chunk: int, n_keys: int, base: int) -> None:
    assert_same(*_feed(seed, n_chunk, n_keys, base))


def test_candidates_on_keys_too_far_apart_for_the_table() -> None:
    rows, key, *rest = _feed(3, 40, 10, 0)
    key[::2] += 1 << 25            # past _MAX_GROUP_TABLE: the numpy expressions answer
    assert_same(rows, key, *rest)


def test_every_role_and_rule() -> None:
    """One flow direction per case, its other direction next to it (key ^ 1)."""
    H, F, Q, R = (fast_streams.HELLO5 | fast_streams.HANDSHAKE0, fast_streams.NOT_HELLO5 | fast_streams.HANDSHAKE0,
                  0, fast_streams.RESPONSE5)
    #            key  start kind peek
    cases = [(2, True, 1, H), (3, True, 1, F),          # hello, flight: other roles, both read
             (4, True, 1, H), (5, True, 1, F), (5, False, 0, 0),   # a flight direction with a continuation
             (6, True, 2, Q), (7, True, 2, Q),          # two requests: same role, neither
             (8, True, 2, R), (8, False, 0, 0),         # a response and another row: not alone
             (10, True, 1, H), (12, True, 2, Q), (14, True, 1, F),   # done (10 ^ 1, 12), pending (14 ^ 1)
             (16, True, 2, R),                          # a response alone: read
             (18, True, 3, 0), (19, False, 1, H)]       # PROXY start; not a start
    key = np.array([c[0] for c in cases], np.int64)
    is_start = np.array([c[1] for c in cases])
    start_kind = np.array([c[2] for c in cases], np.int64)
    peek = np.array([c[3] for c in cases], np.uint8)
    rows = np.arange(len(cases), dtype=np.int64)
    feed = (rows, key, is_start, start_kind, peek, np.array([15], np.int64), _key_set(np.array([11], np.int64)),
            _key_set(np.array([12], np.int64)))
    assert_same(*feed)
    role, cand = fast_streams.candidates(*feed)
    assert role.tolist() == [1, 2, 1, 2, 0, 3, 3, 4, 0, 1, 3, 2, 4, 0, 0]
    assert key[rows[cand]].tolist() == [2, 3, 4, 16]


def test_candidates_grow_the_group_table() -> None:
    """Keys spanning more than the table holds (but less than _MAX_GROUP_TABLE): the pass asks
    for a larger table and runs again, pending keys included."""
    rows, key, is_start, start_kind, peek, _, done_tls, done_http = _feed(5, 50, 12, 0)
    key[1::2] += 3 << 20
    pending = np.array([key[0] ^ 1, key[1], (3 << 20) + 999], np.int64)
    assert_same(rows, key, is_start, start_kind, peek, pending, done_tls, done_http)
