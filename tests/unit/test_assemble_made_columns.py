"""flows.finalize: flows_piece leaves flow_id, duration and the later stages' columns out of its
pieces, and assemble makes them; the frame must be the one whole pieces give (the plain way:
every schema column in every piece, as flows_piece made them before)."""
import numpy as np
import pandas as pd
from hypothesis import given, settings, strategies as st

from apnstrace import schema
from apnstrace.flows import partials as P
from apnstrace.flows.finalize import assemble, flows_piece

V4 = np.uint64(0xFFFF << 32)


@st.composite
def partials(draw):
    n = draw(st.integers(1, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    part = {}
    for name, dtype in P.FIELDS.items():
        if dtype is np.float64:
            col = np.round(rng.uniform(1e9, 1e9 + 50, n), 3)
            col[rng.random(n) < 0.3] = np.inf
            part[name] = col
        else:
            part[name] = rng.integers(0, 4, n).astype(dtype)
    part["a_hi"] = part["b_hi"] = np.zeros(n, np.uint64)
    part["a_lo"] = V4 | rng.integers(0, 6, n).astype(np.uint64)
    part["b_lo"] = V4 | rng.integers(6, 9, n).astype(np.uint64)
    part["port_a"], part["port_b"] = rng.integers(1, 6, n), rng.integers(1, 6, n)
    part["proto"] = rng.choice([6, 17], n)
    part["ts_first"] = np.round(rng.uniform(1e9, 1e9 + 5, n), 2)     # repeats: ties ordered by the rest
    part["ts_last"] = part["ts_first"] + np.round(rng.uniform(0, 3, n), 3)
    for name in ("first_syn_dir", "first_synack_dir", "vlan", "ttl0", "ttl1", "rst_ttl0", "rst_ttl1"):
        part[name] = rng.integers(-1, 2, n)
    part["uid"] = rng.permutation(n) + draw(st.integers(0, 100)) * 100
    return part


def whole(piece: pd.DataFrame) -> pd.DataFrame:
    """The piece with every schema column, as flows_piece made it before."""
    out = piece.copy()
    for col in schema.FLOWS:
        if col.name == "flow_id":
            out[col.name] = np.zeros(len(out), np.int64)
        elif col.name == "duration":
            out[col.name] = out["ts_end"] - out["ts_start"]
        elif col.name not in out:
            out[col.name] = schema.null_column(col.dtype, len(out))
    return out


@given(st.lists(partials(), min_size=1, max_size=3), st.booleans(), st.integers(0, 2**32 - 1))
@settings(max_examples=150, deadline=None)
def test_assemble_makes_the_left_out_columns(parts, keep_keys, seed):
    pieces = [flows_piece(p) for p in parts]
    plain = [whole(p) for p in pieces]
    total = sum(len(p) for p in pieces)
    drop = np.random.default_rng(seed).random(total) < 0.3 if seed % 2 else None
    got = assemble([p.copy() for p in pieces], keep_keys=keep_keys, drop=drop)
    want = assemble(plain, keep_keys=keep_keys, drop=drop)
    pd.testing.assert_frame_equal(got, want)
    assert list(got.columns[:len(schema.FLOWS)]) == schema.names(schema.FLOWS)
