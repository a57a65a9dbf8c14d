"""The report's charts: matplotlib Figures built from an apnstrace Result.

Every chart is ``name(result, **options) -> matplotlib.figure.Figure``, made with the object
API (``matplotlib.figure.Figure``, never pyplot), so charts can be drawn in threads and
headless; ``png_bytes`` renders with Agg. Data preparation is vectorized (numpy / pandas)
and artists are drawn in batches (one collection per style), so a capture with hundreds of
thousands of flows draws in well under a second per chart.

Colours, marker styles and the helpers every chart shares are in chart_style.py (colours
from ``colours.toml``): a category has the same colour in every chart. An empty input gives a figure that says what is missing.
"""
from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter, PercentFormatter

from ..health.timing import MIN_RATE_SPAN_S
from .chart_style import (
    APPLE_CATEGORIES,
    DPI,
    MERGE_ABOVE,
    OUTCOME_LABELS,
    _blocked_patch,
    _bools,
    _category_order,
    _category_rank,
    _category_patch,
    _count,
    _dates,
    _empty,
    _figure,
    _floats,
    _human_bytes,
    _legend_below,
    _merge_bars,
    _rects,
    _rgba_for,
    _title,
    _utc_axis,
    category_colour,
    styles,
    warning_colour,
)
from .units import seconds_text

if TYPE_CHECKING:
    from ..pipeline import Result

# ---------------------------------------------------------------------------------------
# Timeline

def _device_ranking(result: Result) -> pd.DataFrame:
    """One row per candidate device with what makes it worth showing, best first."""
    flows, seqs, blocked = result.flows, result.sequences, result.blocked
    client = flows["client_ip"].astype(object)
    apple = flows["category"].isin(APPLE_CATEGORIES).to_numpy(dtype=bool)
    counts = pd.DataFrame({
        "flows": client.value_counts(),
        "apple_flows": client[apple].value_counts(),
    })
    if len(blocked):
        b_apple = blocked["category"].isin(APPLE_CATEGORIES).to_numpy(dtype=bool)
        b_client = blocked["client_ip"].astype(object)
        counts["apple_blocked"] = b_client[b_apple].value_counts()
        counts["other_blocked"] = b_client[~b_apple].value_counts()
    if len(seqs):
        device = seqs["device_ip"].astype(object)
        outcome = seqs["outcome"].astype(object)
        counts["events"] = device.value_counts()
        counts["pushes"] = device[seqs["push_ts"].notna().to_numpy(dtype=bool)].value_counts()
        counts["failed"] = device[outcome.isin(["no_checkin", "checkin_blocked"]).to_numpy(dtype=bool)].value_counts()
    for col in ("apple_blocked", "other_blocked", "events", "pushes", "failed"):
        if col not in counts:
            counts[col] = 0
    counts = counts.fillna(0).astype(np.int64)
    if len(counts) == 0:
        return counts
    interesting = (counts["apple_flows"] + counts["events"] + counts["apple_blocked"]) > 0
    if interesting.any():
        counts = counts[interesting]
    problems = counts["failed"] + counts["apple_blocked"]
    order = np.lexsort([
        np.arange(len(counts)),                        # stable: address order last
        -counts["flows"].to_numpy(),
        -counts["other_blocked"].to_numpy(),
        -counts["apple_flows"].to_numpy(),
        -counts["events"].to_numpy(),
        -problems.to_numpy(),
        -(counts["events"] > 0).to_numpy().astype(int),
        -(problems > 0).to_numpy().astype(int),
    ])
    return counts.iloc[order]


