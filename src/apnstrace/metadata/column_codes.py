"""Dictionary codes of an Arrow-backed text column, shared by attach and classify.

Both read the flows' server_ip as codes into its distinct values. Arrow arrays are immutable,
so the same column object holds the same values: the codes are made once per object (the last
two are kept) and handed out read-only.
"""
from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pyarrow as pa

_KEPT: list[tuple[pa.ChunkedArray | pa.Array, tuple[np.ndarray, pa.Array]]] = []
_LOCK = threading.Lock()


def arrow_codes(column: pd.Series) -> tuple[np.ndarray, pa.Array] | None:
    """(int64 code per row, -1 = null; the distinct values) of an Arrow string column; None for
    a column held otherwise."""
    array = column.array
    if not isinstance(array, pd.arrays.ArrowStringArray):
        return None
    arrow = array._pa_array
    with _LOCK:
        for kept, found in _KEPT:
            if kept is arrow:
                return found
    combined = arrow.combine_chunks() if isinstance(arrow, pa.ChunkedArray) else arrow
    encoded = combined.dictionary_encode()
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    codes.flags.writeable = False
    found = (codes, encoded.dictionary)
    with _LOCK:
        _KEPT[:] = [(arrow, found)] + _KEPT[:1]
    return found
