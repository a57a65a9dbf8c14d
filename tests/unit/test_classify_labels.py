"""label_columns (classify/labels.py) writes labels[codes[group]] per column, as Arrow's take does."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from apnstrace.classify.labels import label_columns


@st.composite
def _columns(draw):
    groups = draw(st.integers(0, 12))
    n = draw(st.integers(0, 60)) if groups else 0
    group = np.array(draw(st.lists(st.integers(0, max(groups - 1, 0)), min_size=n, max_size=n)), np.int64)
    columns = []
    for _ in range(draw(st.integers(1, 3))):
        labels = draw(st.lists(st.text(max_size=12), min_size=1, max_size=8))
        codes = np.array(draw(st.lists(st.integers(0, len(labels) - 1), min_size=groups, max_size=groups)), np.int64)
        columns.append((labels, codes))
    return group, columns


@settings(max_examples=300, deadline=None)
@given(_columns(), st.sampled_from(["list", "arrow", "sliced"]))
def test_labels_of_each_row_group(case, form) -> None:
    group, columns = case
    if form == "arrow":                 # labels as Arrow strings, read where they lie
        columns = [(pa.array(labels, pa.large_string()), codes) for labels, codes in columns]
    elif form == "sliced":              # a slice: its offsets do not start at 0
        columns = [(pa.array(["skipped"] + labels, pa.string()).slice(1), codes) for labels, codes in columns]
    got = label_columns(group, columns)
    assert len(got) == len(columns)
    for taken, (labels, codes) in zip(got, columns):
        want = pa.array(labels if isinstance(labels, list) else labels.to_pylist(), pa.large_string()).take(pa.array(codes[group] if len(group) else codes[:0]))
        taken.validate(full=True)
        assert taken.type == pa.large_string() and taken.null_count == 0
        assert taken.equals(want), (taken.to_pylist(), want.to_pylist())


def test_one_row_many_groups_and_multibyte_labels() -> None:
    got = label_columns(np.array([2, 0, 2], np.int64), [(["é", "", "苹果"], np.array([2, 1, 0], np.int64))])
    assert got[0].to_pylist() == ["é", "苹果", "é"]
