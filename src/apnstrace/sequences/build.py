"""result.sequences: each push matched to the device's check-in, the provider request before it
and the follow-ups after it (docs/sequences.md)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import schema
from ..flows.finalize import UID
from ..options import SequenceOptions
from . import kernels
from .activity import Activity
from .checkins import checkin_events, mdm_flows
from .followups import followups
from .pushes import find_pushes
from .rows import rows_of

PROVIDER = "apns-provider"
HANDSHAKE_PACKETS = 2          # a provider flow's first client payloads are its TLS handshake
DURING_SESSION = "arrived during a check-in session already under way"
OUTCOMES = np.array(["no_checkin", "checked_in", "checkin_blocked"], object)   # by kernels' outcome codes


def build_sequences(flows: pd.DataFrame, blocked: pd.DataFrame, activity: Activity,
                    options: SequenceOptions) -> pd.DataFrame:
    """schema.SEQUENCES rows from a classified flows frame (with its hidden columns) that went
    through health.block_reasons, the blocked table, and what ActivityCollector kept."""
    if flows.empty:
        return schema.to_frame(None, schema.SEQUENCES)
    packets = _on_flows(activity.apns_packets(), flows)
    starts = _on_flows(activity.starts(), flows)
    pushes = find_pushes(flows, packets, options)
    pushes = pushes.iloc[np.lexsort((_string_rank(pushes["device_ip"].to_numpy(object)), pushes["push_ts"].to_numpy()))]
    mdm, inferred = mdm_flows(flows, pushes, options)
    events = checkin_events(flows, mdm, starts, blocked, options)
    out = _match(pushes, events, options)
    if not len(out["outcome"]):
        return schema.to_frame(None, schema.SEQUENCES)
    out["provider_ts"], out["provider_row"] = _link_provider(out["push_ts"], flows, packets, options)
    out["followups"], out["followups_blocked"] = followups(out, flows, options.window_s)
    flow_id = flows["flow_id"].to_numpy()
    for name, source in (("push_flow_id", "push_row"), ("checkin_flow_id", "checkin_row"), ("provider_flow_id", "provider_row")):
        at = out.pop(source)
        ok = np.isfinite(at) & (at >= 0)
        out[name] = pd.arrays.IntegerArray(np.where(ok, flow_id[np.where(ok, at, 0).astype(np.int64)], 0), ~ok)
    out["mdm_server_inferred"] = np.full(len(out["outcome"]), inferred)
    out["latency_s"] = np.where(out["outcome"] == "checked_in", out["checkin_ts"] - out["push_ts"], np.nan)
    # Time order (push, else check-in), then device; stable, so a device's ties keep push order.
    device_rank = _string_rank(out["device_ip"])
    order = np.lexsort((device_rank, np.where(np.isnan(out["push_ts"]), out["checkin_ts"], out["push_ts"])))
    return schema.to_frame({c.name: out[c.name][order] for c in schema.SEQUENCES}, schema.SEQUENCES)


def _string_rank(values: np.ndarray) -> np.ndarray:
    """Each string's rank in sorted order, nulls last: sorting only the distinct values is cheap."""
    codes, uniques = pd.factorize(values)
    rank = np.empty(len(uniques) + 1, np.int64)
    rank[np.argsort(uniques.astype(object), kind="stable")] = np.arange(len(uniques))
    rank[-1] = len(uniques)                                  # code -1: null
    return rank[codes]


def _on_flows(events: pd.DataFrame, flows: pd.DataFrame) -> pd.DataFrame:
    """Put recorded events on their flow rows; `c2s` says the device (client) sent it."""
    row = rows_of(flows[UID].to_numpy(), events["uid"].to_numpy(np.int64)) if len(events) else np.empty(0, int)
    keep = row >= 0
    # One frame over the events' own arrays: a copy only drops rows of no flow (flow starts
    # are about one row a flow).
    every = bool(keep.all())
    columns = {name: events[name].to_numpy() if every else events[name].to_numpy()[keep] for name in events.columns}
    columns["row"] = row if every else row[keep]
    columns["c2s"] = (columns["dir"] == 0) == flows["_client_is_a"].to_numpy(bool)[columns["row"]]
    return pd.DataFrame(columns, copy=False)


