"""Dictionary codes of an Arrow-backed text column, shared by attach and classify.

Both read the flows' server_ip as codes into its distinct values. Arrow arrays are immutable,
so the same column object holds the same values: the codes are made once per object (the last
two are kept) and handed out read-only.

attach() also hands over the codes of the columns it builds (it knows them from the few
thousand source values: encoding the built column again costs ~1.5 ms each): held until
classify reads them once, or until the column is gone (no codes outlive their column).
"""
from __future__ import annotations

import threading
import weakref

import numpy as np
import pandas as pd
import pyarrow as pa

_KEPT: list[tuple[pa.ChunkedArray | pa.Array, tuple[np.ndarray, pa.Array]]] = []
_HANDED: dict[int, tuple[weakref.ref, tuple[np.ndarray, pa.Array]]] = {}     # id(arrow) -> (ref, codes)
_LOCK = threading.RLock()       # re-entered by a weakref callback fired while it is held


def arrow_codes(column: pd.Series) -> tuple[np.ndarray, pa.Array] | None:
    """(int64 code per row, -1 = null; the distinct values) of an Arrow string column; None for
    a column held otherwise."""
    array = column.array
    if not isinstance(array, pd.arrays.ArrowStringArray):
        return None
    arrow = array._pa_array
    with _LOCK:
        handed = _HANDED.pop(id(arrow), None)
        if handed is not None and handed[0]() is arrow:
            found = handed[1]
            _KEPT[:] = [(arrow, found)] + _KEPT[:1]
            return found
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


def hand_over(column: pd.api.extensions.ExtensionArray, codes: np.ndarray, distinct: pa.Array) -> None:
    """What arrow_codes(column) would find, known by the column's maker: (int64 code per row,
    -1 = null; the distinct values, each once)."""
    if not isinstance(column, pd.arrays.ArrowStringArray):
        return
    arrow = column._pa_array
    key = id(arrow)
    codes = np.asarray(codes, np.int64)
    codes.flags.writeable = False

    def gone(_ref, key=key) -> None:
        with _LOCK:
            held = _HANDED.get(key)
            if held is not None and held[0] is _ref:
                del _HANDED[key]

    with _LOCK:
        _HANDED[key] = (weakref.ref(arrow, gone), (codes, distinct))
