"""text_columns.TextTable.take (a compiled gather) against pyarrow's take, and fast_streams'
zero-copy numeric and null columns against pa.array / pa.nulls."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from apnstrace.metadata.fast_streams import _column, _nulls
from apnstrace.metadata.text_columns import TextTable

_TEXTS = st.lists(st.none() | st.text(max_size=12), min_size=1, max_size=20)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(_TEXTS, st.data())
def test_take_equals_arrow_take(texts, data) -> None:
    table = pa.array(texts, pa.large_string())
    at = np.array(data.draw(st.lists(st.integers(0, len(texts) - 1), max_size=40)), np.int64)
    got = TextTable(table).take(at)
    got.validate(full=True)
    assert got.type == pa.large_string()
    assert got.to_pylist() == table.take(pa.array(at, pa.int64())).to_pylist()


def test_take_from_a_sliced_or_joined_table() -> None:
    table = pa.concat_arrays([pa.array([None, "h2"], pa.large_string()), pa.array(["x", "http/1.1"], pa.large_string())])
    at = np.array([3, 0, 1, 2, 3], np.int32)
    assert TextTable(table).take(at).to_pylist() == ["http/1.1", None, "h2", "x", "http/1.1"]
    part = table.slice(1, 3)
    assert TextTable(part).take(np.array([2, 0, 1])).to_pylist() == ["http/1.1", "h2", "x"]


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.floats(allow_nan=False), st.booleans()), max_size=30))
def test_numeric_columns_equal_pa_array(rows) -> None:
    values = np.array([v for v, _ in rows], np.float64)
    valid = np.array([ok for _, ok in rows], bool)
    got = _column(values, np.float64, pa.float64(), valid)
    got.validate(full=True)
    assert got.equals(pa.array(values, pa.float64(), mask=~valid))
    codes = np.arange(len(rows), dtype=np.int64) % 2
    assert _column(codes, np.int8, pa.int8()).equals(pa.array(codes, pa.int8()))


def test_null_columns() -> None:
    for n in (0, 3, 5000, 2):
        got = _nulls(n)
        got.validate(full=True)
        assert got.equals(pa.nulls(n, pa.large_string()))
