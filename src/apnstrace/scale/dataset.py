"""Flows as a Parquet dataset partitioned by date, appended to capture by capture.

    write_flows(result.flows, "site-flows/", run="2026-12-04-span1")   # adds files, keeps the rest
    read_flows("site-flows/", start="2026-12-01", columns=["ts_start", "sni"])   # pandas
    query("site-flows/", "SELECT sni, count(*) FROM flows GROUP BY 1")       # DuckDB, if installed

Layout: <root>/date=YYYY-MM-DD/<run>-<n>.parquet (date of ts_start, UTC). Each appended result
gets a `run` column so flow_id (unique within one result) stays unique with it.
"""
from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from ..errors import InputError

PARTITIONING = ds.partitioning(pa.schema([("date", pa.string())]), flavor="hive")
SAFE_RUN = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


def write_flows(flows: pd.DataFrame, root: str | os.PathLike, run: str | None = None) -> str:
    """Append `flows` to the dataset at `root` (created if missing); returns the run label."""
    run = run or uuid.uuid4().hex[:12]
    if not SAFE_RUN.match(run):
        raise InputError(f"run label {run!r}: use letters, digits, '.', '_' or '-'")
    root = Path(root)
    if root.exists() and any(root.glob(f"date=*/{run}-*.parquet")):
        raise InputError(f"{root}: run {run!r} is already in the dataset")
    frame = flows.copy()
    frame.insert(0, "run", run)
    frame["date"] = pd.to_datetime(frame["ts_start"], unit="s", utc=True).dt.strftime("%Y-%m-%d")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    ds.write_dataset(table, root, format="parquet", partitioning=PARTITIONING,
                     basename_template=f"{run}-{{i}}.parquet", existing_data_behavior="overwrite_or_ignore")
    return run


def dataset(root: str | os.PathLike) -> ds.Dataset:
    """The pyarrow Dataset (for filters and scans over more data than fits in memory)."""
    if not Path(root).is_dir():
        raise InputError(f"{root}: no flows dataset there")
    return ds.dataset(root, format="parquet", partitioning=PARTITIONING)


def read_flows(root: str | os.PathLike, *, start: str | None = None, end: str | None = None,
               columns: list[str] | None = None, runs: list[str] | None = None) -> pd.DataFrame:
    """Flows of dates start..end (inclusive, YYYY-MM-DD; partitions outside are not read)."""
    data = dataset(root)
    where = None
    for cond in ((ds.field("date") >= start) if start else None, (ds.field("date") <= end) if end else None,
                 ds.field("run").isin(runs) if runs else None):
        if cond is not None:
            where = cond if where is None else where & cond
    table = data.to_table(columns=columns, filter=where)
    return table.to_pandas(types_mapper=_nullable).reset_index(drop=True)


def query(root: str | os.PathLike, sql: str) -> pd.DataFrame:
    """Run SQL over the dataset with DuckDB (pip install duckdb); the table is called `flows`."""
    try:
        import duckdb
    except ImportError:
        raise InputError("query() needs DuckDB: pip install duckdb (or use read_flows)") from None
    con = duckdb.connect()
    try:
        con.register("flows", dataset(root))
        return con.execute(sql).df()
    finally:
        con.close()


def _nullable(arrow_type: pa.DataType):
    mapping = {pa.string(): pd.StringDtype(), pa.large_string(): pd.StringDtype(), pa.int32(): pd.Int32Dtype(),
               pa.float64(): None}
    return mapping.get(arrow_type)
