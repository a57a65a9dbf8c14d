"""timing's summaries are pandas' groupby figures, bit for bit: group_quantiles against
pd.Series.groupby(...).size/quantile/max, and _summary_of against the concatenated-groupby
summary it replaced (missing keys, NaN values, ties, single-value groups)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from apnstrace.health.timing import _summary_of, group_quantiles


def _values(rng: np.random.Generator, n: int, kind: int) -> np.ndarray:
    if kind == 0:
        return rng.normal(size=n) * 10.0 ** rng.integers(-3, 6)
    if kind == 1:
        return rng.integers(0, 5, n).astype(np.float64)           # many ties
    if kind == 2:
        return rng.exponential(size=n)
    return np.round(rng.random(n) * 1000, 3)


@pytest.mark.parametrize("seed", range(4))
def test_group_quantiles_equal_pandas_groupby(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for trial in range(300):
        n = int(rng.integers(1, 300))
        group = rng.integers(0, int(rng.integers(1, 80)), n) * int(rng.integers(1, 5))   # gaps, single-value groups
        v = _values(rng, n, trial % 4)
        grouped = pd.Series(v).groupby(group, sort=True)
        at, count, (p50, p95), top = group_quantiles(group, v, (0.5, 0.95))
        assert at.tolist() == grouped.size().index.tolist()
        assert count.dtype == np.int64 and count.tolist() == grouped.size().tolist()
        for got, expected in ((p50, grouped.quantile(0.5)), (p95, grouped.quantile(0.95)), (top, grouped.max())):
            assert got.dtype == np.float64 and got.tobytes() == expected.to_numpy().tobytes()


def test_group_quantiles_of_nothing() -> None:
    at, count, (p50,), top = group_quantiles(np.empty(0, np.int64), np.empty(0), (0.5,))
    assert len(at) == len(count) == len(p50) == len(top) == 0


def _summary_by_pandas(values, keys, rows, scope, missing=None) -> pd.DataFrame:
    """The summary as pandas' groupby over every (key, metric) value made it."""
    keys = keys.astype(object).where(keys.notna(), missing) if missing is not None else keys.astype(object)
    long = pd.DataFrame({"key": np.concatenate([keys.to_numpy(object)[rows]] * len(values)),
                         "metric": np.repeat(list(values), rows.sum()),
                         "v": np.concatenate([v[rows] for v in values.values()])}).dropna()
    grouped = long.groupby(["key", "metric"], sort=True)["v"]
    out = pd.DataFrame({"count": grouped.size(), "p50": grouped.quantile(0.5), "p95": grouped.quantile(0.95),
                        "max": grouped.max()}).reset_index()
    out.insert(0, "scope", scope)
    return out


@pytest.mark.parametrize("missing", [None, "other"])
def test_summary_of_equals_pandas_groupby(missing) -> None:
    rng = np.random.default_rng(7)
    for trial in range(40):
        n = int(rng.integers(1, 400))
        names = np.array(["a", "b", "c", "zz", "m", None], dtype=object)
        keys = pd.Series(names[rng.integers(0, len(names), n)], dtype="string[pyarrow]")
        values = {}
        for metric in ("ttfb_ms", "rtt_ms", "tls_handshake_ms"):
            v = _values(rng, n, trial % 4)
            v[rng.random(n) < 0.4] = np.nan
            values[metric] = v
        rows = rng.random(n) < 0.8
        got = _summary_of(values, keys, rows, "device", missing=missing)
        expected = _summary_by_pandas(values, keys, rows, "device", missing)
        if expected.empty:
            assert got.empty
            continue
        assert got["key"].tolist() == expected["key"].tolist() and got["metric"].tolist() == expected["metric"].tolist()
        assert got["count"].tolist() == expected["count"].tolist()
        for name in ("p50", "p95", "max"):
            assert got[name].to_numpy(np.float64).tobytes() == expected[name].to_numpy(np.float64).tobytes()
