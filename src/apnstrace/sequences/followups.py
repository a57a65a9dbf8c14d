"""Follow-ups after a check-in (docs/sequences.md "Follow-ups"): the device's flows in the
follow-up categories that start within the window after it."""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import kernels

FOLLOWUP_CATEGORIES = ("sus", "file_share", "http_distribution")


def followups(out: dict[str, np.ndarray], flows: pd.DataFrame, window: float) -> tuple[np.ndarray, np.ndarray]:
    """Per row of `out` (device_ip, outcome, checkin_ts): the categories in order of first
    appearance, comma separated (None when none), and how many of those flows were blocked
    (NaN unless checked_in)."""
    n = len(out["outcome"])
    names, n_blocked = np.full(n, None, object), np.full(n, np.nan)
    checked = np.flatnonzero(out["outcome"] == "checked_in")
    if not len(checked):
        return names, n_blocked
    n_blocked[checked] = 0
    fetch = np.flatnonzero(flows["category"].isin(FOLLOWUP_CATEGORIES).fillna(False).to_numpy(bool))
    category = pd.Index(FOLLOWUP_CATEGORIES).get_indexer(flows["category"].to_numpy(object)[fetch])
    codes, uniques = pd.factorize(np.concatenate([out["device_ip"][checked], flows["client_ip"].to_numpy(object)[fetch]]))
    q_code, c_code = codes[:len(checked)], codes[len(checked):]
    ts = flows["ts_start"].to_numpy(np.float64)[fetch]
    # By device, then time, then flow order (how ties came out of the row-by-row version).
    order = np.lexsort((np.arange(len(fetch)), ts, c_code))
    start, end = kernels.segments(c_code[order], len(uniques))
    lo, hi = kernels.window_ranges(q_code, out["checkin_ts"][checked], ts[order], start, end, float(window))
    count = hi - lo
    if not count.sum():
        return names, n_blocked
    # One pair per (checked row, follow-up flow), grouped by row, flows in time order.
    query = np.repeat(np.arange(len(checked)), count)
    flow = order[np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count) + np.repeat(lo, count)]
    blocked = flows["blocked"].fillna(False).to_numpy(bool)[fetch]
    n_blocked[checked] += np.bincount(query, weights=blocked[flow], minlength=len(checked))
    # First appearance of each category per row, then each row's categories as one number
    # (digits category+1 in base k+1, earliest lowest) turned into its string.
    k = len(FOLLOWUP_CATEGORIES)
    key, first = np.unique(query * k + category[flow], return_index=True)
    key = key[np.argsort(first, kind="stable")]        # in pair order: by row, then first appearance
    row, cat = key // k, key % k
    rank = np.arange(len(key)) - np.searchsorted(row, row)
    number = np.bincount(row, weights=(cat + 1) * float(k + 1) ** rank, minlength=len(checked)).astype(np.int64)
    text = {v: _digits(v, k) for v in np.unique(number[number > 0]).tolist()}
    has = np.flatnonzero(number > 0)
    names[checked[has]] = [text[v] for v in number[has].tolist()]
    return names, n_blocked


def _digits(number: int, k: int) -> str:
    parts = []
    while number:
        number, digit = divmod(number, k + 1)
        parts.append(FOLLOWUP_CATEGORIES[digit - 1])
    return ",".join(parts)
