"""Write frames as CSV, JSON lines or Parquet, safely: capture strings are data, not formulas."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TextIO

import pandas as pd

# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralize(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_for_csv(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for name in out.columns:
        if pd.api.types.is_string_dtype(out[name]) or out[name].dtype == object:
            out[name] = out[name].map(neutralize, na_action="ignore")
    return out


def write_csv(frame: pd.DataFrame, out: TextIO | Path) -> None:
    safe_for_csv(frame).to_csv(out, index=False)


def _plain(value: object) -> object:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):          # numpy scalars
        return value.item()
    return value


def write_jsonl(frame: pd.DataFrame, out: TextIO) -> None:
    """One JSON object per row, keys exactly the column names, nulls as null."""
    names = list(frame.columns)
    for row in frame.itertuples(index=False, name=None):
        out.write(json.dumps({k: _plain(v) for k, v in zip(names, row)}, ensure_ascii=False))
        out.write("\n")


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    frame.to_parquet(path, index=False)
