"""take_flights' cert_issuer column: per flight the second read's issuer where it was read twice,
else the first read's; made from the reads' codes into the store's table of names (leaf_names)
when both reads share one, else from the Python values. Either way the column holds exactly the
values, nulls included."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pyarrow as pa
from hypothesis import given, settings, strategies as st

from apnstrace.metadata import flight_streams as fs
from apnstrace.metadata.text_columns import TextTable

NAMES = [None, "CN=Apple", "CN=x\\x00", "", "O=é,C=FR", None]


def _read(codes: list[int], table: TextTable | None) -> SimpleNamespace:
    issuer = np.empty(len(codes), object)
    issuer[:] = [NAMES[c] for c in codes]
    return SimpleNamespace(issuer=issuer, issuer_code=np.array(codes, np.int64), names=table)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, len(NAMES) - 1), st.integers(-1, 5)), min_size=1, max_size=12),
       st.lists(st.integers(0, len(NAMES) - 1), min_size=6, max_size=6), st.booleans())
def test_issuer_column_holds_each_flights_last_read(flights: list, second: list, shared: bool) -> None:
    table = TextTable(pa.array(NAMES, type=pa.large_string()))
    r1 = _read([c for c, _ in flights], table)
    r2 = _read(second, table if shared else TextTable(pa.array(NAMES, type=pa.large_string())))
    at2 = np.array([a for _, a in flights], np.int64)
    idx = np.arange(len(flights))
    got = fs._issuers(r1, r2, idx, np.maximum(at2, 0), at2 >= 0)
    want = [NAMES[second[a]] if a >= 0 else NAMES[c] for c, a in flights]
    assert got.type == pa.large_string()
    assert got.to_pylist() == want
