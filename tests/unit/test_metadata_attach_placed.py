"""attach._placed (columns replaced by position, new ones appended) against setting each column
with __setitem__; attach._string against pd.array(..., dtype="string")."""
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from apnstrace.metadata.attach import _placed, _string


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"a": np.arange(4), "sni": pd.array(["x", None, "y", None], dtype="string"),
                         "b": np.linspace(0, 1, 4), "status": pd.array([1, None, 3, 4], dtype="Int32")})


def _columns() -> dict:
    return {"sni": _string(pa.array(["p", "q", None, ""], pa.large_string())),
            "new": _string(pa.array([None, "n", "m", None], pa.large_string())),
            "status": pd.arrays.IntegerArray(np.array([7, 0, 9, 0], np.int32), np.array([False, True, False, True])),
            "ts": np.array([0.5, np.nan, 1.5, 2.0]), "b": np.zeros(4)}


@pytest.mark.parametrize("duplicated", [False, True])
def test_placed_as_setitem(duplicated):
    flows = _frame()
    if duplicated:                          # a repeated name: each column set by __setitem__
        flows.columns = ["a", "sni", "a", "status"]
    before = flows.copy()
    expected = flows.copy(deep=False)
    out = _columns()
    for name, column in out.items():
        expected[name] = column
    got = _placed(flows, out)
    assert list(got.columns) == list(expected.columns)
    assert got.columns.dtype == expected.columns.dtype
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    pd.testing.assert_frame_equal(flows, before, check_exact=True)   # the caller's frame as it was
    if not duplicated:                      # the arrays placed as they are (codes handed over by identity)
        assert got["sni"].array._pa_array is out["sni"]._pa_array
        assert got["new"].array._pa_array is out["new"]._pa_array
        # the numeric columns made by attach are placed without a copy too
        assert np.shares_memory(got["status"].array._data, out["status"]._data)
        assert np.shares_memory(got["ts"].to_numpy(), out["ts"])
        assert np.shares_memory(got["b"].to_numpy(), out["b"])


def test_placed_numeric_on_repeated_name():
    """A numeric column set on a name the frame holds twice: both set, as __setitem__ does."""
    flows = _frame()
    flows.columns = ["a", "sni", "a", "status"]
    expected = flows.copy(deep=False)
    out = {"a": np.array([3.0, 2.0, 1.0, 0.0]), "status": pd.array([None, 2, None, 5], dtype="Int32")}
    for name, column in out.items():
        expected[name] = column
    got = _placed(flows, out)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_string_as_pd_array():
    values = pa.array(["a", None, "", "d\\x00"], pa.large_string())
    got, expected = _string(values), pd.array(values, dtype="string")
    assert got.dtype == expected.dtype and type(got) is type(expected)
    assert got._pa_array.type == expected._pa_array.type
    assert got.equals(expected)
