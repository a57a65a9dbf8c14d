"""finalize.narrowed: pieces hold some columns narrower; assemble widens them back exactly."""
import numpy as np
import pandas as pd
from hypothesis import given, settings, strategies as st

from test_assemble_made_columns import partials

from apnstrace.flows.finalize import NARROW, narrowed

I64 = st.integers(-2**63, 2**63 - 1)
EDGES = st.sampled_from([-2**31 - 1, -2**31, 0, 2**31 - 1, 2**31])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(I64, EDGES, st.integers(-5, 300)), max_size=40))
def test_int_columns_round_trip(values):
    a = np.array(values, np.int64)
    got = narrowed(a)
    fits = all(-2**31 <= v < 2**31 for v in values)
    assert got.dtype == (np.int32 if fits else np.int64)
    assert np.array_equal(got.astype(np.int64), a)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 255).map(float), st.just(float("nan"))), max_size=40))
def test_ttl_columns_round_trip(values):
    a = np.array(values, np.float64)
    got = narrowed(a).astype(NARROW["_s_ttl"])
    assert np.array_equal(got, a, equal_nan=True)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), *[st.integers(0, 3)] * 8, st.integers(0, 2), st.integers(0, 2)),
                min_size=1, max_size=30))
def test_state_codes_round_trip(rows):
    """Every conn_state label has a code, and codes give back the text."""
    from apnstrace.flows.finalize import CODED
    from apnstrace.flows.state import conn_state
    cols = [np.array(c) for c in zip(*rows)]
    state = conn_state(*cols)
    codes = np.searchsorted(CODED["state"], state)
    assert np.array_equal(np.array(CODED["state"])[np.minimum(codes, len(CODED["state"]) - 1)], state)


@settings(max_examples=50, deadline=None)
@given(st.lists(partials(), min_size=1, max_size=3))
def test_assemble_keeps_hidden_evidence_narrow(monkeypatch_parts):
    """KEPT_NARROW columns stay as the pieces held them; widened, they are the columns assemble
    made wide before."""
    import pytest
    from apnstrace.flows import finalize
    pieces = [finalize.flows_piece(p) for p in monkeypatch_parts]
    got = finalize.assemble([p.copy() for p in pieces])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(finalize, "KEPT_NARROW", ())
        wide = finalize.assemble([p.copy() for p in pieces])
    for name in finalize.KEPT_NARROW:
        assert got[name].dtype == pieces[0][name].dtype
        assert wide[name].dtype == NARROW[name]
        assert np.array_equal(got[name].to_numpy().astype(NARROW[name]), wide[name].to_numpy(), equal_nan=True)
    others = [name for name in wide.columns if name not in finalize.KEPT_NARROW]
    pd.testing.assert_frame_equal(got[others], wide[others])
