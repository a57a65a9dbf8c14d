"""attach()'s numeric flow columns (http_status, tls_handshake_ms, server_hello_ts) in one compiled
pass over the flows.

Each is read per flow through its metadata record (a row of the record's source values). Done
with numpy, every step (gather the rows, gather per flow, subtract, scale, test, select, negate
the mask) wrote a temporary of 198K rows on the engine benchmark, each fresh memory; here each
output is written once.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..reader.walk import COMPILED, njit


__all__ = ["flow_numbers"]


def flow_numbers(at: np.ndarray, status: tuple[pa.Array, np.ndarray], hello: tuple[pa.Array, np.ndarray],
                 server: tuple[pa.Array, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per flow (`at`: its record, -1: none), from (values, rows with a last slot -1) per field:
    (http status as int32, 0 where missing; its missing mask; handshake ms = (server - hello)
    * 1000, 0.0 where not finite or negative; its missing mask; server_ts, NaN where missing)."""
    s_values, s_rows = status
    s_ok = np.append(s_values.is_valid().to_numpy(zero_copy_only=False), False)
    s_num = np.append(s_values.fill_null(0).to_numpy(), 0).astype(np.int32)
    h_num, h_rows = _floats(*hello)
    v_num, v_rows = _floats(*server)
    rows = [np.ascontiguousarray(r, np.int64) for r in (s_rows, h_rows, v_rows)]
    at = np.ascontiguousarray(at, np.int64)
    if not COMPILED:
        return _numpy(at, s_ok, s_num, rows[0], h_num, rows[1], v_num, rows[2])
    n = len(at)
    code, code_missing = np.empty(n, np.int32), np.empty(n, np.bool_)
    ms, ms_missing, server_ts = np.empty(n, np.float64), np.empty(n, np.bool_), np.empty(n, np.float64)
    _fill(at, s_ok, s_num, rows[0], h_num, rows[1], v_num, rows[2], code, code_missing, ms, ms_missing, server_ts)
    return code, code_missing, ms, ms_missing, server_ts


def _floats(values: pa.Array, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The values as float64 (NaN: null) with a last slot NaN, for rows where -1 is none."""
    return np.append(values.to_numpy(zero_copy_only=False).astype(np.float64), np.nan), rows


def _numpy(at, s_ok, s_num, s_rows, h_num, h_rows, v_num, v_rows):
    """The same with numpy (no numba; and the tests' reference)."""
    ok = s_ok[s_rows][at]
    code = np.where(ok, s_num[s_rows][at], 0).astype(np.int32)
    hello, server = h_num[h_rows][at], v_num[v_rows][at]
    with np.errstate(invalid="ignore"):
        ms = (server - hello) * 1000.0
    fine = np.isfinite(ms) & (ms >= 0)
    return code, ~ok, np.where(fine, ms, 0.0), ~fine, server


@njit(cache=True)
def _fill(at, s_ok, s_num, s_rows, h_num, h_rows, v_num, v_rows, code, code_missing, ms, ms_missing, server_ts):
    """_numpy's outputs written in place, one flow at a time (a row -1 reads each source's last slot)."""
    for i in range(len(at)):
        k = at[i]
        if k < 0:
            k = len(s_rows) - 1             # the rows' last slot: -1, no record
        j = s_rows[k]
        if s_ok[j]:
            code[i] = s_num[j]
            code_missing[i] = False
        else:
            code[i] = 0
            code_missing[i] = True
        server = v_num[v_rows[k]]
        took = (server - h_num[h_rows[k]]) * 1000.0
        if np.isfinite(took) and took >= 0:
            ms[i] = took
            ms_missing[i] = False
        else:
            ms[i] = 0.0
            ms_missing[i] = True
        server_ts[i] = server
