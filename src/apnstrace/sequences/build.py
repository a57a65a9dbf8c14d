"""result.sequences: each push matched to the device's check-in, the provider request before it
and the follow-ups after it (docs/sequences.md)."""
from __future__ import annotations

from bisect import bisect_left, bisect_right

import numpy as np
import pandas as pd

from .. import schema
from ..flows.finalize import UID
from ..options import SequenceOptions
from .activity import Activity
from .checkins import checkin_events, mdm_flows
from .pushes import find_pushes

PROVIDER = "apns-provider"
FOLLOWUP_CATEGORIES = ("sus", "file_share", "http_distribution")
HANDSHAKE_PACKETS = 2          # a provider flow's first client payloads are its TLS handshake


def build_sequences(flows: pd.DataFrame, blocked: pd.DataFrame, activity: Activity,
                    options: SequenceOptions) -> pd.DataFrame:
    """schema.SEQUENCES rows from a classified flows frame (with its hidden columns) that went
    through health.block_reasons, the blocked table, and what ActivityCollector kept."""
    if flows.empty:
        return schema.to_frame(None, schema.SEQUENCES)
    packets = _on_flows(activity.apns_packets(), flows)
    starts = _on_flows(activity.starts(), flows)
    pushes = find_pushes(flows, packets, options).sort_values(["push_ts", "device_ip"], kind="stable")
    mdm, inferred = mdm_flows(flows, pushes, options)
    events = checkin_events(flows, mdm, starts, blocked, options)
    rows = _match(pushes, events, options)
    if not rows:
        return schema.to_frame(None, schema.SEQUENCES)
    out = pd.DataFrame(rows)
    _link_provider(out, flows, packets, options)
    _followups(out, flows, options)
    flow_id = flows["flow_id"].to_numpy()
    for name, source in (("push_flow_id", "push_row"), ("checkin_flow_id", "checkin_row"), ("provider_flow_id", "provider_row")):
        at = out[source].to_numpy(float)
        ok = np.isfinite(at) & (at >= 0)
        out[name] = pd.arrays.IntegerArray(np.where(ok, flow_id[np.where(ok, at, 0).astype(np.int64)], 0), ~ok)
    out["mdm_server_inferred"] = inferred
    out["latency_s"] = out["checkin_ts"] - out["push_ts"]
    out.loc[out["outcome"] != "checked_in", "latency_s"] = np.nan
    out["_order"] = out["push_ts"].fillna(out["checkin_ts"])
    out = out.sort_values(["_order", "device_ip"], kind="stable")
    return schema.to_frame({c.name: out[c.name].to_numpy() for c in schema.SEQUENCES}, schema.SEQUENCES)


def _on_flows(events: pd.DataFrame, flows: pd.DataFrame) -> pd.DataFrame:
    """Put recorded events on their flow rows; `c2s` says the device (client) sent it."""
    row = pd.Index(flows[UID].to_numpy()).get_indexer(events["uid"].to_numpy(np.int64)) if len(events) else np.empty(0, int)
    events = events[row >= 0].copy()
    events["row"] = row[row >= 0]
    client_is_a = flows["_client_is_a"].to_numpy(bool)
    events["c2s"] = (events["dir"].to_numpy() == 0) == client_is_a[events["row"].to_numpy()]
    return events


def _match(pushes: pd.DataFrame, events: pd.DataFrame, options: SequenceOptions) -> list[dict]:
    """Per device in time order: each push takes the check-in events in its window that no
    earlier push or session took; leftovers become unsolicited check-in sessions."""
    window = options.window_s
    out: list[dict] = []
    by_device = {d: g for d, g in events.groupby("device_ip", sort=False)} if len(events) else {}
    for device, group in pushes.groupby("device_ip", sort=False):
        ev = by_device.pop(device, None)
        ts = ev["ts"].to_numpy() if ev is not None else np.empty(0)
        taken = np.zeros(len(ts), bool)
        session_end = -np.inf
        for push in group.itertuples(index=False):
            row = dict(device_ip=device, push_ts=push.push_ts, push_row=push.row, push_bytes=push.push_bytes,
                       checkin_ts=np.nan, checkin_row=np.nan, mdm_server=None, detail=None)
            lo, hi = bisect_right(ts, push.push_ts), bisect_right(ts, push.push_ts + window)
            free = [i for i in range(lo, hi) if not taken[i]]
            good = [i for i in free if ev["ok"].iat[i]]
            if good:
                i = good[0]
                row.update(outcome="checked_in", checkin_ts=ts[i], checkin_row=ev["row"].iat[i],
                           mdm_server=ev["server"].iat[i])
                session_end = ts[i] + window
                taken[lo:bisect_right(ts, session_end)] = True
            elif free:
                i = free[0]
                row.update(outcome="checkin_blocked", checkin_ts=ts[i], checkin_row=ev["row"].iat[i],
                           mdm_server=ev["server"].iat[i], detail=ev["detail"].iat[i])
                taken[free] = True
            else:
                row["outcome"] = "no_checkin"
                if push.push_ts <= session_end:
                    row["detail"] = "arrived during a check-in session already under way"
            out.append(row)
        if ev is not None:
            out += _unsolicited(device, ev[~taken], window)
    for device, ev in by_device.items():
        out += _unsolicited(device, ev, window)
    return out


