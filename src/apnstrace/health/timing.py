"""result.timing and result.courier: how long each step took, per category and per device,
and how steady each device's APNs courier connection is (docs/blocked.md "Timing")."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .. import schema
from .dns_failures import WATCHED

METRICS = ("rtt_ms", "tls_handshake_ms", "ttfb_ms")
COURIER = "apns-courier"
LONG_LIVED_S = 600.0         # connections long enough to show the keepalive rhythm
FLAP_MIN_CONNECTIONS = 3
FLAP_RECONNECTS_PER_HOUR = 4.0
IDLE_CUT_MIN_S = 30.0        # middlebox idle timers are tens of seconds and up
MIN_RATE_SPAN_S = 600.0      # reconnects per hour need at least this much time to mean anything


def timing_table(flows: pd.DataFrame, sequences: pd.DataFrame | None = None,
                 flow_parts: list[pd.DataFrame] | None = None) -> pd.DataFrame:
    """schema.TIMING rows: per category, then per device (clients with a flow in an Apple category);
    with sequences, push -> check-in latency, pushes and check-in rate (docs/sequences.md).
    `flow_parts`: flow_timing(flows), when already computed (pipeline.py runs it before the
    blocked table and the sequences, which it does not need)."""
    if flows.empty:
        return schema.to_frame(None, schema.TIMING)
    parts = list(flow_parts) if flow_parts is not None else flow_timing(flows)
    if sequences is not None and sequences["push_ts"].notna().any():
        parts += _push_rows(sequences)
    table = pd.concat(parts, ignore_index=True)
    table = table.sort_values(["scope", "key", "metric"], kind="stable")
    return schema.to_frame({c.name: table[c.name].to_numpy() for c in schema.TIMING}, schema.TIMING)


def flow_timing(flows: pd.DataFrame) -> list[pd.DataFrame]:
    """timing_table's rows from the flows alone (per category, per device), unsorted."""
    if flows.empty:
        return []
    courier = _courier_connections(flows).to_numpy(bool)
    # The rows with a value only, each metric read there: most flows (a scan's unanswered SYNs)
    # have none, and four float64 columns of every flow were ~32 MB beside the blocked table
    # (engine_10m: 265K of 988K rows; flow_timing's traced peak 75 -> 56 MB). The summaries
    # see the same values in the same order.
    rows = _rows_with_value(flows, courier)
    values = {m: _as_float(flows[m].iloc[rows]) for m in METRICS}
    values["courier_lifetime_s"] = _as_float(flows["duration"].iloc[rows].where(courier[rows]))
    devices = flows["client_ip"][flows["category"].isin(WATCHED).to_numpy(bool)].unique()
    mine = flows["client_ip"].isin(devices).to_numpy(bool)
    parts = [_summary_of(values, flows["category"].iloc[rows], np.ones(len(rows), bool), "category", missing="other")]
    if mine.any():
        parts.append(_summary_of(values, flows["client_ip"].iloc[rows], mine[rows], "device"))
    return parts


def _as_float(column: pd.Series) -> np.ndarray:
    """A metric as float64, missing (or not a number) as NaN."""
    # A Float64 column in one copy, not to_numeric's and astype's too (engine_10m per metric +18 -> +8 MB RSS)
    if isinstance(column.dtype, pd.Float64Dtype):
        return column.to_numpy(np.float64, na_value=np.nan)
    return pd.to_numeric(column, errors="coerce").astype("float64").to_numpy()


def _rows_with_value(flows: pd.DataFrame, courier: np.ndarray) -> np.ndarray:
    """Positions of the flows with a value in any metric (a courier connection has its lifetime),
    one metric at a time: a single float64 column is converted at once."""
    any_value = courier.copy()
    for m in METRICS:
        any_value |= ~np.isnan(_as_float(flows[m]))
    return np.flatnonzero(any_value)


