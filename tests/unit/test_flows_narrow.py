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
        held = pieces[0][name].dtype            # held_sparse may keep it as a SparseArray while reading
        assert got[name].dtype == getattr(held, "subtype", held)
        assert wide[name].dtype == NARROW[name]
        assert np.array_equal(got[name].to_numpy().astype(NARROW[name]), wide[name].to_numpy(), equal_nan=True)
    others = [name for name in wide.columns if name not in finalize.KEPT_NARROW]
    pd.testing.assert_frame_equal(got[others], wide[others])


TIMES = st.one_of(st.just(float("nan")), st.floats(1.6e9, 1.8e9), st.floats(-1e3, 1e3, allow_nan=False))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(TIMES, max_size=30), min_size=1, max_size=4), st.sampled_from([np.float64, np.float32]))
def test_sparse_columns_come_back_bit_identical(pieces, dtype):
    """held_sparse pieces (sparse or not, mixed), joined as assemble joins them, then dense():
    the same bytes as the dense columns joined, NaNs included."""
    import pandas as pd
    from apnstrace.flows.finalize import dense, held_sparse
    arrays = [np.array(p, dtype) for p in pieces]
    held = [pd.Series(held_sparse(a)) for a in arrays]
    joined = dense(held[0] if len(held) == 1 else pd.concat(held, ignore_index=True))
    assert not isinstance(joined.dtype, pd.SparseDtype)
    got = joined.to_numpy()
    want = np.concatenate(arrays)
    assert got.dtype == want.dtype and got.tobytes() == want.tobytes()


def test_sparse_only_when_smaller():
    from apnstrace.flows.finalize import held_sparse
    mostly_nan = np.full(100, np.nan)
    mostly_nan[:5] = 1.7e9
    assert held_sparse(mostly_nan).nbytes < mostly_nan.nbytes
    mostly_set = np.arange(100, dtype=np.float64)
    assert held_sparse(mostly_set) is mostly_set


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.one_of(st.just(0), st.integers(0, 2**64 - 1)), max_size=30), min_size=1, max_size=4))
def test_sparse_address_halves_come_back_bit_identical(pieces):
    """uint64 address halves (0-mostly: IPv4's high half), the full range kept exactly."""
    import pandas as pd
    from apnstrace.flows.finalize import dense, held_sparse
    arrays = [np.array(p, np.uint64) for p in pieces]
    held = [pd.Series(held_sparse(a)) for a in arrays]
    joined = dense(held[0] if len(held) == 1 else pd.concat(held, ignore_index=True))
    want = np.concatenate(arrays)
    assert joined.dtype == np.uint64 and joined.to_numpy().tobytes() == want.tobytes()