def timeline(result: Result, devices: Sequence[str] | None = None, max_devices: int = 20) -> Figure:
    """Per-device timeline: each device a row, its flows (as client) as bars coloured by
    category, blocked flows hatched with a warning edge and an X at their start, pushes (v)
    and check-ins (o; X when blocked) marked above the bars.

    Without ``devices``, picks at most ``max_devices`` devices: those with blocked Apple
    flows or failed pushes first, then those with pushes / check-ins, then the most Apple
    flows; the title says how many were left out.
    """
    title = "Per-device timeline"
    flows = result.flows
    if devices is not None:
        shown = list(dict.fromkeys(str(d) for d in devices))
        ranking_total = None
    else:
        if len(flows) == 0:
            return _empty(title, "no flows in this capture")
        ranking = _device_ranking(result)
        shown = list(ranking.index[:max_devices])
        ranking_total = len(ranking)
    if not shown:
        return _empty(title, "no devices to show")

    row_of = {d: i for i, d in enumerate(shown)}
    client = flows["client_ip"].astype(object)
    sel = client.isin(row_of).to_numpy(dtype=bool)
    f = flows.loc[sel, ["ts_start", "duration", "category", "blocked"]]
    rows = client[sel].map(row_of).to_numpy(dtype=float)
    start = _floats(f["ts_start"])
    dur = np.nan_to_num(_floats(f["duration"]), nan=0.0)
    blocked_mask = _bools(f["blocked"])

    seqs = result.sequences
    s_dev = seqs["device_ip"].astype(object)
    s_sel = s_dev.isin(row_of).to_numpy(dtype=bool)
    s_rows = s_dev[s_sel].map(row_of).to_numpy(dtype=float)
    push_ts = _floats(seqs["push_ts"])[s_sel]
    checkin_ts = _floats(seqs["checkin_ts"])[s_sel]
    outcome = seqs["outcome"].astype(object)[s_sel].to_numpy()

    times = np.concatenate([start, start + dur, push_ts[~np.isnan(push_ts)], checkin_ts[~np.isnan(checkin_ts)]])
    if times.size == 0:
        t0 = t1 = 0.0
    else:
        t0, t1 = float(np.nanmin(times)), float(np.nanmax(times))
    span = max(t1 - t0, 1.0)

    n_rows = len(shown)
    fig = _figure(max(3.0, 1.6 + 0.5 * n_rows))
    if ranking_total is None or ranking_total <= n_rows:
        subtitle = f"{_count(n_rows, 'device')}, {_count(int(sel.sum()), 'flow')} they started"
    else:
        subtitle = (f"{n_rows} of {ranking_total:,} devices shown ({ranking_total - n_rows:,} left out): "
                    f"blocked flows and failed pushes first, then pushes and check-ins, then most Apple flows")
    _title(fig, title, subtitle)
    ax = fig.add_subplot()

    # Flow bars: one collection for the flows that got through, one for the blocked ones.
    # A flow too short to see gets a minimum width. Long-lived flows (a courier that spans
    # the capture) are a thin band, so a taller short bar drawn over or under one stays readable.
    min_w = span * 0.004 / 86400.0
    x0 = _dates(start)
    w = np.maximum(dur / 86400.0, min_w)
    colours = _rgba_for(f["category"])
    bar_h, band_h = 0.5, 0.2
    long_lived = dur > 0.2 * span
    rank = _category_rank(f["category"])
    order = _draw_order(long_lived, rank, w)
    ok = order[~blocked_mask[order]]
    bad = order[blocked_mask[order]]
    heights = np.where(long_lived, band_h, bar_h)
    codes = pd.Categorical(f["category"].astype(object)).codes.astype(np.int64) + 1
    if ok.size > MERGE_ABOVE or bad.size > MERGE_ABOVE:
        # Too many bars to draw one by one: merge those that touch at chart resolution.
        w = w.copy()
        gap = span / 1500 / 86400.0
        merged = []
        for part in (ok, bad):
            keep, right = _merge_bars(rows[part], codes[part] * 2 + long_lived[part], x0[part],
                                      x0[part] + w[part], gap)
            w[part[keep]] = right - x0[part[keep]]
            kept = part[keep]
            merged.append(kept[_draw_order(long_lived[kept], rank[kept], w[kept])])
        ok, bad = merged
    ax.add_collection(PolyCollection(_rects(x0[ok], w[ok], rows[ok], heights[ok]), facecolors=colours[ok],
                                     edgecolors="white", linewidths=0.4, gid="flows"))
    bstyle = styles()["blocked"]
    if bad.size:
        ax.add_collection(PolyCollection(_rects(x0[bad], w[bad], rows[bad], bar_h), facecolors=colours[bad],
                                         edgecolors=bstyle["edgecolor"], linewidths=bstyle["linewidth"],
                                         hatch=bstyle["hatch"], gid="blocked_flows", zorder=2.5))
        # Blocked flows too short for their hatching to show get a marker on top.
        small = bad[w[bad] * 86400.0 < 0.015 * span]
        if small.size:
            ax.scatter(x0[small] + w[small] / 2, rows[small], marker=bstyle["marker"],
                       s=bstyle["markersize"] ** 2, color=bstyle["markercolor"], edgecolors="white",
                       linewidths=0.6, zorder=4, gid="blocked_markers")

    # Pushes just above the bars, check-ins just below.
    push_y = s_rows - bar_h / 2 - 0.15
    checkin_y = s_rows + bar_h / 2 + 0.15
    p = styles()["push"]
    has_push = ~np.isnan(push_ts)
    if has_push.any():
        ax.scatter(_dates(push_ts[has_push]), push_y[has_push], marker=p["marker"], s=p["markersize"] ** 2,
                   color=p["color"], zorder=5, gid="pushes", clip_on=False)
    c = styles()["checkin"]
    ok_checkin = ~np.isnan(checkin_ts) & np.isin(outcome, ["checked_in", "unsolicited_checkin"])
    if ok_checkin.any():
        ax.scatter(_dates(checkin_ts[ok_checkin]), checkin_y[ok_checkin], marker=c["marker"], s=c["markersize"] ** 2,
                   facecolors=c["facecolor"], edgecolors=c["edgecolor"], linewidths=1.2, zorder=6,
                   gid="checkins", clip_on=False)
    cb = styles()["checkin_blocked"]
    bad_checkin = ~np.isnan(checkin_ts) & (outcome == "checkin_blocked")
    if bad_checkin.any():
        ax.scatter(_dates(checkin_ts[bad_checkin]), checkin_y[bad_checkin], marker=cb["marker"],
                   s=cb["markersize"] ** 2, facecolors=cb["color"], edgecolors=cb["edgecolor"], linewidths=1.2,
                   zorder=6, gid="checkins_blocked", clip_on=False)

    pad = span * 0.01 / 86400.0
    ax.set_xlim(_dates(t0) - pad, _dates(t1) + pad + min_w)
    ax.set_ylim(n_rows - 0.5 + 0.1, -0.5 - 0.1)
    ax.set_yticks(np.arange(n_rows), labels=shown, fontsize=9)
    ax.set_ylabel("device (client address)")
    ax.tick_params(axis="y", length=0)
    for y in np.arange(n_rows - 1) + 0.5:
        ax.axhline(y, color="#EEEEEE", linewidth=0.8, zorder=0)
    ax.grid(axis="x", color="#E5E5E5", linewidth=0.6)
    ax.set_axisbelow(True)
    _utc_axis(ax)

    present = _category_order(f["category"].dropna().astype(object).unique().tolist())
    handles: list = [_category_patch(cat) for cat in present]
    if bad.size:
        handles.append(_blocked_patch())
    if has_push.any():
        handles.append(Line2D([], [], linestyle="none", marker=p["marker"], color=p["color"],
                              markersize=p["markersize"], label="push"))
    if ok_checkin.any():
        handles.append(Line2D([], [], linestyle="none", marker=c["marker"], markerfacecolor=c["facecolor"],
                              markeredgecolor=c["edgecolor"], markersize=c["markersize"], label="check-in"))
    if bad_checkin.any():
        handles.append(Line2D([], [], linestyle="none", marker=cb["marker"], markerfacecolor=cb["color"],
                              markeredgecolor=cb["edgecolor"], markersize=cb["markersize"],
                              label="check-in blocked"))
    _legend_below(fig, handles, ncols=7)
    return fig