def _unsolicited(device: str, ev: pd.DataFrame, window: float) -> list[dict]:
    rows, until = [], -np.inf
    for e in ev.itertuples(index=False):
        if e.ts <= until:
            continue
        until = e.ts + window
        rows.append(dict(device_ip=device, push_ts=np.nan, push_row=np.nan, push_bytes=np.nan,
                         checkin_ts=e.ts, checkin_row=e.row, mdm_server=e.server, outcome="unsolicited_checkin",
                         detail=None if e.ok else e.detail))
    return rows


def _link_provider(out: pd.DataFrame, flows: pd.DataFrame, packets: pd.DataFrame, options: SequenceOptions) -> None:
    """Each push takes the earliest untaken provider request within provider_window_s before it
    (first in, first out)."""
    out["provider_ts"], out["provider_row"] = np.nan, np.nan
    provider = (flows["service"] == PROVIDER).fillna(False).to_numpy(bool)
    req = packets[provider[packets["row"].to_numpy()] & packets["c2s"].to_numpy(bool)].sort_values(["row", "ts"], kind="stable")
    if req.empty:
        return
    req = req[req.groupby("row").cumcount().to_numpy() >= HANDSHAKE_PACKETS].sort_values("ts", kind="stable")
    req_ts, req_row = req["ts"].to_numpy(), req["row"].to_numpy()
    taken = np.zeros(len(req_ts), bool)
    pushes = out["push_ts"].notna().to_numpy()
    for i in np.flatnonzero(pushes)[np.argsort(out["push_ts"].to_numpy()[pushes], kind="stable")].tolist():
        p = out["push_ts"].iat[i]
        j = bisect_left(req_ts, p - options.provider_window_s)
        ceiling = bisect_right(req_ts, p)
        while j < ceiling and taken[j]:
            j += 1
        if j < ceiling:
            taken[j] = True
            out.iat[i, out.columns.get_loc("provider_ts")] = req_ts[j]
            out.iat[i, out.columns.get_loc("provider_row")] = req_row[j]


def _followups(out: pd.DataFrame, flows: pd.DataFrame, options: SequenceOptions) -> None:
    out["followups"], out["followups_blocked"] = None, pd.NA
    checked = out[out["outcome"] == "checked_in"]
    if checked.empty:
        return
    fetch = flows[flows["category"].isin(FOLLOWUP_CATEGORIES).fillna(False).to_numpy(bool)]
    cand = pd.DataFrame({"device_ip": fetch["client_ip"].astype(object).to_numpy(), "ts": fetch["ts_start"].to_numpy(),
                         "category": fetch["category"].astype(object).to_numpy(),
                         "blocked": fetch["blocked"].fillna(False).to_numpy(bool)})
    pairs = checked[["device_ip", "checkin_ts"]].reset_index().merge(cand, on="device_ip")
    pairs = pairs[(pairs["ts"] > pairs["checkin_ts"]) & (pairs["ts"] <= pairs["checkin_ts"] + options.window_s)]
    out.loc[checked.index, "followups_blocked"] = 0
    for idx, group in pairs.sort_values("ts", kind="stable").groupby("index", sort=False):
        out.at[idx, "followups"] = ",".join(dict.fromkeys(group["category"]))
        out.at[idx, "followups_blocked"] = int(group["blocked"].sum())
