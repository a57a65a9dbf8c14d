"""Pushes on courier flows: server bursts the device did not ask for (docs/sequences.md "Pushes")."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..options import SequenceOptions

COURIER = "apns-courier"


def find_pushes(flows: pd.DataFrame, packets: pd.DataFrame, options: SequenceOptions) -> pd.DataFrame:
    """One row per push: row (the courier flow's row in flows), device_ip, push_ts, push_bytes.

    `packets` are APNs payload packets already placed on their flow (columns row, c2s, ts, bytes).
    """
    courier = (flows["service"] == COURIER).fillna(False).to_numpy(bool)
    sel = np.flatnonzero(courier[packets["row"].to_numpy()])
    if not len(sel):
        return pd.DataFrame({"row": np.empty(0, np.int64), "device_ip": np.empty(0, object),
                             "push_ts": np.empty(0), "push_bytes": np.empty(0, np.int64)})
    row, ts = packets["row"].to_numpy()[sel], packets["ts"].to_numpy()[sel]
    sel = sel[np.lexsort((ts, row))]                   # by flow, then time (stable)
    row, ts, c2s = packets["row"].to_numpy()[sel], packets["ts"].to_numpy()[sel], packets["c2s"].to_numpy(bool)[sel]
    first = np.ones(len(sel), bool)
    first[1:] = row[1:] != row[:-1]
    prev_ts = np.concatenate([[-np.inf], ts[:-1]])
    prev_client = np.concatenate([[False], c2s[:-1]])
    new_burst = ~c2s & (first | prev_client | (ts - prev_ts >= options.record_gap_s))
    # The device's latest payload strictly before each packet, within the flow: times are
    # sorted within a flow, so that is the time of the flow's latest device packet so far.
    index = np.arange(len(sel))
    latest = np.maximum.accumulate(np.where(c2s, index, -1))
    flow_start = np.maximum.accumulate(np.where(first, index, 0))
    client_ts = np.where(latest >= flow_start, ts[np.maximum(latest, 0)], -np.inf)
    client_before = np.where(first, -np.inf, np.concatenate([[-np.inf], client_ts[:-1]]))
    server = np.flatnonzero(~c2s)
    burst = np.cumsum(new_burst)[server]            # burst number of each server packet
    starts = np.flatnonzero(new_burst)
    sizes = np.bincount(burst, weights=packets["bytes"].to_numpy()[sel][server], minlength=len(starts) + 1)[1:]
    push = client_before[starts] < ts[starts] - options.keepalive_window_s
    at = starts[push]
    return pd.DataFrame({
        "row": row[at], "device_ip": flows["client_ip"].iloc[row[at]].to_numpy(object),
        "push_ts": ts[at], "push_bytes": sizes[push].astype(np.int64)})