def _draw_order(long_lived: np.ndarray, rank: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Bars in drawing order: by category from the least to the most telling (so a short MDM or
    SUS flow is never hidden under concurrent generic Apple or other flows, nor a courier band
    under a call's "other" flows), within a category long-lived bands first, then longest first."""
    return np.lexsort([-width, ~long_lived, -rank])


# ---------------------------------------------------------------------------------------
# Latency

NICE_STEPS_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600)


def _latency_edges(lat: np.ndarray, bins: int | str | None) -> tuple[np.ndarray, bool]:
    """Bin edges and whether to use a log axis: round widths from 0 s (about 30 bins), or
    log-spaced when the latencies span more than two orders of magnitude."""
    lo, hi = float(lat[0]), float(lat[-1])
    if isinstance(bins, (int, np.integer)):
        return np.linspace(0.0, hi if hi > 0 else 1.0, int(bins) + 1), False
    if lo > 0 and hi / lo > 100 and lat.size > 1:
        return np.geomspace(lo, hi, 41), True
    step = next((st for st in NICE_STEPS_S if st >= max(hi, 1e-3) / 30), NICE_STEPS_S[-1])
    n = max(int(np.ceil(hi / step + 1e-9)), 1)
    if n * step <= hi:
        n += 1
    return np.arange(n + 1) * step, False


def latency(result: Result, bins: int | str | None = "auto") -> Figure:
    """Push -> check-in latency: histogram (count) with the cumulative share (ECDF) on a
    second axis and p50 / p95 marked, beside the count of pushes by outcome."""
    title = "Push \u2192 check-in latency"
    seqs = result.sequences
    if len(seqs) == 0:
        return _empty(title, "no pushes or check-ins in this capture")
    outcome = seqs["outcome"].astype(object).fillna("unknown")
    lat = _floats(seqs["latency_s"])
    lat = np.sort(lat[~np.isnan(lat)])
    pushes = int(seqs["push_ts"].notna().sum())
    counts = outcome.value_counts()

    fig = _figure(4.3)
    if lat.size:
        p50, p95 = np.percentile(lat, [50, 95])
        subtitle = (f"{_count(pushes, 'push', 'pushes')}, {lat.size:,} checked in: "
                    f"p50 {seconds_text(p50)}, p95 {seconds_text(p95)}, max {seconds_text(lat[-1])}")
    else:
        p50 = p95 = None
        subtitle = f"{_count(pushes, 'push', 'pushes')}, none followed by a check-in"
    _title(fig, title, subtitle)
    ax, ax_out = fig.subplots(1, 2, width_ratios=[2.3, 1])

    if lat.size:
        edges, log = _latency_edges(lat, bins)
        if log:
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FuncFormatter(_seconds_tick))
        hist, edges = np.histogram(lat, bins=edges)
        colour = styles()["outcomes"]["checked_in"]
        ax.bar(edges[:-1], hist, width=np.diff(edges), align="edge", color=colour, edgecolor="white",
               linewidth=0.5, label="check-ins", gid="latency_hist")
        ax.set_xlim(edges[0], edges[-1] if log else edges[-1] + (edges[-1] - edges[-2]))  # room after the last bar
        ax.set_xlabel("push \u2192 check-in latency (s)" + (", log scale" if log else ""))
        ax.set_ylabel("check-ins (count)")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax2 = ax.twinx()
        ecdf_y = np.arange(1, lat.size + 1) / lat.size * 100
        ax2.step(np.concatenate([[edges[0]], lat, [edges[-1]]]), np.concatenate([[0], ecdf_y, [100]]),
                 where="post", color="black", linewidth=1.4, label="cumulative share", gid="ecdf")
        ax2.set_ylim(0, 105)
        ax2.yaxis.set_major_formatter(PercentFormatter())
        ax2.set_ylabel("cumulative share of check-ins (%)")
        warn = warning_colour()
        for value, name, style in ((p50, "p50", "--"), (p95, "p95", ":")):
            ax.axvline(value, color=warn, linestyle=style, linewidth=1.6,
                       label=f"{name} {seconds_text(value)}", gid=name)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=4,
                  fontsize=9, frameon=False)
        ax.set_title("latency of the pushes that were followed by a check-in", fontsize=10)
        ax.grid(axis="y", color="#E5E5E5", linewidth=0.6)
        ax.set_axisbelow(True)
    else:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no push was followed by a check-in", ha="center", va="center",
                fontsize=12, color="#555555", transform=ax.transAxes)

    names = [o for o in OUTCOME_LABELS if o in counts.index] + sorted(set(counts.index) - set(OUTCOME_LABELS))
    values = [int(counts[o]) for o in names]
    outc = styles()["outcomes"]
    y = np.arange(len(names))
    ax_out.barh(y, values, color=[outc.get(o, category_colour("unknown")) for o in names],
                edgecolor="white", gid="outcomes")
    ax_out.set_yticks(y, labels=[OUTCOME_LABELS.get(o, o) for o in names])
    ax_out.invert_yaxis()
    ax_out.set_xlabel("pushes / check-ins (count)")
    ax_out.set_title("by outcome", fontsize=10)
    ax_out.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    ax_out.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    _annotate_bars(ax_out, y, np.asarray(values, dtype=float))
    ax_out.tick_params(axis="y", length=0)
    return fig