def _summary_of(values: dict[str, np.ndarray], keys: pd.Series, rows: np.ndarray, scope: str,
                missing: str | None = None) -> pd.DataFrame:
    """_summary of `values` keyed by `keys` (missing ones: `missing`, or no row) at the `rows` mask,
    built from the rows that have a value only: most flows (a scan's unanswered SYNs) have none.
    Grouped on each key's rank among the distinct keys, which sorts as the keys do: every flow's
    key as a Python string costs ~60 bytes a flow."""
    none = np.ones(len(keys), bool)
    for v in values.values():
        none &= np.isnan(v)
    have = np.flatnonzero(rows & ~none)
    codes, uniques = pd.factorize(keys.iloc[have])               # missing: -1
    names = np.asarray(uniques.astype(object), dtype=object)
    if missing is not None:
        names = np.append(names, missing)
        codes = np.where(codes < 0, len(names) - 1, codes)
    distinct, rank = np.unique(names, return_inverse=True)       # sorted, as groupby sorts the keys
    rank = np.append(rank.astype(np.int64), -1)[codes]            # code -1 (missing): rank -1
    # Each metric summarised alone (its values only beside its sort), then the rows put in the
    # order of one integer per (key, metric): the keys' order, then the metric names'.
    metrics = sorted(values)
    found, seen = [], 0
    for metric, values_of in values.items():
        on = values_of[have]
        at = np.flatnonzero(~np.isnan(on))
        seen += len(at)
        at = at[rank[at] >= 0]                                    # groupby drops missing keys
        keys, count, (p50, p95), top = group_quantiles(rank[at], on[at], (0.5, 0.95))
        found.append((keys * len(metrics) + metrics.index(metric), count, p50, p95, top))
    if not seen:
        return pd.DataFrame(columns=[c.name for c in schema.TIMING])
    group, count, p50, p95, top = (np.concatenate(column) for column in zip(*found))
    order = np.argsort(group, kind="stable")
    group = group[order]
    return pd.DataFrame({"scope": scope, "key": distinct[group // len(metrics)],
                         "metric": np.array(metrics, dtype=object)[group % len(metrics)], "count": count[order],
                         "p50": p50[order], "p95": p95[order], "max": top[order]})


def group_quantiles(group: np.ndarray, v: np.ndarray, qs: Sequence[float]
                    ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], np.ndarray]:
    """pd.Series(v).groupby(group, sort=True): its groups, size(), quantile(q) for each q and max(),
    for values without NaN, by one sort of (group, value): pandas' groupby quantile held ~85 bytes
    a value (engine_10m's per-category summary +69 -> +39 MB RSS, per metric; flow_timing +122 -> +89).
    Each quantile as pandas' (linear interpolation between the values at floor and floor + 1 of
    q * (n - 1), the same float operations), so the figures are bit for bit the same."""
    order = np.lexsort((v, group))
    ordered, sorted_group = v[order], group[order]
    del order
    starts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]]) if len(v) else np.empty(0, np.int64)
    at = sorted_group[starts]
    del sorted_group
    count = np.diff(np.append(starts, len(v)))
    out = []
    for q in qs:
        place = q * (count - 1).astype(np.float64)
        low = place.astype(np.int64)                                  # truncated, as pandas' cast
        frac = np.fmod(place, 1.0)
        value = ordered[starts + low]
        following = ordered[starts + np.minimum(low + 1, count - 1)]
        out.append(np.where(frac == 0.0, value, value + (following - value) * frac))
    return at, count.astype(np.int64), out, ordered[starts + count - 1]


def _push_rows(sequences: pd.DataFrame) -> list[pd.DataFrame]:
    """push_checkin_s, pushes and checkin_rate, per device and for all devices (category apns)."""
    pushed = sequences[sequences["push_ts"].notna()]
    latency = pd.DataFrame({"push_checkin_s": pushed["latency_s"].astype("float64").to_numpy()})
    parts = [_summary(latency, np.full(len(pushed), "apns", dtype=object), "category"),
             _summary(latency, pushed["device_ip"].astype(object).to_numpy(), "device")]
    checked = (pushed["outcome"] == "checked_in").to_numpy()
    for scope, keys in (("category", np.full(len(pushed), "apns", dtype=object)),
                        ("device", pushed["device_ip"].astype(object).to_numpy())):
        g = pd.DataFrame({"key": keys, "ok": checked}).groupby("key", sort=True)["ok"]
        n, rate = g.size(), g.mean()
        for metric, value in (("pushes", np.nan), ("checkin_rate", None)):
            v = rate.to_numpy() if value is None else np.full(len(n), np.nan)
            parts.append(pd.DataFrame({"scope": scope, "key": n.index.to_numpy(object), "metric": metric,
                                       "count": n.to_numpy(), "p50": v, "p95": v, "max": v}))
    return parts


def _summary(values: pd.DataFrame, keys: np.ndarray, scope: str) -> pd.DataFrame:
    long = values.assign(key=keys).melt(id_vars="key", var_name="metric", value_name="v").dropna(subset=["v"])
    if long.empty:
        return pd.DataFrame(columns=[c.name for c in schema.TIMING])
    return _grouped(long, scope)


def _grouped(long: pd.DataFrame, scope: str) -> pd.DataFrame:
    grouped = long.groupby(["key", "metric"], sort=True)["v"]
    out = pd.DataFrame({"count": grouped.size(), "p50": grouped.quantile(0.5), "p95": grouped.quantile(0.95),
                        "max": grouped.max()}).reset_index()
    out.insert(0, "scope", scope)
    return out


