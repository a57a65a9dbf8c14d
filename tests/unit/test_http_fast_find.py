"""http_fast._find (eight bytes at a time, then byte by byte) against bytes.find, on buffers
where the byte is rare, frequent, absent, at word edges and near the ends of the range."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from apnstrace.decode import http_fast


def _reference(raw: bytes, byte: int, start: int, stop: int) -> int:
    return raw.find(bytes([byte]), start, max(start, stop))


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.binary(max_size=80), st.lists(st.integers(0, 79), max_size=4), st.sampled_from([0x0A, 0x3A, 0x20, 0x00, 0xFF]),
       st.integers(0, 85), st.integers(0, 85))
def test_find_equals_bytes_find(raw: bytes, marks, byte: int, start: int, stop: int) -> None:
    data = bytearray(raw)
    for at in marks:
        if at < len(data):
            data[at] = byte
    buf = np.frombuffer(bytes(data) + b"\0" * 8, np.uint8)     # stop may pass the data: never the buffer
    stop = min(stop, len(data))
    start = min(start, len(data))
    assert http_fast._find(buf.ctypes.data, byte, start, stop) == _reference(bytes(data), byte, start, stop)


def test_find_each_position_of_a_long_range() -> None:
    for n in range(1, 40):
        for at in range(n):
            raw = bytearray(b"a" * n)
            raw[at] = 0x0A
            buf = np.frombuffer(bytes(raw), np.uint8)
            for start in range(0, at + 1, 3):
                assert http_fast._find(buf.ctypes.data, 0x0A, start, n) == at
                assert http_fast._find(buf.ctypes.data, 0x0A, start, at) == -1