# ---------------------------------------------------------------------------------------
# Blocked

def _port_labels(groups: pd.DataFrame) -> pd.Series:
    """'TCP 5223', 'UDP 443', or 'DNS lookup' for DNS failures, per (already grouped) row."""
    port = groups["server_port"].astype("Int64").astype(str).replace("<NA>", "?")
    label = groups["transport"].fillna("?").str.upper() + " " + port
    return label.where(~groups["dns"].to_numpy(dtype=bool), "DNS lookup")


def blocked(result: Result, max_groups: int = 15) -> Figure:
    """Blocked flows and DNS failures: counts by category and port (left) and by reason,
    split by category (right), as horizontal bars in the category colours."""
    title = "Blocked flows and DNS failures"
    b = result.blocked
    if len(b) == 0:
        return _empty(title, "no blocked flows or DNS failures in this capture")
    # String work on the grouped rows only: a capture can have tens of thousands of rows.
    cat = b["category"].astype("string").fillna("unknown")
    reason = b["reason"].astype("string").fillna("unknown")
    dns = reason.str.startswith("dns_").to_numpy(dtype=bool)
    n_dns = int(dns.sum())
    keys = pd.DataFrame({"category": cat, "transport": b["transport"].astype("string"),
                         "server_port": b["server_port"].where(~dns), "dns": dns})
    raw = keys.value_counts(dropna=False).rename("n").reset_index()
    raw["port"] = _port_labels(raw).to_numpy()
    groups = raw.groupby(["category", "port"], sort=False)["n"].sum().reset_index()

    # Groups in the blocked table's order (Apple categories first: colours.toml order), then
    # by count; past max_groups, one "N more ports" row per category.
    cat_rank = {c: i for i, c in enumerate(_category_order(groups["category"].unique().tolist()))}
    groups = groups.iloc[np.lexsort([groups["port"].to_numpy(), -groups["n"].to_numpy(),
                                     groups["category"].map(cat_rank).to_numpy()])]
    rest = groups.iloc[max_groups:].groupby("category", sort=False)["n"].agg(["size", "sum"])
    groups = groups.iloc[:max_groups]
    by_reason = pd.DataFrame({"reason": reason, "category": cat}).value_counts().unstack(fill_value=0)
    by_reason = by_reason.loc[by_reason.sum(axis=1).sort_values(ascending=False, kind="stable").index]
    cats = _category_order(list(by_reason.columns))
    by_reason = by_reason[cats]

    n_rows = max(len(groups) + len(rest), len(by_reason))
    fig = _figure(max(3.2, 1.7 + 0.3 * n_rows))
    parts = [_count(len(b) - n_dns, "blocked flow"), _count(n_dns, "DNS failure")]
    _title(fig, title, f"{', '.join(parts)}, {_count(b['client_ip'].nunique(), 'client')}")
    ax_port, ax_reason = fig.subplots(1, 2, width_ratios=[1, 1])
    edge = styles()["blocked"]["edgecolor"]

    labels = [f"{c} \u00b7 {p}" for c, p in zip(groups["category"], groups["port"])]
    values = groups["n"].to_numpy()
    colours = [category_colour(c) for c in groups["category"]]
    hatches = [None] * len(labels)
    for c, (size, total) in rest.iterrows():      # one row per category: a handful at most
        labels.append(f"{c} \u00b7 {size:,} more port{'s' if size != 1 else ''}")
        values = np.append(values, total)
        colours.append(category_colour(c))
        hatches.append("..")
    y = np.arange(len(labels))
    bars = ax_port.barh(y, values, color=colours, edgecolor=edge, linewidth=0.8, gid="by_port")
    for bar, hatch in zip(bars, hatches):
        bar.set_hatch(hatch)
    ax_port.set_yticks(y, labels=labels, fontsize=9)
    ax_port.invert_yaxis()
    ax_port.set_xlabel("blocked flows and failed lookups (count)")
    ax_port.set_title("by category \u00b7 port", fontsize=10)
    _annotate_bars(ax_port, y, values)

    y2 = np.arange(len(by_reason))
    left = np.zeros(len(by_reason))
    for c in cats:
        vals = by_reason[c].to_numpy(dtype=float)
        ax_reason.barh(y2, vals, left=left, color=category_colour(c), edgecolor=edge, linewidth=0.8,
                       label=c, gid=f"reason:{c}")
        left += vals
    ax_reason.set_yticks(y2, labels=list(by_reason.index), fontsize=9)
    ax_reason.invert_yaxis()
    ax_reason.set_xlabel("blocked flows and failed lookups (count)")
    ax_reason.set_title("by reason (coloured by category)", fontsize=10)
    _annotate_bars(ax_reason, y2, left)
    for a in (ax_port, ax_reason):
        a.tick_params(axis="y", length=0)
        a.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        a.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        a.grid(axis="x", color="#E5E5E5", linewidth=0.6)
        a.set_axisbelow(True)
    _legend_below(fig, [_category_patch(c) for c in cats], ncols=9)
    return fig


