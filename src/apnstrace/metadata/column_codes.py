"""Dictionary codes of an Arrow-backed text column, shared by attach and classify.

Both read the flows' server_ip as codes into its distinct values. Arrow arrays are immutable,
so the same column object holds the same values: the codes are made once per object (the last
two are kept, until classify lets them go: let_go) and handed out read-only.

attach() also hands over the codes of the columns it builds, factored the way it built them:
per flow a row of the few thousand source values, and a code per source value (encoding the
built column again costs ~1.5 ms each, and spelling out a code per flow another 198K-row array
each on the engine benchmark). Held until classify reads them once, or until the column is
gone (no codes outlive their column). A maker may also hand over a function that makes the
codes when first read (flows.finalize: the server addresses' codes, from the address numbers
it formatted, at no cost to a run that never reads them).
"""
from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from .few_codes import few_codes

@dataclass(frozen=True)
class Codes:
    """A text column's codes into its distinct values (each once), -1 = null: row i's code is
    rows[i], or with a lookup, lookup[rows[i]] (rows[i] = -1: the lookup's last slot, -1).
    Arrays are read-only."""

    rows: np.ndarray
    distinct: pa.Array
    lookup: np.ndarray | None = None

    def per_row(self) -> np.ndarray:
        """The int64 code of every row (a new array when factored)."""
        return self.rows if self.lookup is None else self.lookup[self.rows]


Maker = Callable[[], "Codes"]      # makes a column's codes when they are first read

_KEPT: list[tuple[pa.ChunkedArray | pa.Array, Codes]] = []
_HANDED: dict[int, tuple[weakref.ref, Codes | Maker]] = {}     # id(arrow) -> (ref, codes)
_LOCK = threading.RLock()       # re-entered by a weakref callback fired while it is held


def column_codes(column: pd.Series) -> Codes | None:
    """An Arrow string column's codes as handed over (factored or not), else made and kept;
    None for a column not held in Arrow."""
    array = column.array
    if not isinstance(array, pd.arrays.ArrowStringArray):
        return None
    arrow = array._pa_array
    with _LOCK:
        handed = _HANDED.pop(id(arrow), None)
        if handed is not None and handed[0]() is arrow:
            found = handed[1]
            if not isinstance(found, Codes):
                found = _frozen(found())
                if found.distinct.type != arrow.type:      # e.g. string labels of a large_string column
                    found = Codes(found.rows, found.distinct.cast(arrow.type), found.lookup)
            _KEPT[:] = [(arrow, found)] + _KEPT[:1]
            return found
        for kept, found in _KEPT:
            if kept is arrow:
                return found
    combined = one_array(arrow)
    few = few_codes(combined)                   # transport: two values, no hashing needed
    if few is not None:
        codes, distinct = few
    else:
        encoded = combined.dictionary_encode()
        indices = encoded.indices.fill_null(-1) if encoded.indices.null_count else encoded.indices
        codes = indices.to_numpy(zero_copy_only=False).astype(np.int64)    # no copy for fill_null
        distinct = encoded.dictionary
    codes.flags.writeable = False
    found = Codes(codes, distinct)
    with _LOCK:
        _KEPT[:] = [(arrow, found)] + _KEPT[:1]
    return found


def let_go() -> None:
    """Forget the codes kept for reuse. classify() calls it once it has read them: attach and
    classify are their only readers, and kept they stayed beside the frame (and held its
    column) through the stages after (engine_10m: the server addresses' and the name
    sources' codes, ~23 MB, through block_reasons). A later read makes them again."""
    with _LOCK:
        _KEPT.clear()


def one_array(arrow: pa.ChunkedArray | pa.Array) -> pa.Array:
    """The column as one array: its only chunk as it is (combine_chunks copies even that one:
    ~0.3 ms for the engine benchmark's server addresses)."""
    if not isinstance(arrow, pa.ChunkedArray):
        return arrow
    return arrow.chunk(0) if arrow.num_chunks == 1 else arrow.combine_chunks()


def hand_over(column: pd.api.extensions.ExtensionArray, codes: Codes | Maker) -> None:
    """What column_codes(column) would find, known by the column's maker (or a function making
    it, called once, when first read)."""
    if not isinstance(column, pd.arrays.ArrowStringArray):
        return
    arrow = column._pa_array
    key = id(arrow)
    if isinstance(codes, Codes):
        codes = _frozen(codes)

    def gone(_ref, key=key) -> None:
        with _LOCK:
            held = _HANDED.get(key)
            if held is not None and held[0] is _ref:
                del _HANDED[key]

    with _LOCK:
        _HANDED[key] = (weakref.ref(arrow, gone), codes)


def handed(column: pd.api.extensions.ExtensionArray) -> Codes | Maker | None:
    """What hand_over() left on the column and no one read yet (left there)."""
    if not isinstance(column, pd.arrays.ArrowStringArray):
        return None
    arrow = column._pa_array
    with _LOCK:
        held = _HANDED.get(id(arrow))
    return held[1] if held is not None and held[0]() is arrow else None


def _frozen(codes: Codes) -> Codes:
    return Codes(_read_only(codes.rows), codes.distinct,
                 None if codes.lookup is None else _read_only(codes.lookup))


def _read_only(values: np.ndarray) -> np.ndarray:
    """An int64 view that cannot be written (the maker's array itself stays as it was)."""
    view = np.asarray(values, np.int64).view()
    view.flags.writeable = False
    return view
