"""metadata/fast_streams.names_of: names kept per naming function between calls give what naming
each distinct code of the call gives (the reference below), nulls for -1."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings, strategies as st

from apnstrace.decode import tls
from apnstrace.metadata.fast_streams import alert_text, names_of


def _reference(codes: np.ndarray, name) -> list:
    return [name(int(c)) if c >= 0 else None for c in codes.tolist()]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from([-1, 0x0301, 0x0303, 0x0304, 0x7F12, 0xFFFF, 0]) | st.integers(-1, 0xFFFF),
                max_size=40))
def test_names_of_equals_naming_each_code(codes: list[int]) -> None:
    c = np.array(codes, np.int64)
    for name in (tls.version_name, alert_text):
        got = names_of(c, name)
        assert got.type == pa.large_string()
        assert got.to_pylist() == _reference(c, name)


def test_names_of_codes_outside_the_table() -> None:
    c = np.array([-1, 1 << 20, 0x0303], np.int64)
    assert names_of(c, tls.version_name).to_pylist() == _reference(c, tls.version_name)
    assert names_of(np.empty(0, np.int64), tls.version_name).to_pylist() == []
    assert alert_text(0x0230) == tls.alert_name(2, 0x30)
