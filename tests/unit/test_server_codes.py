"""flows.finalize.ServerCodes: the server_ip codes made from the pieces' codes, checked against
the plain values they stand for."""
import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings, strategies as st

from apnstrace.flows.finalize import ServerCodes, _grouped
from apnstrace.metadata import column_codes as CC

V4 = 0xFFFF << 32
# (text, hi, lo) as flows_piece numbers addresses: IPv4 mapped into the low half, some IPv6
ADDRESSES = [(f"10.0.0.{i}", 0, V4 | 0x0A000000 | i) for i in range(10)] + \
    [(f"2001:db8::{i}", 0x20010DB800000000, i) for i in range(1, 4)]


@st.composite
def pieces(draw):
    out = []
    for _ in range(draw(st.integers(1, 3))):
        labels = draw(st.lists(st.sampled_from(ADDRESSES), min_size=1, max_size=8, unique=True))
        codes = draw(st.lists(st.integers(0, len(labels) - 1), max_size=30))
        numbers = (np.array([hi for _, hi, _ in labels], np.uint64), np.array([lo for _, _, lo in labels], np.uint64))
        out.append((np.array(codes, np.int64), pa.array([t for t, _, _ in labels], pa.string()), numbers))
    total = sum(len(c) for c, _, _ in out)
    order = draw(st.none() | st.permutations(range(total)).map(np.array))
    if order is not None and total:
        order = order[: draw(st.integers(0, total))]         # rows dropped too
    return out, order


@given(pieces())
@settings(max_examples=300, deadline=None)
def test_codes_match_the_values(drawn):
    parts, order = drawn
    plain = [labels[i].as_py() for codes, labels, _ in parts for i in codes]
    if order is not None:
        plain = [plain[i] for i in order]
    made = ServerCodes(tuple(c for c, _, _ in parts), tuple(l for _, l, _ in parts),
                       tuple(n for _, _, n in parts), None if order is None else np.asarray(order, np.int64))()
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


def _plain_groups(hi, lo):
    seen, group, first = {}, [], []
    for i, key in enumerate(zip(hi.tolist(), lo.tolist())):
        if key not in seen:
            seen[key] = len(first)
            first.append(i)
        group.append(seen[key])
    return group, first


word = st.sampled_from([0, 1, 2, 0xFFFF << 32, 2**64 - 1]) | st.integers(0, 2**64 - 1)


@given(st.lists(st.tuples(word, word), max_size=200), st.data())
@settings(max_examples=300, deadline=None)
def test_grouped_matches_first_occurrence(pairs, data):
    pairs = pairs + data.draw(st.lists(st.sampled_from(pairs), max_size=100)) if pairs else pairs   # repeats
    hi = np.array([h for h, _ in pairs], np.uint64)
    lo = np.array([l for _, l in pairs], np.uint64)
    group, first = _grouped(hi, lo)
    want_group, want_first = _plain_groups(hi, lo)
    assert group.tolist() == want_group and first.tolist() == want_first
