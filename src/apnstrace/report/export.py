"""Write frames as CSV, JSON lines or Parquet, safely: capture strings are data, not formulas."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import TextIO

import pandas as pd

# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralize(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


FORMULA = "^[" + "".join("\\t" if c == "\t" else "\\r" if c == "\r" else "\\" + c for c in FORMULA_STARTS) + "]"


def safe_for_csv(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells a spreadsheet would run as a formula get a leading quote (vectorized)."""
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if pd.api.types.is_string_dtype(column) or column.dtype == object:
            text = column.astype("string")
            risky = text.str.contains(FORMULA, regex=True).fillna(False).to_numpy(bool)
            if risky.any():
                text = text.copy()
                text[risky] = "'" + text[risky]
            out[name] = text
    return out


# Characters that would make output invalid UTF-8 (lone surrogates) or act on the terminal or
# editor showing it (DEL, C1 controls, bidi overrides and isolates, line separators). JSON
# already escapes C0 controls; these are escaped the same way (\uXXXX), so values read back equal.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def json_text(value: object, **options) -> str:
    """json.dumps as readable UTF-8 that is always valid: unsafe characters as \\uXXXX escapes."""
    text = json.dumps(value, ensure_ascii=False, **options)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def valid_utf8(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells that cannot be written as UTF-8 (lone surrogates a library user put in a
    frame; the decoders never make them) with those characters as \\uXXXX text. Slow path only."""
    out = frame.copy()
    for name in out.columns:
        if out[name].dtype == object:
            out[name] = out[name].map(
                lambda v: v.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(v, str) else v)
    return out


def write_csv(frame: pd.DataFrame, out: TextIO | Path) -> None:
    """CSV with a header, nulls as empty cells, quoting only where needed; written by Arrow's
    C++ writer (pandas' to_csv costs seconds on a few hundred thousand flows)."""
    try:
        body = _csv_rows(frame)
    except UnicodeEncodeError:
        body = _csv_rows(valid_utf8(frame))
    header = ",".join(_header_cell(str(name)) for name in frame.columns) + "\n"
    data = header.encode("utf-8", "backslashreplace") + body
    if isinstance(out, Path):
        out.write_bytes(data)
    elif hasattr(out, "buffer") and out is not None and getattr(out, "encoding", "utf-8").lower().replace("-", "") == "utf8":
        out.flush()
        out.buffer.write(data)
        out.buffer.flush()
    else:
        out.write(data.decode("utf-8"))


def _csv_rows(frame: pd.DataFrame) -> bytes:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    table = pa.Table.from_pandas(safe_for_csv(frame), preserve_index=False)
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    return sink.getvalue().to_pybytes()


def _header_cell(name: str) -> str:
    return '"' + name.replace('"', '""') + '"' if any(c in name for c in ',"\r\n') else name


def _plain(value: object) -> object:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):          # numpy scalars
        return value.item()
    return value


def write_jsonl(frame: pd.DataFrame, out: TextIO) -> None:
    """One JSON object per row, keys exactly the column names, nulls as null; valid UTF-8
    whatever the cells hold (json_text)."""
    names = list(frame.columns)
    for row in frame.itertuples(index=False, name=None):
        out.write(json_text({k: _plain(v) for k, v in zip(names, row)}))
        out.write("\n")


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    try:
        frame.to_parquet(path, index=False)
    except UnicodeEncodeError:
        valid_utf8(frame).to_parquet(path, index=False)
