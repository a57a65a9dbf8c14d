"""The sequential parts of sequence building (docs/sequences.md "Matching", "Provider side"),
over plain arrays: which check-in events a push takes depends on what earlier pushes took, so
these are walks. They run compiled (numba); without numba they run as plain Python (correct,
slower), as in reader/walk.py.

Arrays of events are sorted by (device, time); a device's events are [start[d], end[d]).
"""
from __future__ import annotations

import numpy as np

from ..reader.walk import njit   # numba's, or plain Python where numba cannot load

NO_CHECKIN, CHECKED_IN, BLOCKED = 0, 1, 2


def segments(codes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """[start, end) of each of n codes in an array where equal codes are contiguous (-1: left out)."""
    start, end = np.zeros(n, np.int64), np.zeros(n, np.int64)
    at = np.flatnonzero(codes >= 0)
    found, first, count = np.unique(codes[at], return_index=True, return_counts=True)
    start[found] = at[first]
    end[found] = at[first] + count
    return start, end


@njit(cache=True)
def bisect_right(a, lo, hi, x):
    """bisect.bisect_right on a[lo:hi] (same comparisons, so NaN behaves as in Python)."""
    while lo < hi:
        mid = (lo + hi) // 2
        if x < a[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True)
def bisect_left(a, lo, hi, x):
    while lo < hi:
        mid = (lo + hi) // 2
        if a[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def match_pushes(push_dev, push_ts, ev_ts, ev_ok, start, end, window):
    """Pushes grouped by device (codes into start/end), in time order within a device.

    Returns per push the outcome, the event it took (-1: none) and whether a no_checkin push
    came inside a session already under way; and which events pushes or sessions took."""
    n = len(push_ts)
    outcome = np.zeros(n, np.int8)
    pick = np.full(n, -1, np.int64)
    during = np.zeros(n, np.bool_)
    taken = np.zeros(len(ev_ts), np.bool_)
    session_end = -np.inf
    for k in range(n):
        d = push_dev[k]
        if k == 0 or d != push_dev[k - 1]:
            session_end = -np.inf
        a, b, p = start[d], end[d], push_ts[k]
        lo = bisect_right(ev_ts, a, b, p)
        hi = bisect_right(ev_ts, a, b, p + window)
        free = -1
        good = -1
        for i in range(lo, hi):
            if not taken[i]:
                if free < 0:
                    free = i
                if ev_ok[i]:
                    good = i
                    break
        if good >= 0:
            outcome[k], pick[k] = CHECKED_IN, good
            session_end = ev_ts[good] + window
            # the session: every event from the push on until window after the check-in
            taken[lo:bisect_right(ev_ts, a, b, session_end)] = True
        elif free >= 0:
            outcome[k], pick[k] = BLOCKED, free
            taken[lo:hi] = True
        else:
            during[k] = p <= session_end
    return outcome, pick, during, taken


@njit(cache=True)
def unsolicited_starts(ev_dev, ev_ts, taken, window):
    """Events no push took start a session (one unsolicited row) unless within window after
    the previous session start of the same device."""
    first = np.zeros(len(ev_ts), np.bool_)
    until = -np.inf
    for i in range(len(ev_ts)):
        if i == 0 or ev_dev[i] != ev_dev[i - 1]:
            until = -np.inf
        if taken[i] or ev_dev[i] < 0 or ev_ts[i] <= until:
            continue
        until = ev_ts[i] + window
        first[i] = True
    return first


@njit(cache=True)
def take_first_in(push_ts, req_ts, before):
    """Pushes in time order; each takes the earliest untaken request in [push - before, push].
    Returns the request index per push (-1: none)."""
    n = len(req_ts)
    pick = np.full(len(push_ts), -1, np.int64)
    taken = np.zeros(n, np.bool_)
    for k in range(len(push_ts)):
        p = push_ts[k]
        j = bisect_left(req_ts, 0, n, p - before)
        ceiling = bisect_right(req_ts, 0, n, p)
        while j < ceiling and taken[j]:
            j += 1
        if j < ceiling:
            taken[j] = True
            pick[k] = j
    return pick


@njit(cache=True)
def window_ranges(q_dev, q_ts, ts, start, end, window):
    """Per query: the index range of its device's entries with q_ts < ts <= q_ts + window."""
    n = len(q_ts)
    lo = np.zeros(n, np.int64)
    hi = np.zeros(n, np.int64)
    for k in range(n):
        d = q_dev[k]
        if d < 0:
            continue
        a, b = start[d], end[d]
        lo[k] = bisect_right(ts, a, b, q_ts[k])
        hi[k] = bisect_right(ts, a, b, q_ts[k] + window)
    return lo, hi
