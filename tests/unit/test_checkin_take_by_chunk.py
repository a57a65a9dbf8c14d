"""sequences/checkins.py: rows of the blocked table taken a chunk at a time (its sentences come in
slices) are the rows iloc gives, in the order asked, with the same dtypes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from apnstrace.sequences import checkins

TEXTS = st.one_of(st.none(), st.sampled_from(["", "a", "reset: RST after SYN", "Ünïcode ß", "x" * 40]))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(TEXTS, max_size=6), min_size=1, max_size=5), st.data())
def test_take_by_chunk_same_as_take(chunks, data) -> None:
    values = pa.chunked_array([pa.array(c, pa.large_string()) for c in chunks], pa.large_string())
    n = len(values)
    rows = np.array(data.draw(st.lists(st.integers(0, n - 1), max_size=12)) if n else [], np.int64)
    got = checkins.take_by_chunk(values, rows)
    assert got.type == pa.large_string()
    assert got.to_pylist() == values.take(pa.array(rows, pa.int64())).to_pylist()


@settings(max_examples=40, deadline=None)
@given(st.lists(TEXTS, min_size=1, max_size=20), st.integers(1, 4), st.data())
def test_rows_at_same_as_iloc(texts, pieces, data) -> None:
    n = len(texts)
    cut = sorted(data.draw(st.lists(st.integers(0, n), min_size=pieces - 1, max_size=pieces - 1)))
    bounds = [0, *cut, n]
    sentence = pa.chunked_array([pa.array(texts[a:b], pa.large_string()) for a, b in zip(bounds, bounds[1:])],
                                pa.large_string())
    frame = pd.DataFrame({"sentence": pd.arrays.ArrowStringArray(sentence, dtype=pd.StringDtype("pyarrow")),
                          "reason": pd.array(texts, dtype="string"), "ts": np.arange(n, dtype=float),
                          "flow_id": pd.array([i if i % 3 else None for i in range(n)], dtype="Int64")})
    rows = np.array(data.draw(st.lists(st.integers(0, n - 1), max_size=10)), np.int64)
    got = checkins._rows_at(frame, rows, ("sentence", "reason", "ts", "flow_id"))
    want = frame.iloc[rows][["sentence", "reason", "ts", "flow_id"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
