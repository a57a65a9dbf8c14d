"""short_codes (classify/short_codes.py) numbers a column's few short values as Arrow's
dictionary_encode does, or gives up."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apnstrace.classify.short_codes import COMPILED, MAX_DISTINCT, short_codes

pytestmark = pytest.mark.skipif(not COMPILED, reason="the compiled pass runs only with numba")


def _check(values: list, large: bool) -> None:
    array = pa.array(values, pa.large_string() if large else pa.string())
    got = short_codes(array)
    encoded = array.dictionary_encode()
    fits = all(v is None or len(v.encode()) <= 7 for v in values) and len(encoded.dictionary) <= MAX_DISTINCT
    if not values or not fits:
        assert got is None
        return
    assert got is not None
    codes, distinct = got
    assert codes.tolist() == encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).tolist()
    assert distinct.to_pylist() == encoded.dictionary.to_pylist()


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["tcp", "udp", "", "t", "TCP", "tcp\0", "\0tcp", "ab", "ba",
                                                      "1234567", "12345678", "é", "\0"]),
                          st.text(max_size=4)), max_size=30), st.booleans())
def test_agrees_with_dictionary_encode(values: list, large: bool) -> None:
    _check(values, large)


def test_sliced_and_many() -> None:
    values = ["tcp", "udp"] * 500 + [None, "sctp"]
    array = pa.array(values, pa.large_string()).slice(3)
    codes, distinct = short_codes(array)
    want = array.dictionary_encode()
    assert codes.tolist() == want.indices.fill_null(-1).to_numpy(zero_copy_only=False).tolist()
    assert distinct.to_pylist() == want.dictionary.to_pylist()
    assert short_codes(pa.array([str(i) for i in range(MAX_DISTINCT + 1)])) is None
    assert short_codes(pa.array([str(i) for i in range(MAX_DISTINCT)])) is not None
