"""Flow rows by uid, for whatever was recorded against a flow's uid (sequences, DNS failures)."""
from __future__ import annotations

import numpy as np
import pandas as pd


def rows_of(uids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """pd.Index(uids).get_indexer(wanted) (uids unique): by binary search when uids are sorted,
    as flows come, sparing the hash table over every flow (~40 MB a million flows); else by a
    table indexed by uid when the uids are dense (finished flows' uids number them 0..n-1 in
    an order of their own: engine_10m's table is 8 MB, the hash table was ~40 MB, built twice)."""
    if len(uids) and uids.dtype.kind in "iu" and (len(uids) == 1 or bool((uids[1:] > uids[:-1]).all())):
        at = np.minimum(np.searchsorted(uids, wanted), len(uids) - 1)
        return np.where(uids[at] == wanted, at, -1)
    if len(uids) and uids.dtype.kind in "iu" and _dense(uids):
        return _rows_by_table(uids, wanted)
    return pd.Index(uids).get_indexer(wanted)


def _dense(uids: np.ndarray) -> bool:
    """Non-negative uids whose largest is below twice their number: a table by uid is no larger
    than the uids themselves (twice at most)."""
    return int(uids.min()) >= 0 and int(uids.max()) < 2 * len(uids)


def _rows_by_table(uids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Each wanted uid's row (-1: none) through a table of every uid's row (unique uids)."""
    row = np.full(int(uids.max()) + 1, -1, np.intp)
    row[uids] = np.arange(len(uids))
    wanted = np.asarray(wanted)
    inside = (wanted >= 0) & (wanted < len(row))
    return np.where(inside, row[np.where(inside, wanted, 0)], -1)
