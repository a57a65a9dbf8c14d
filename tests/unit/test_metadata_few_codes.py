"""few_codes: what Arrow's dictionary_encode gives for a column of a few distinct values."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from apnstrace.metadata.few_codes import COMPILED, MAX_DISTINCT, few_codes

pytestmark = pytest.mark.skipif(not COMPILED, reason="compiled kernels only (numba)")

CASES = [
    pa.array(["tcp", "udp", None, "tcp", "", "udp", ""], pa.large_string()),
    pa.array(["a", "b"], pa.string()),
    pa.array([None, None], pa.large_string()),
    pa.array(["ab", "a", "b", "ba", "abc"] * 3, pa.string()).slice(1, 9),
    pa.array([str(i % MAX_DISTINCT) for i in range(100)] + [None], pa.large_string()).slice(3),
    pa.array(["é", "e", "é"], pa.large_string()),
]


@pytest.mark.parametrize("text", CASES)
def test_codes_as_dictionary_encode(text: pa.Array) -> None:
    codes, distinct = few_codes(text)
    encoded = text.dictionary_encode()
    assert codes.tolist() == encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).tolist()
    assert distinct.equals(encoded.dictionary)


def test_more_values_than_it_keeps() -> None:
    assert few_codes(pa.array([str(i) for i in range(MAX_DISTINCT + 1)], pa.large_string())) is None
    assert few_codes(pa.array(["a"] * 1000 + [str(i) for i in range(MAX_DISTINCT)], pa.large_string())) is None


def test_empty() -> None:
    assert few_codes(pa.array([], pa.large_string())) is None
    assert few_codes(pa.array([1, 2])) is None
