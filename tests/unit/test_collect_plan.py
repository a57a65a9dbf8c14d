"""collect.py's per-chunk glue kernels (_keys, _plan, _read_on) against the numpy steps they
replaced (_plan_numpy, _read_on_numpy), on varied chunks; the tables they keep between calls
are left clean (a second call on other input agrees too)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from hypothesis import given, settings, strategies as st

from apnstrace.metadata import collect as C

_row = st.tuples(st.integers(0, 30), st.integers(0, 1), st.integers(0, 3), st.integers(0, 2))


def _chunk(rows: list[tuple[int, int, int, int]], shift: int):
    """rows: (uid - shift, direction, start kind, place: 0 early, 1 later only, 2 neither)."""
    uid = np.array([r[0] for r in rows], np.int64) + shift
    direction = np.array([r[1] for r in rows], np.int8)
    kind = np.array([r[2] for r in rows], np.int64)
    place = np.array([r[3] for r in rows])
    early = np.flatnonzero(place == 0)
    kind[place != 0] = 0                       # pick: start kinds at early rows only
    got = SimpleNamespace(starting=early[kind[early] != 0], idle=early[kind[early] == 0],
                          later=np.flatnonzero(place <= 1), start_kind=kind)
    return uid, direction, got


def _check(rows, pending: list[int], opened: list[int], shift: int) -> None:
    uid, direction, got = _chunk(rows, shift)
    key, span = C._keys(uid, direction)
    assert key.tolist() == (uid * 2 + direction).tolist()
    assert span == (int(key.min()), int(key.max()))
    pend = np.array(pending, np.int64) + 2 * shift
    got_plan, want_plan = C._plan(key, span, got, pend), C._plan_numpy(key, got, pend)
    for a, b in zip(got_plan, want_plan):
        assert a.dtype == b.dtype and a.tolist() == b.tolist()
    if len(got.starting):                    # a call on other starts sees none of these
        again = SimpleNamespace(starting=got.starting[1:], idle=got.idle, later=got.later, start_kind=got.start_kind)
        for a, b in zip(C._plan(key, span, again, pend), C._plan_numpy(key, again, pend)):
            assert a.tolist() == b.tolist()
    start_rows, rows_fed = want_plan[0], want_plan[1]
    op = np.array(opened, np.int64) + 2 * shift
    assert C._read_on(key, span, got.later, op, start_rows, rows_fed).tolist() == \
        C._read_on_numpy(key, got.later, op, start_rows, rows_fed).tolist()


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(_row, min_size=1, max_size=60), st.lists(st.integers(0, 70), max_size=8),
       st.lists(st.integers(0, 70), max_size=8), st.integers(0, 1 << 20),
       st.lists(_row, min_size=1, max_size=20))
def test_plan_and_read_on_equal_the_numpy_steps(rows, pending, opened, shift, other) -> None:
    _check(rows, pending, opened, shift)
    _check(other, opened, pending, shift)      # tables left clean by the call before
    _check(rows[::-1], pending, opened, shift)


def test_plan_one_chunk_by_hand() -> None:
    # keys: rows 0-2 key 2 (uid 1 dir 0); row 3 key 3; row 4 key 4. Row 1 is the start (TLS),
    # row 0 overtook it; row 2 repeats the start kind (not a start); row 3 has no start (unstarted);
    # key 4 was pending from a chunk before: its later row 4 joins.
    uid = np.array([1, 1, 1, 1, 2], np.int64)
    direction = np.array([0, 0, 0, 1, 0], np.int8)
    kind = np.array([0, 1, 1, 0, 0], np.int64)
    got = SimpleNamespace(starting=np.array([1, 2]), idle=np.array([0, 3]), later=np.arange(5), start_kind=kind)
    key, span = C._keys(uid, direction)
    start_rows, rows, unstarted, is_start = C._plan(key, span, got, np.array([4], np.int64))
    assert start_rows.tolist() == [1] and rows.tolist() == [1, 0, 4] and unstarted.tolist() == [3]
    assert is_start.tolist() == [False, True, False, False, False]
    # key 2 opened here: its later rows after the start not fed yet (row 2)
    assert C._read_on(key, span, got.later, np.array([2], np.int64), start_rows, rows).tolist() == [2]


def test_wide_spans_take_the_numpy_steps() -> None:
    uid = np.array([0, 1 << 30], np.int64)
    key, span = C._keys(uid, np.zeros(2, np.int8))
    assert span is None and key.tolist() == [0, 1 << 31]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, 20), st.booleans()), max_size=50), st.integers(0, 1 << 40),
       st.lists(st.integers(0, 20), max_size=10))
def test_answers_or_unanswered_equals_the_numpy_steps(rows: list[tuple[int, bool]], shift: int,
                                                       other: list[int]) -> None:
    uid = np.array([u for u, _ in rows] + other, np.int64) + shift
    picked = np.arange(len(rows), dtype=np.int64)
    answer = np.array([a for _, a in rows], bool)
    want = C._answers_or_unanswered_numpy(uid, picked, answer).tolist()
    assert C._answers_or_unanswered(uid, picked, answer).tolist() == want
    assert C._answers_or_unanswered(uid, picked, answer).tolist() == want    # the table was left clean
    # each row's uid given in order (pick_keyed's), and rows not 0..n-1
    rows = picked * 2 + 1
    wide = np.repeat(uid, 2)
    given = (wide[rows], (int(wide[rows].min()), int(wide[rows].max())) if len(rows) else (0, 0))
    assert C._answers_or_unanswered(wide, rows, answer, *given).tolist() == \
        C._answers_or_unanswered_numpy(wide, rows, answer).tolist()
    flip = ~answer
    assert C._answers_or_unanswered(uid, picked, flip).tolist() == C._answers_or_unanswered_numpy(uid, picked, flip).tolist()