def _annotate_bars(ax, y: np.ndarray, values: np.ndarray) -> None:
    top = float(np.max(values)) if len(values) else 1.0
    ax.set_xlim(0, top * 1.18 if top else 1)
    for yi, v in zip(y, values):
        ax.text(v + top * 0.015, yi, f"{int(v):,}", va="center", fontsize=8.5)


# ---------------------------------------------------------------------------------------
# Traffic

NICE_BINS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
               43200, 86400, 172800, 604800)


def _bin_width(span: float, bins: int | float | str | pd.Timedelta | None) -> float:
    if bins is None or bins == "auto":
        target = span / 100.0
        return float(next((b for b in NICE_BINS_S if b >= target), NICE_BINS_S[-1]))
    if isinstance(bins, (str, pd.Timedelta)):
        return max(pd.Timedelta(bins).total_seconds(), 1e-3)
    if isinstance(bins, (int, np.integer)):
        return max(span / max(int(bins), 1), 1e-3)
    return max(float(bins), 1e-3)


def _spread(start: np.ndarray, end: np.ndarray, total: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bytes per bin, each flow's bytes spread evenly over [start, end] (zero-length flows at
    start). Vectorized: the cumulative bytes at each edge from sorted starts and ends."""
    dur = end - start
    point = dur <= 0
    out = np.histogram(start[point], bins=edges, weights=total[point])[0].astype(float)
    if (~point).any():
        s, e, r = start[~point], end[~point], total[~point] / dur[~point]
        # F(t) = sum r * (min(t, e) - min(t, s)) = sum_{s<t} r (t - s) - sum_{e<t} r (t - e)
        so, eo = np.argsort(s), np.argsort(e)
        s_sorted, e_sorted = s[so], e[eo]
        cr_s, crs_s = np.concatenate([[0], np.cumsum(r[so])]), np.concatenate([[0], np.cumsum(r[so] * s_sorted)])
        cr_e, cre_e = np.concatenate([[0], np.cumsum(r[eo])]), np.concatenate([[0], np.cumsum(r[eo] * e_sorted)])
        i = np.searchsorted(s_sorted, edges, side="left")
        j = np.searchsorted(e_sorted, edges, side="left")
        cum = (cr_s[i] * edges - crs_s[i]) - (cr_e[j] * edges - cre_e[j])
        out += np.diff(cum)
    return np.clip(out, 0, None)


def traffic(result: Result, bins: int | float | str | pd.Timedelta | None = "auto") -> Figure:
    """Bytes on the wire (both directions, pcap orig_len) over time, stacked by category.

    A flow's bytes are spread evenly over its duration. ``bins``: "auto" (a round width
    giving about 100 bins), a number of bins (int), a width in seconds (float) or a
    pandas-style duration ("30s", "5min")."""
    title = "Traffic over time by category"
    f = result.flows
    if len(f) == 0:
        return _empty(title, "no flows in this capture")
    start = _floats(f["ts_start"])
    end = np.maximum(_floats(f["ts_end"]), start)
    total = (f["bytes_c2s"].to_numpy(dtype=float, na_value=0) + f["bytes_s2c"].to_numpy(dtype=float, na_value=0))
    t0, t1 = float(np.nanmin(start)), float(np.nanmax(end))
    span = max(t1 - t0, 1e-3)
    width = _bin_width(span, bins)
    if width * 100000 < span:                   # never more than 100,000 bins
        width = span / 100000
    first = np.floor(t0 / width) * width if width >= 1 else t0
    n_bins = max(int(np.ceil((t1 - first) / width)), 1)
    if first + n_bins * width <= t1:
        n_bins += 1
    edges = first + np.arange(n_bins + 1) * width

    cat = f["category"].astype(object).fillna("unknown")
    cats = _category_order(cat.unique().tolist())
    codes = pd.Categorical(cat, categories=cats).codes
    layers = np.vstack([_spread(start[codes == k], end[codes == k], total[codes == k], edges)
                        for k in range(len(cats))]) / width           # bytes per second

    apple_rows = [k for k, c in enumerate(cats) if c in APPLE_CATEGORIES]
    apple_bytes = float(layers[apple_rows].sum()) if apple_rows else 0.0
    # When other traffic dwarfs the Apple categories, a second panel shows them on their own.
    zoom = 0 < apple_bytes < 0.2 * float(layers.sum())

    fig = _figure(6.8 if zoom else 4.4)
    bin_text = seconds_text(width) if width >= 1 else f"{width * 1000:.0f} ms"
    _title(fig, title, f"{_human_bytes(total.sum())} in {_count(len(f), 'flow')}, "
                       f"{bin_text} bins, each flow's bytes spread over its duration")
    if zoom:
        axes = list(fig.subplots(2, 1, sharex=True, height_ratios=[1.3, 1]))
        panels = [(axes[0], list(range(len(cats))), "all traffic"),
                  (axes[1], apple_rows, "Apple and site categories only (without dns and other)")]
    else:
        axes = [fig.add_subplot()]
        panels = [(axes[0], list(range(len(cats))), None)]
    x = _dates(np.append(edges[:-1], edges[-1]))
    for ax, rows, what in panels:
        peak = float(layers[rows].sum(axis=0).max())
        scale, unit = next(((sc, u) for sc, u in ((1e9, "GB/s"), (1e6, "MB/s"), (1e3, "kB/s")) if peak >= sc),
                           (1.0, "B/s"))
        lower = np.zeros(len(edges))
        for k in rows:
            upper = lower + np.append(layers[k], layers[k][-1]) / scale
            ax.fill_between(x, lower, upper, step="post", color=category_colour(cats[k]), linewidth=0,
                            label=cats[k], gid=f"traffic:{cats[k]}")
            lower = upper
        ax.set_xlim(x[0], x[-1])
        ax.set_ylim(0, max(lower.max() * 1.05, 1e-9))
        ax.set_ylabel(f"traffic ({unit})" if zoom else f"traffic ({unit}, both directions)")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.3g}"))
        ax.grid(color="#E5E5E5", linewidth=0.6)
        ax.set_axisbelow(True)
        if what:
            ax.set_title(what, fontsize=10, loc="left")
    _utc_axis(axes[-1])
    handles = [Patch(facecolor=category_colour(c), label=c) for c in cats]
    axes[0].legend(handles=handles[::-1], loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9,
                   frameon=False, title="category", title_fontsize=9)
    return fig


# ---------------------------------------------------------------------------------------
# Courier

def courier(result: Result, max_devices: int = 20) -> Figure:
    """APNs courier connections per device: each connection's lifetime (log seconds) with the
    median marked, and reconnects per hour; flapping devices in the warning colour."""
    title = "APNs courier connections"
    c = result.courier
    if len(c) == 0:
        return _empty(title, "no APNs courier connections in this capture")
    flapping = _bools(c["flapping"])
    rate = _floats(c["reconnects_per_hour"])
    order = np.lexsort([c["device_ip"].astype(object).to_numpy(), _floats(c["lifetime_p50_s"]),
                        -c["connections"].to_numpy(), -c["closed_by_network"].to_numpy(),
                        -np.nan_to_num(rate), -flapping.astype(int)])
    shown = c.iloc[order[:max_devices]]
    devices = shown["device_ip"].astype(object).tolist()
    s_flap = _bools(shown["flapping"])
    n_rows = len(devices)
    row_of = {d: i for i, d in enumerate(devices)}

    flows = result.flows
    client = flows["client_ip"].astype(object)
    sel = ((flows["service"] == "apns-courier").fillna(False).to_numpy(dtype=bool)
           & ~_bools(flows["blocked"]) & client.isin(row_of).to_numpy(dtype=bool))
    conn_rows = client[sel].map(row_of).to_numpy(dtype=int)
    life = np.maximum(np.nan_to_num(_floats(flows.loc[sel, "duration"])), 0.01)

    fig = _figure(max(3.2, 1.9 + 0.36 * n_rows))
    n_flap = int(flapping.sum())
    sub = f"{_count(len(c), 'device')}, {n_flap:,} flapping (short connections cut by the network and re-opened)"
    if len(c) > n_rows:
        sub += f"; {n_rows} shown ({len(c) - n_rows:,} left out): flapping, most reconnects, shortest first"
    _title(fig, title, sub)
    ax_life, ax_rate = fig.subplots(1, 2, sharey=True, width_ratios=[1.5, 1])
    warn = warning_colour()
    apns = category_colour("apns")

    # Lifetimes: one dot per connection, jittered a little inside the row (deterministic).
    jitter = ((np.arange(conn_rows.size) * 0.618034) % 1.0 - 0.5) * 0.5
    flap_conn = s_flap[conn_rows] if conn_rows.size else np.zeros(0, bool)
    for mask, colour, gid in ((~flap_conn, apns, "lifetimes"), (flap_conn, warn, "lifetimes_flapping")):
        if mask.any():
            ax_life.scatter(life[mask], conn_rows[mask] + jitter[mask], s=30, color=colour, alpha=0.8,
                            edgecolors="none", gid=gid, zorder=3)
    med = _floats(shown["lifetime_p50_s"])
    ax_life.scatter(np.maximum(med, 0.01), np.arange(n_rows), marker="|", s=300, color="#444444",
                    linewidths=1.5, zorder=2, gid="median", label="median lifetime")
    ax_life.set_xscale("log")
    ax_life.set_xlabel("connection lifetime (log scale)")
    ax_life.set_ylabel("device (client address)")
    ax_life.set_title("lifetime of each connection", fontsize=10)
    lo = min(float(life.min()) if life.size else 1.0, float(np.nanmin(np.maximum(med, 0.01))))
    hi = max(float(life.max()) if life.size else 10.0, float(np.nanmax(med)))
    ax_life.set_xlim(lo / 2, hi * 2)
    ax_life.xaxis.set_major_locator(FixedLocator(_seconds_ticks(lo / 2, hi * 2)))
    ax_life.xaxis.set_major_formatter(FuncFormatter(_seconds_tick))
    ax_life.xaxis.set_minor_formatter(NullFormatter())

    raw_rate = _floats(shown["reconnects_per_hour"])
    s_rate = np.nan_to_num(raw_rate)
    y = np.arange(n_rows)
    bstyle = styles()["blocked"]
    ax_rate.barh(y[~s_flap], s_rate[~s_flap], height=0.6, color=apns, gid="reconnects")
    ax_rate.axvline(0, color=apns, linewidth=1.5)
    if s_flap.any():
        ax_rate.barh(y[s_flap], s_rate[s_flap], height=0.6, color=warn, edgecolor="white",
                     hatch=bstyle["hatch"], gid="reconnects_flapping")
    ax_rate.axvline(4, color="#555555", linestyle="--", linewidth=1, label="flapping threshold (4/h)")
    conns = shown["connections"].to_numpy()
    cut = shown["closed_by_network"].to_numpy()
    top = max(float(s_rate.max()), 4.0)
    # No rate over a short capture (health/timing.py MIN_RATE_SPAN_S): say so instead of "0/h".
    short = f"n/a: under {MIN_RATE_SPAN_S / 60:g} min seen"
    for yi, v, raw, n, k in zip(y, s_rate, raw_rate, conns, cut):
        said = f"{v:,.1f}/h" if np.isfinite(raw) else short
        ax_rate.text(v + top * 0.02, yi, f"{said} ({n:,} conn, {k:,} cut)", va="center", fontsize=8,
                     color=warn if s_flap[yi] else ("black" if np.isfinite(raw) else "#666666"),
                     bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0}, zorder=5)   # over the threshold line
    ax_rate.set_xlim(0, top * 1.9)
    ax_rate.set_xlabel("reconnects (per hour)")
    ax_rate.set_title("reconnects per hour", fontsize=10)

    ax_life.set_yticks(y, labels=devices, fontsize=9)
    ax_life.set_ylim(n_rows - 0.5, -0.5)
    for label, flap in zip(ax_life.get_yticklabels(), s_flap):
        if flap:
            label.set_color(warn)
            label.set_fontweight("bold")
    for a in (ax_life, ax_rate):
        a.tick_params(axis="y", length=0)
        a.grid(axis="x", color="#E5E5E5", linewidth=0.6)
        a.set_axisbelow(True)
    handles = [Line2D([], [], linestyle="none", marker="o", color=apns, label="connection"),
               Line2D([], [], linestyle="none", marker="|", color="black", markersize=12, markeredgewidth=2,
                      label="median lifetime")]
    if s_flap.any():
        handles.append(Patch(facecolor=warn, edgecolor="white", hatch=bstyle["hatch"], label="flapping device"))
    handles.append(Line2D([], [], color="#555555", linestyle="--", label="flapping threshold (4 reconnects/h)"))
    _legend_below(fig, handles)
    return fig


def _seconds_ticks(lo: float, hi: float) -> list[float]:
    """Round durations (1 s, 10 s, 1 min, 10 min, 1 h ...) between lo and hi, at most ~7."""
    ladders = ([0.001, 0.01, 0.1, 1, 10, 60, 600, 3600, 36000, 86400, 864000],
               [0.001, 0.01, 0.1, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400],
               [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120,
                300, 600, 1200, 1800, 3600, 7200, 14400, 43200, 86400])
    best: list[float] = []
    for ladder in ladders:
        ticks = [t for t in ladder if lo <= t <= hi]
        if len(best) < 3 and len(ticks) <= 7 and len(ticks) > len(best):
            best = ticks
    return best or [t for t in ladders[-1] if lo <= t <= hi]


def _seconds_tick(value: float, _pos: object) -> str:
    if value >= 3600:
        return f"{value / 3600:g} h"
    if value >= 60:
        return f"{value / 60:g} min"
    if value >= 1:
        return f"{value:g} s"
    return f"{value * 1000:g} ms"


# ---------------------------------------------------------------------------------------
# Output

CHARTS: dict[str, Callable[..., Figure]] = {
    "timeline": timeline,
    "latency": latency,
    "blocked": blocked,
    "traffic": traffic,
    "courier": courier,
}


def png_bytes(fig: Figure, dpi: int = DPI) -> bytes:
    """The figure as PNG bytes (Agg), for inlining in HTML."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    # zlib level 1: a few per cent larger, noticeably faster on big reports.
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white", pil_kwargs={"compress_level": 1})
    return buf.getvalue()


