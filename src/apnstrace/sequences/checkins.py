"""MDM servers and the devices' check-in events (docs/sequences.md "MDM servers", "Check-in events")."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from ..options import SequenceOptions
from .rows import rows_of

NOT_MDM = ("apns", "dns")


def mdm_flows(flows: pd.DataFrame, pushes: pd.DataFrame, options: SequenceOptions) -> tuple[np.ndarray, bool]:
    """Which flows are MDM flows, and whether that was inferred (no flow classified mdm)."""
    tcp = (flows["transport"] == "tcp").to_numpy(bool)
    mdm = tcp & (flows["category"] == "mdm").fillna(False).to_numpy(bool)
    if mdm.any() or pushes.empty:
        return mdm, False
    # The server most often contacted first by pushed devices inside the window.
    candidates = tcp & ~flows["category"].isin(NOT_MDM).fillna(False).to_numpy(bool) \
        & ~flows["service"].fillna("").str.startswith("apns").to_numpy(bool)
    right = pd.DataFrame({"device_ip": flows["client_ip"].to_numpy(object)[candidates],
                          "ts": flows["ts_start"].to_numpy()[candidates],
                          "server": (flows["server_ip"].astype(str) + ":" + flows["server_port"].astype(str)).to_numpy(object)[candidates]})
    left = pushes[["device_ip", "push_ts"]].rename(columns={"push_ts": "ts"}).sort_values("ts")
    left["device_ip"] = left["device_ip"].astype(object)
    right["device_ip"] = right["device_ip"].astype(object)
    first = pd.merge_asof(left, right.sort_values("ts"), on="ts", by="device_ip", direction="forward",
                          allow_exact_matches=False, tolerance=options.window_s)
    if first["server"].notna().sum() == 0:
        return mdm, False
    server = first["server"].mode().iloc[0]
    label = (flows["server_ip"].astype(str) + ":" + flows["server_port"].astype(str)).to_numpy(object)
    return tcp & (label == server), True


def server_labels(flows: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """name (else address), with :port unless 443; for `rows` only (string work is the cost)."""
    name, ip = flows["server_name"].iloc[rows], flows["server_ip"].iloc[rows]
    name = name.astype(object).where(name.notna(), ip.astype(object))
    port = flows["server_port"].iloc[rows]
    return np.where(port.to_numpy() == 443, name.to_numpy(object), (name + ":" + port.astype(str)).to_numpy(object))


def checkin_events(flows: pd.DataFrame, mdm: np.ndarray, starts: pd.DataFrame, blocked: pd.DataFrame,
                   options: SequenceOptions) -> pd.DataFrame:
    """Columns: device_ip, ts, row (flow row), ok (got through), detail, server (the MDM server's label)."""
    # The blocked table's flow rows by position: a filtered copy of it (sentences and all) was
    # held to the end (engine_10m ~40 MB).
    flows_blocked = np.flatnonzero((blocked["flow_id"].notna() & ~blocked["reason"].str.startswith("dns_")).fillna(False)
                                   .to_numpy(bool)) if len(blocked) else np.empty(0, np.int64)
    flow_id = flows["flow_id"].to_numpy()
    is_blocked = flows["blocked"].fillna(False).to_numpy(bool)
    seen_start = flows["_syns"].to_numpy() > 0 if "_syns" in flows else np.ones(len(flows), bool)
    # New MDM connections whose start was captured.
    new = np.flatnonzero(mdm & seen_start)
    detail = np.full(len(new), None, object)
    if len(flows_blocked):
        # a blocked flow's reason and sentence (the last row if the blocked table named a flow twice)
        ids = blocked["flow_id"].iloc[flows_blocked].astype(np.int64).to_numpy()
        last = len(ids) - 1 - np.unique(ids[::-1], return_index=True)[1]
        at = pd.Index(ids[last]).get_indexer(flow_id[new])
        hit = is_blocked[new] & (at >= 0)
        said = flows_blocked[last[at[hit]]]             # joined for these rows only: a scan blocks ~30 % of flows
        said = _rows_at(blocked, said, ("reason", "sentence"))
        detail[hit] = (said["reason"] + ": " + said["sentence"]).to_numpy(object)
    parts = [pd.DataFrame({"device_ip": flows["client_ip"].iloc[new].to_numpy(object), "ts": flows["ts_start"].to_numpy()[new],
                           "row": new, "ok": ~is_blocked[new], "server": server_labels(flows, new), "detail": detail})]
    # New requests on kept-alive MDM connections.
    s = starts[mdm[starts["row"].to_numpy()] & starts["c2s"].to_numpy(bool)]
    s = s[np.isfinite(s["gap"].to_numpy()) & (s["gap"].to_numpy() >= options.checkin_idle_s)]
    rows = s["row"].to_numpy()
    parts.append(pd.DataFrame({"device_ip": flows["client_ip"].iloc[rows].to_numpy(object), "ts": s["ts"].to_numpy(), "row": rows,
                               "ok": np.ones(len(rows), bool), "detail": None, "server": server_labels(flows, rows)}))
    # Failed lookups of MDM names.
    if len(blocked):
        dns = _rows_at(blocked, np.flatnonzero((blocked["reason"].str.startswith("dns_") & (blocked["category"] == "mdm"))
                                               .fillna(False).to_numpy(bool)),
                       ("client_ip", "ts", "flow_id", "reason", "sentence", "server_name"))
        at = rows_of(flow_id, dns["flow_id"].to_numpy(np.int64))     # no hash table over every flow (~40 MB at 1M)
        parts.append(pd.DataFrame({"device_ip": dns["client_ip"].to_numpy(object), "ts": dns["ts"].to_numpy(),
                                   "row": at, "ok": np.zeros(len(dns), bool),
                                   "detail": (dns["reason"] + ": " + dns["sentence"]).to_numpy(object),
                                   "server": dns["server_name"].to_numpy(object)}))
    events = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else parts[0]
    return events.sort_values(["device_ip", "ts"], kind="stable").reset_index(drop=True)


def _rows_at(frame: pd.DataFrame, rows: np.ndarray, names: tuple[str, ...]) -> pd.DataFrame:
    """frame[names].iloc[rows] (index 0..), Arrow columns taken a chunk at a time: the blocked
    table's sentences come in slices, and a take over all the chunks at once (pandas' or Arrow's)
    joins them first: ~32 MB on engine_10m for a few rows."""
    return pd.DataFrame({name: _take(frame[name], rows) for name in names}, copy=False)


def _take(column: pd.Series, rows: np.ndarray):
    values = column.array
    if isinstance(values, pd.arrays.ArrowExtensionArray):
        return type(values)(take_by_chunk(_chunked(pa.array(values)), rows), dtype=values.dtype)
    return column.iloc[rows].to_numpy() if isinstance(values, pd.arrays.NumpyExtensionArray) else values.take(rows)


def _chunked(values) -> pa.ChunkedArray:
    return values if isinstance(values, pa.ChunkedArray) else pa.chunked_array([values])


def take_by_chunk(values: pa.ChunkedArray, rows: np.ndarray) -> pa.Array:
    """values.take(rows), each chunk taking its own rows (a loop over the chunks, not the rows)."""
    rows = np.asarray(rows, np.int64)
    ends = np.cumsum([len(chunk) for chunk in values.chunks], dtype=np.int64)
    chunk_of = np.searchsorted(ends, rows, side="right")
    pieces, order = [pa.array([], values.type)], [np.empty(0, np.int64)]
    for k in np.unique(chunk_of).tolist():
        at = np.flatnonzero(chunk_of == k)
        pieces.append(values.chunk(k).take(pa.array(rows[at] - (ends[k] - len(values.chunk(k))))))
        order.append(at)
    # Back in the order asked: the pieces are rows' values grouped by chunk.
    return pa.concat_arrays(pieces).take(pa.array(np.argsort(np.concatenate(order), kind="stable")))
