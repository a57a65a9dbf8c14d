"""HeldSegments: early payloads kept across chunks, bounded, handed back in arrival order."""
from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from apnstrace.metadata.held import HeldSegments, gather_ranges, gather_ranges_into


def _add(held: HeldSegments, buf: bytes, keys, offs, lens) -> None:
    n = len(keys)
    held.add(np.frombuffer(buf, np.uint8), np.array(keys, np.int64), np.arange(n, dtype=np.float64),
             np.arange(100, 100 + n, dtype=np.int64), np.array(offs, np.int64), np.array(lens, np.int64))


def test_take_hands_back_a_directions_payloads_in_arrival_order_once() -> None:
    held = HeldSegments(1 << 20)
    _add(held, b"aaBBBcc", [4, 5, 4], [0, 2, 5], [2, 3, 2])
    _add(held, b"dd", [5], [0], [2])
    assert held.take(np.array([4, 9])) == [(4, 0.0, 100, b"aa"), (4, 2.0, 102, b"cc")]
    assert held.take(np.array([4])) == []
    held.drop(np.array([7]))
    assert held.take(np.array([5])) == [(5, 1.0, 101, b"BBB"), (5, 0.0, 100, b"dd")]
    assert len(held) == 0 and len(held.data) == 0


def test_the_oldest_payloads_go_first_past_the_limit() -> None:
    held = HeldSegments(5)
    _add(held, b"xxxyyyzz", [1, 2, 3], [0, 3, 6], [3, 3, 2])
    assert held.take(np.array([1, 2, 3])) == [(2, 1.0, 101, b"yyy"), (3, 2.0, 102, b"zz")]


def test_payloads_survive_adds_drops_and_the_limit_in_any_order() -> None:
    # The buffer is appended to and compacted in place (kept payloads move to the front, over
    # dropped ones): a list model says what each direction must still hold.
    rng = np.random.default_rng(7)
    held, model = HeldSegments(3000), []
    for step in range(300):
        n = int(rng.integers(1, 6))
        payloads = [bytes(rng.integers(0, 256, int(rng.integers(1, 400))).astype(np.uint8)) for _ in range(n)]
        keys = rng.integers(0, 12, n).tolist()
        buf = b"".join(payloads)
        offs = np.concatenate([[0], np.cumsum([len(p) for p in payloads])[:-1]]).tolist()
        _add(held, buf, keys, offs, [len(p) for p in payloads])
        model += [(k, p) for k, p in zip(keys, payloads)]
        while sum(len(p) for _, p in model) > 3000:
            model.pop(0)
        gone = rng.integers(0, 12, int(rng.integers(0, 3))).tolist()
        if step % 2:
            held.drop(np.array(gone, np.int64))
            model = [(k, p) for k, p in model if k not in gone]
        else:
            got = [(k, p) for k, _, _, p in held.take(np.array(gone, np.int64))]
            assert got == [(k, p) for k, p in model if k in gone]
            model = [(k, p) for k, p in model if k not in gone]
        assert held.key.tolist() == [k for k, _ in model]
        assert held.data.tobytes() == b"".join(p for _, p in model)



@settings(max_examples=200, deadline=None)
@given(st.integers(1, 3000), st.integers(0, 2**32 - 1),
       st.lists(st.tuples(st.integers(0, 2999), st.integers(0, 1500)), max_size=30))
