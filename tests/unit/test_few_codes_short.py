"""few_codes (metadata/few_codes.py) numbers a column's few values as Arrow's dictionary_encode
does, or gives up: values of at most 7 bytes (its short pass), longer ones (byte by byte), and
columns mixing both (the short pass gives way at the first long value)."""
from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apnstrace.metadata.few_codes import COMPILED, MAX_DISTINCT, few_codes

pytestmark = pytest.mark.skipif(not COMPILED, reason="the compiled pass runs only with numba")


def _check(values: list, large: bool) -> None:
    array = pa.array(values, pa.large_string() if large else pa.string())
    got = few_codes(array)
    encoded = array.dictionary_encode()
    fits = len(encoded.dictionary) <= MAX_DISTINCT
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
    codes, distinct = few_codes(array)
    want = array.dictionary_encode()
    assert codes.tolist() == want.indices.fill_null(-1).to_numpy(zero_copy_only=False).tolist()
    assert distinct.to_pylist() == want.dictionary.to_pylist()
    assert few_codes(pa.array([str(i) for i in range(MAX_DISTINCT + 1)])) is None
    assert few_codes(pa.array([str(i) for i in range(MAX_DISTINCT)])) is not None


def test_a_long_value_after_short_ones_hands_over_to_the_byte_pass() -> None:
    array = pa.array(["tcp", "udp", None, "tcp", "a longer value", "udp"])
    codes, distinct = few_codes(array)
    assert codes.tolist() == [0, 1, -1, 0, 2, 1]
    assert distinct.to_pylist() == ["tcp", "udp", "a longer value"]
