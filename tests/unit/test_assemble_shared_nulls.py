"""flows.finalize.assemble: the all-null text columns it makes share one Arrow array (memory:
~12 bytes a row each otherwise), and stay independent columns: writing one (as classify and
block_reasons do) leaves the others null; the frame equals one with a null array per column."""
import numpy as np
import pandas as pd
from hypothesis import given, settings, strategies as st
from test_assemble_made_columns import partials

from apnstrace import schema
from apnstrace.flows.finalize import assemble, flows_piece

MADE_TEXT = [c.name for c in schema.FLOWS if c.dtype == "string"
             and c.name not in ("transport", "client_ip", "server_ip", "state")]


@given(st.lists(partials(), min_size=1, max_size=3), st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_null_text_columns_share_one_array_and_stay_independent(parts, seed):
    got = assemble([flows_piece(p) for p in parts])
    arrays = {name: got[name].array._pa_array for name in MADE_TEXT}
    assert len({id(a) for a in arrays.values()}) == 1
    want = got.copy()
    for name in MADE_TEXT:        # the plain way: a null array of its own per column
        want[name] = schema.null_column("string", len(got))
    pd.testing.assert_frame_equal(got, want)
    rng = np.random.default_rng(seed)
    rows = rng.random(len(got)) < 0.5
    for name in rng.permutation(MADE_TEXT)[:3]:
        got.loc[rows, name] = f"x-{name}"
        want.loc[rows, name] = f"x-{name}"
        pd.testing.assert_frame_equal(got, want)
    series = got["sni"]                        # a column taken out and written, the frame's unchanged
    series.iloc[:1] = "y"
    pd.testing.assert_frame_equal(got, want)