def test_gather_ranges_puts_the_ranges_back_to_back(size: int, seed: int, ranges: list[tuple[int, int]]) -> None:
    """The compiled copy against bytes slicing: ranges of any length (empty, long enough to
    vectorize, ending at the buffer's last byte), in any order, overlapping."""
    src = np.random.default_rng(seed).integers(0, 256, size, np.uint8).tobytes()
    ranges = [(min(a, size), min(n, size - min(a, size))) for a, n in ranges]
    start = np.array([a for a, _ in ranges], np.int64)
    length = np.array([n for _, n in ranges], np.int64)
    got = gather_ranges(np.frombuffer(src, np.uint8), start, length)
    assert got.dtype == np.uint8
    assert got.tobytes() == b"".join(src[a:a + n] for a, n in ranges)
    room = np.full(len(got) + 10, 0xEE, np.uint8)           # into a view, nothing around it touched
    gather_ranges_into(np.frombuffer(src, np.uint8), start, length, room[5:5 + len(got)])
    assert room.tobytes() == b"\xee" * 5 + got.tobytes() + b"\xee" * 5


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.integers(0, 40), max_size=30), st.lists(st.integers(0, 50), max_size=60),
       st.lists(st.integers(0, 59), max_size=40), st.integers(0, 1 << 30))
def test_drop_keys_equals_drop(held_keys: list[int], keys: list[int], rows: list[int], shift: int) -> None:
    """drop_keys(keys) (compiled, a shared table) is drop(keys); the table is left clean."""
    key = np.array(keys, np.int64) + shift
    rows = np.array([r for r in rows if r < len(key)], np.int64)
    n = len(held_keys)
    buf = bytes(range(256)) * 2
    c, d = HeldSegments(1 << 20), HeldSegments(1 << 20)
    for h in (c, d):
        _add(h, buf, [k + shift for k in held_keys], list(range(n)), [1 + i % 3 for i in range(n)])
    c.drop_keys(key[rows])
    d.drop(key[rows])
    for f in ("key", "ts", "seq", "length", "data"):
        assert getattr(c, f).tolist() == getattr(d, f).tolist()
    c.drop_keys(key[::-1][rows])            # a second call on other keys: the table was clean
    d.drop(key[::-1][rows])
    assert c.key.tolist() == d.key.tolist() and c.data.tolist() == d.data.tolist()


@settings(max_examples=600, deadline=None, derandomize=True)
@given(st.lists(st.integers(0, 12), max_size=20), st.lists(st.integers(0, 12), max_size=40),
       st.lists(st.integers(0, 39), max_size=30), st.lists(st.integers(0, 14), max_size=10),
       st.integers(0, 1 << 30), st.one_of(st.just(1 << 20), st.integers(3, 30)))
@example([1] * 20, [2, 2, 2], [0, 1, 2], [2], 0, 25)     # add's trim takes old rows for ones then dropped
def test_add_rows_then_drop_is_add_then_drop_keys(held_keys, keys, rows, gone, shift, limit) -> None:
    """The rows dropped at once are never copied: the same keys, times, payloads and order as
    add(...) then drop_keys(...), under the limit and past it (where add's trim counts them)."""
    buf = bytes(range(256)) * 2
    key = np.array(keys, np.int64) + shift
    rows = np.array([r for r in rows if r < len(key)], np.int64)
    n = len(key)
    ts, seq = np.arange(n, dtype=np.float64) + 0.5, np.arange(1000, 1000 + n, dtype=np.int64)
    off, length = np.arange(n, dtype=np.int64) * 3, 1 + np.arange(n, dtype=np.int64) % 4
    gone = np.array(gone, np.int64) + shift
    c, d = HeldSegments(limit), HeldSegments(limit)
    for h in (c, d):
        _add(h, buf, [k + shift for k in held_keys], list(range(len(held_keys))), [1 + i % 3 for i in range(len(held_keys))])
    c.add_rows_then_drop(np.frombuffer(buf, np.uint8), key[rows], rows, ts, seq, off, length, gone)
    d.add(np.frombuffer(buf, np.uint8), key[rows], ts[rows], seq[rows], off[rows], length[rows])
    d.drop_keys(gone)
    for f in ("key", "ts", "seq", "length", "data"):
        assert getattr(c, f).tolist() == getattr(d, f).tolist()
    assert c._used == d._used
    c.drop_keys(key)                         # the shared table was left clean
    d.drop(key)
    assert c.key.tolist() == d.key.tolist() and c.data.tolist() == d.data.tolist()
