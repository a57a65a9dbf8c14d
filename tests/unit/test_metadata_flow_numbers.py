"""The compiled numeric flow columns (flow_numbers) against the numpy steps attach() took before.
(gather_text counting its bytes per record, `uses`: tests/unit/test_metadata_attach.py.)"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from apnstrace.metadata.flow_numbers import flow_numbers

times = st.one_of(st.none(), st.floats(-5, 5, allow_nan=False), st.just(float("nan")), st.just(float("inf")))


def _old(at, status, hello, server):
    """attach()'s numpy code before flow_numbers, verbatim in substance."""
    values, rows = status
    ok = np.append(values.is_valid().to_numpy(zero_copy_only=False), False)[rows][at]
    code = np.append(values.fill_null(0).to_numpy(), 0).astype(np.int32)[rows][at]

    def floats(values, rows):
        return np.append(values.to_numpy(zero_copy_only=False).astype(np.float64), np.nan)[rows][at]

    h, s = floats(*hello), floats(*server)
    with np.errstate(invalid="ignore"):
        ms = (s - h) * 1000.0
    fine = np.isfinite(ms) & (ms >= 0)
    return np.where(ok, code, 0).astype(np.int32), ~ok, np.where(fine, ms, 0.0), ~fine, s


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_flow_numbers_are_the_numpy_steps(data) -> None:
    records = data.draw(st.integers(0, 12))

    def field(kind, elements):
        values = data.draw(st.lists(elements, min_size=1, max_size=10))
        rows = data.draw(st.lists(st.integers(-1, len(values) - 1), min_size=records, max_size=records))
        return pa.array(values, kind), np.array(rows + [-1], np.int64)     # rows: a last slot -1

    status = field(pa.int32(), st.one_of(st.none(), st.integers(100, 599)))
    hello, server = field(pa.float64(), times), field(pa.float64(), times)
    at = np.array(data.draw(st.lists(st.integers(-1, records - 1) if records else st.just(-1), max_size=40)),
                  np.int64)
    got, want = flow_numbers(at, status, hello, server), _old(at, status, hello, server)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)     # NaN == NaN here; exact otherwise

