"""HeldSegments: early payloads kept across chunks, bounded, handed back in arrival order."""
from __future__ import annotations

import numpy as np

from apnstrace.metadata.held import HeldSegments


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