def _courier_connections(flows: pd.DataFrame) -> pd.Series:
    """Courier flows that were connections (the server answered), not blocked attempts."""
    blocked = flows["blocked"].fillna(False) if "blocked" in flows else False
    return ((flows["service"] == COURIER) & (flows["transport"] == "tcp") & (flows["pkts_s2c"] > 0)
            & ~flows["state"].isin(["S0", "REJ", "RSTOS0"]) & ~blocked).fillna(False)


def courier_table(flows: pd.DataFrame) -> pd.DataFrame:
    """schema.COURIER: one row per device with courier connections."""
    if flows.empty:
        return schema.to_frame(None, schema.COURIER)
    conn = flows[_courier_connections(flows).to_numpy(bool)]
    if conn.empty:
        return schema.to_frame(None, schema.COURIER)
    s_rst = conn["_s_rst_ts"] if "_s_rst_ts" in conn else pd.Series(np.nan, index=conn.index)
    c_ndata = conn["_c_ndata"] if "_c_ndata" in conn else pd.Series(0, index=conn.index)
    work = pd.DataFrame({
        "device_ip": conn["client_ip"].astype(str).to_numpy(), "start": conn["ts_start"].to_numpy(),
        "end": conn["ts_end"].to_numpy(), "life": conn["duration"].to_numpy(),
        "by_network": np.isfinite(s_rst.to_numpy(float)),
        "keepalive": np.where(conn["duration"].to_numpy() > LONG_LIVED_S,
                              conn["duration"].to_numpy() / np.maximum(c_ndata.to_numpy(float), 1.0), np.nan)})
    # An idle cut: the network ended a connection that had been up a while (not one refused at once).
    work["idle_cut"] = work["by_network"] & (work["life"] >= IDLE_CUT_MIN_S)
    # A reconnect opens after every earlier connection of the device ended (parallel ones are not).
    work = work.sort_values(["device_ip", "start"], kind="stable")
    ended = work.groupby("device_ip")["end"].cummax()
    before = ended.groupby(work["device_ip"]).shift(1)
    work["reconnect"] = before.notna().to_numpy() & (work["start"].to_numpy() >= before.to_numpy(float))
    g = work.groupby("device_ip", sort=True)
    out = pd.DataFrame({
        "connections": g.size(), "lifetime_p50_s": g["life"].median(), "lifetime_max_s": g["life"].max(),
        "closed_by_network": g["by_network"].sum().astype(np.int64), "span_h": (g["end"].max() - g["start"].min()) / 3600.0,
        "keepalive_s": g["keepalive"].median(), "idle_cuts": g["idle_cut"].sum(), "reconnects": g["reconnect"].sum(),
    }).reset_index()
    # A rate over a few seconds says nothing: only spans of MIN_RATE_SPAN_S or more get one.
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = out["reconnects"] / out["span_h"]
    out["reconnects_per_hour"] = np.where(out["span_h"] * 3600 >= MIN_RATE_SPAN_S, rate, np.nan)
    out["flapping"] = ((out["connections"] >= FLAP_MIN_CONNECTIONS)
                       & (out["reconnects_per_hour"] > FLAP_RECONNECTS_PER_HOUR)
                       & (out["idle_cuts"] * 2 > out["connections"]))
    out["verdict"] = [_verdict(r) for r in out.itertuples(index=False)]
    data = {c.name: out[c.name].to_numpy() for c in schema.COURIER}
    for name in ("keepalive_s", "reconnects_per_hour"):
        values = out[name].to_numpy(float)
        data[name] = pd.arrays.FloatingArray(np.nan_to_num(values), np.isnan(values))
    return schema.to_frame(data, schema.COURIER)


def _verdict(r) -> str:
    keepalive = f", keepalive about every {_duration(r.keepalive_s)}" if np.isfinite(r.keepalive_s) else ""
    if r.connections == 1:
        return f"{r.device_ip}: 1 courier connection, up {_duration(r.lifetime_p50_s)}{keepalive}"
    rate = f", {r.reconnects_per_hour:.1f} reconnects/h" if np.isfinite(r.reconnects_per_hour) else ""
    head = (f"{r.device_ip}: {r.connections} courier connections over {_duration(r.span_h * 3600)} "
            f"({r.reconnects} reconnect{'s' if r.reconnects != 1 else ''}{rate}), median {_duration(r.lifetime_p50_s)}")
    if r.flapping:
        return (f"{head}, {r.closed_by_network} cut by a RST from the network side"
                " - flapping: a middlebox idle timeout is shorter than the device's keepalive")
    if not np.isfinite(r.reconnects_per_hour):
        return f"{head}{keepalive} (too short a span to judge steadiness)"
    return f"{head}{keepalive} - steady"


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
