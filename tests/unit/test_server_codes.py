"""flows.finalize.ServerCodes: the server_ip codes made from the pieces' codes, checked against
the plain values they stand for."""
import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings, strategies as st

from apnstrace.flows.finalize import ServerCodes
from apnstrace.metadata import column_codes as CC

ADDRESSES = [f"10.0.0.{i}" for i in range(12)]


@st.composite
def pieces(draw):
    out = []
    for _ in range(draw(st.integers(1, 3))):
        labels = draw(st.lists(st.sampled_from(ADDRESSES), min_size=1, max_size=8, unique=True))
        codes = draw(st.lists(st.integers(0, len(labels) - 1), max_size=30))
        out.append((np.array(codes, np.int64), pa.array(labels, pa.string())))
    total = sum(len(c) for c, _ in out)
    order = draw(st.none() | st.permutations(range(total)).map(np.array))
    if order is not None and total:
        order = order[: draw(st.integers(0, total))]         # rows dropped too
    return out, order


@given(pieces())
@settings(max_examples=300, deadline=None)
def test_codes_match_the_values(drawn):
    parts, order = drawn
    plain = [labels[i].as_py() for codes, labels in parts for i in codes]
    if order is not None:
        plain = [plain[i] for i in order]
    made = ServerCodes(tuple(c for c, _ in parts), tuple(l for _, l in parts),
                       None if order is None else np.asarray(order, np.int64))()
    distinct = made.distinct.to_pylist()
    assert [distinct[i] for i in made.per_row()] == plain
    assert sorted(distinct) == sorted(set(plain))          # exactly the values present, each once


def test_column_codes_calls_a_handed_maker_once():
    column = pd.array(["a", "b", "a"], dtype="string")
    calls = []

    def make():
        calls.append(1)
        return CC.Codes(np.array([0, 1, 0]), pa.array(["a", "b"], pa.string()))

    CC.hand_over(column, make)
    assert CC.handed(column) is make
    series = pd.Series(column)
    found = CC.column_codes(series)
    assert found.distinct.type == column._pa_array.type            # cast to the column's type
    assert CC.column_codes(series) is found and len(calls) == 1
    assert CC.handed(column) is None
