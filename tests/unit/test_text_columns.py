"""text_column's compiled layout on long ranges (long enough for the copy and the count of
escaped bytes to vectorize): mostly printable text, escaped bytes anywhere, null rows."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from apnstrace.decode import tls
from apnstrace.metadata import text_columns

_ODD = [0x00, 0x0A, 0x1F, 0x5C, 0x7F, 0x80, 0xC3, 0xFF]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.integers(0, 2**32 - 1), st.lists(st.tuples(st.integers(0, 300), st.lists(st.integers(0, 299), max_size=3),
                                                     st.booleans(), st.integers(0, 5)), min_size=1, max_size=12))
def test_text_column_equals_tls_text_on_long_ranges(seed: int, shapes) -> None:
    rng = np.random.default_rng(seed)
    ranges, valid, buf, start, end = [], [], bytearray(b"\x01"), [], []
    for size, odd_at, is_valid, gap in shapes:
        raw = bytearray(rng.integers(0x20, 0x7F, size, np.uint8).tobytes().replace(b"\\", b"a"))
        for at in odd_at:
            if at < size:
                raw[at] = _ODD[at % len(_ODD)]
        buf += b"\x80" * gap
        start.append(len(buf) if is_valid else -1)
        buf += raw
        end.append(len(buf))
        ranges.append(bytes(raw))
        valid.append(is_valid)
    arr = np.frombuffer(bytes(buf), np.uint8)
    got = text_columns.text_column(arr, np.array(start, np.int64), np.array(end, np.int64))
    assert got.type == pa.large_string()
    got.validate(full=True)
    assert got.to_pylist() == [tls.text(r) if v else None for r, v in zip(ranges, valid)]