def _match(pushes: pd.DataFrame, events: pd.DataFrame, options: SequenceOptions) -> dict[str, np.ndarray]:
    """Per device in time order: each push takes the check-in events in its window that no
    earlier push or session took; leftovers become unsolicited check-in sessions.

    Columns: push rows first (devices in order of their first push, pushes in time order: the
    order provider matching breaks ties in), then unsolicited rows."""
    window = options.window_s
    # Codes in order of first push; a device with a null address has no rows (as groupby drops it).
    device = np.concatenate([pushes["device_ip"].to_numpy(object), events["device_ip"].to_numpy(object)])
    codes, uniques = pd.factorize(device)
    p_code, e_code = codes[:len(pushes)], codes[len(pushes):]
    start, end = kernels.segments(e_code, len(uniques))          # events come sorted by (device_ip, ts)
    order = np.argsort(p_code, kind="stable")
    order = order[p_code[order] >= 0]
    ev_ts, ev_ok = events["ts"].to_numpy(np.float64), events["ok"].to_numpy(bool)
    push_ts = pushes["push_ts"].to_numpy(np.float64)[order]
    outcome, pick, during, taken = kernels.match_pushes(p_code[order], push_ts, ev_ts, ev_ok, start, end, window)
    free = np.flatnonzero(kernels.unsolicited_starts(e_code, ev_ts, taken, window))

    # Event columns with a null last entry: pick -1 (no event) reads it.
    ts, row = np.append(ev_ts, np.nan), np.append(events["row"].to_numpy(np.float64), np.nan)
    server, detail = np.append(events["server"].to_numpy(object), None), np.append(events["detail"].to_numpy(object), None)
    why = np.where(outcome == kernels.BLOCKED, detail[pick], None)
    why[during] = DURING_SESSION
    nan = np.full(len(free), np.nan)
    return {
        "device_ip": np.concatenate([pushes["device_ip"].to_numpy(object)[order], device[len(pushes):][free]]),
        "push_ts": np.concatenate([push_ts, nan]),
        "push_row": np.concatenate([pushes["row"].to_numpy(np.float64)[order], nan]),
        "push_bytes": np.concatenate([pushes["push_bytes"].to_numpy(np.float64)[order], nan]),
        "checkin_ts": np.concatenate([ts[pick], ts[free]]),
        "checkin_row": np.concatenate([row[pick], row[free]]),
        "mdm_server": np.concatenate([server[pick], server[free]]),
        "outcome": np.concatenate([OUTCOMES[outcome], np.full(len(free), "unsolicited_checkin", object)]),
        "detail": np.concatenate([why, np.where(ev_ok[free], None, detail[free])]),
    }


def _link_provider(push_ts: np.ndarray, flows: pd.DataFrame, packets: pd.DataFrame,
                   options: SequenceOptions) -> tuple[np.ndarray, np.ndarray]:
    """Each push takes the earliest untaken provider request within provider_window_s before it
    (first in, first out). Returns provider_ts and provider_row per row."""
    found_ts, found_row = np.full(len(push_ts), np.nan), np.full(len(push_ts), np.nan)
    provider = (flows["service"] == PROVIDER).fillna(False).to_numpy(bool)
    req = packets[provider[packets["row"].to_numpy()] & packets["c2s"].to_numpy(bool)].sort_values(["row", "ts"], kind="stable")
    if req.empty:
        return found_ts, found_row
    req = req[req.groupby("row").cumcount().to_numpy() >= HANDSHAKE_PACKETS].sort_values("ts", kind="stable")
    req_ts, req_row = req["ts"].to_numpy(np.float64), req["row"].to_numpy(np.float64)
    at = np.flatnonzero(~np.isnan(push_ts))
    at = at[np.argsort(push_ts[at], kind="stable")]
    pick = kernels.take_first_in(push_ts[at], req_ts, float(options.provider_window_s))
    hit = pick >= 0
    found_ts[at[hit]], found_row[at[hit]] = req_ts[pick[hit]], req_row[pick[hit]]
    return found_ts, found_row