def save_charts(result: Result, folder: str | Path, dpi: int = DPI) -> dict[str, Path]:
    """Write every chart as ``<folder>/<name>.png``; returns name -> path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, chart in CHARTS.items():
        path = folder / f"{name}.png"
        path.write_bytes(png_bytes(chart(result), dpi=dpi))
        written[name] = path
    return written


class Plots:
    """The charts of one result as methods, for notebooks: ``result.plot.timeline()``.

    Each method returns a matplotlib Figure (Jupyter shows it inline)."""

    def __init__(self, result: Result) -> None:
        self._result = result

    def timeline(self, devices: Sequence[str] | None = None, max_devices: int = 20) -> Figure:
        return timeline(self._result, devices=devices, max_devices=max_devices)

    def latency(self, **options: Any) -> Figure:
        return latency(self._result, **options)

    def blocked(self, **options: Any) -> Figure:
        return blocked(self._result, **options)

    def traffic(self, bins: int | float | str | pd.Timedelta | None = "auto") -> Figure:
        return traffic(self._result, bins=bins)

    def courier(self, **options: Any) -> Figure:
        return courier(self._result, **options)

    def save(self, folder: str | Path, dpi: int = DPI) -> dict[str, Path]:
        return save_charts(self._result, folder, dpi=dpi)

    def __repr__(self) -> str:
        return f"<Plots: {', '.join(f'{n}()' for n in CHARTS)}>"

    def __dir__(self) -> list[str]:
        return [*CHARTS, "save"]
