"""report.html: one self-contained page an admin can forward to the network team.

The answer on top (the verdict lines, coloured by level), the evidence below (blocked flows
worst first, push -> check-in sequences, courier steadiness, timing, the charts, the most
relevant flows), then the capture's own facts. Rendered by Jinja2 with autoescaping on for
every template; charts are inline PNG data: URIs, the CSS and the small table-sorting script
are inline, and a Content-Security-Policy forbids anything else, so the file makes no network
request and runs no script but its own.

Every string that came from a capture goes through the `cap` filter: HTML-escaped, control
and format characters (bidi overrides, zero-width characters, C0/C1 controls) shown as
visible <U+XXXX> marks instead of acting on the page, long values cut with a note, and
anything outside printable ASCII isolated in <bdi> so it cannot reorder its neighbours.
"""
from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from .. import __version__
from .units import seconds_text
from .verdicts import LEVELS, verdicts

if TYPE_CHECKING:
    from ..pipeline import Result

FLOW_LIMIT = 500          # flows shown: the most relevant ones (flows.csv has them all)
ROW_LIMIT = 500           # blocked, sequences, courier and per-device timing rows shown
CUT = 160                 # characters of one capture string shown in a table cell
LONG_WORD = 32            # a capture string with a longer unbroken run may wrap anywhere

CHART_TITLES = {
    "timeline": "Per-device timeline",
    "latency": "Push -> check-in latency",
    "blocked": "Blocked flows by category and port",
    "traffic": "Traffic over time by category",
    "courier": "Courier connection lifetimes",
}
CATEGORY_RANK = {c: i for i, c in enumerate(
    ("apns", "mdm", "enrollment", "sus", "file_share", "http_distribution", "apple", "dns", "other"))}
OUTCOMES = {            # outcome -> (label, level), worst first
    "checkin_blocked": ("check-in blocked", "fail"),
    "no_checkin": ("no check-in", "warn"),
    "unsolicited_checkin": ("check-in without a push", "info"),
    "checked_in": ("checked in", "ok"),
}
METRICS = {             # timing metric -> (label, unit kind)
    "push_checkin_s": ("push -> check-in", "s"),
    "checkin_rate": ("pushes answered", "rate"),
    "pushes": ("pushes", "count"),
    "rtt_ms": ("TCP round trip (SYN -> SYN/ACK)", "ms"),
    "tls_handshake_ms": ("TLS handshake (ClientHello -> server)", "ms"),
    "ttfb_ms": ("time to first server byte", "ms"),
    "courier_lifetime_s": ("courier connection lifetime", "s"),
}
LEVEL_LABEL = {"ok": "OK", "info": "INFO", "warn": "WARN", "fail": "FAIL"}
HEADLINE = {"ok": "No problem found", "info": "Nothing conclusive to report",
            "warn": "Degraded: some Apple traffic had trouble",
            "fail": "Blocked: Apple device-management traffic is not getting through"}
# When only the Capture line is that bad, the trouble is what the capture can show, not the traffic.
CAPTURE_HEADLINE = {"warn": "Check the capture first: it may not show the whole picture"}

_PLAIN = re.compile(r"[\x20-\x7e]*\Z")
_VISIBLE_CATEGORIES = ("Cc", "Cf", "Cs", "Co", "Zl", "Zp")    # act on layout or are not text


# ---------------------------------------------------------------- filters

def cap(value: object, limit: int = CUT) -> Markup:
    """A string from a capture, safe and honest in HTML (see the module docstring)."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return Markup("")
    text = str(value)
    shown, cut = (text[:limit], len(text) - limit) if limit and len(text) > limit else (text, 0)
    if _PLAIN.match(shown):
        out = escape(shown)
    else:
        parts = []
        for ch in shown:
            if unicodedata.category(ch) in _VISIBLE_CATEGORIES:
                parts.append(Markup('<span class="ctl" title="control or format character">&lt;U+{:04X}&gt;</span>')
                             .format(ord(ch)))
            else:
                parts.append(escape(ch))
        out = Markup("<bdi>") + Markup("").join(parts) + Markup("</bdi>")
    if any(len(word) > LONG_WORD for word in shown.split()):
        out = Markup('<span class="brk">') + out + Markup("</span>")     # may break anywhere
    if cut:
        out += Markup('<span class="cut">… +{} characters</span>').format(f"{cut:,}")
    return out


def addr(value: object) -> Markup:
    """An address (or [v6]:port): escaped, unbroken, except at most one break opportunity at
    the colon nearest the middle of a long IPv6 address."""
    if _is_null(value):
        return Markup("")
    text = str(value)
    if len(text) <= 24 or ":" not in text or not _PLAIN.match(text):
        return cap(text)
    colons = [i for i, ch in enumerate(text) if ch == ":"]
    mid = min(colons, key=lambda i: abs(i - len(text) / 2)) + 1
    return Markup('<span class="addr">{}<wbr>{}</span>').format(text[:mid], text[mid:])


def _is_null(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def fmt_ms(value) -> str:
    """Milliseconds for people: 0.8 ms, 21.5 ms, 1.23 s."""
    if _is_null(value):
        return ""
    value = float(value)
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def fmt_s(value) -> str:
    """Seconds for people: 850 ms, 1.4 s, 8.1 min, 2.3 h."""
    return "" if _is_null(value) else seconds_text(float(value))


def fmt_bytes(value) -> str:
    if _is_null(value):
        return ""
    value = int(value)
    if value < 10_000:
        return f"{value:,} B"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:,} B"


def fmt_int(value) -> str:
    return "" if _is_null(value) else f"{int(value):,}"


def fmt_num(value, digits: int = 1) -> str:
    return "" if _is_null(value) else f"{float(value):,.{digits}f}"


def sort_key(value) -> str:
    """data-sort attribute value: numbers as they are, nulls empty."""
    if _is_null(value):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return repr(float(value))
    return str(value)


class Clock:
    """UTC times: HH:MM:SS.mmm when the whole capture is one UTC day (the date is in the
    header), else the full date too."""

    def __init__(self, start: float | None, end: float | None):
        self.one_day = (start is not None and end is not None
                        and _utc(start).date() == _utc(end).date())

    def __call__(self, ts) -> str:
        if _is_null(ts):
            return ""
        t = _utc(float(ts))
        text = t.strftime("%H:%M:%S.") + f"{t.microsecond // 1000:03d}"
        return text if self.one_day else t.strftime("%Y-%m-%d ") + text


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def _stamp(ts: float | None) -> str:
    return "" if ts is None else _utc(ts).strftime("%Y-%m-%d %H:%M:%S UTC")


# ---------------------------------------------------------------- environment

def _environment() -> Environment:
    env = Environment(loader=PackageLoader("apnstrace.report", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(cap=cap, addr=addr, ms=fmt_ms, secs=fmt_s, nbytes=fmt_bytes, int=fmt_int, num=fmt_num,
                       sortkey=sort_key)
    return env


_ENV: Environment | None = None


def environment() -> Environment:
    global _ENV
    if _ENV is None:
        _ENV = _environment()
    return _ENV


# ---------------------------------------------------------------- the page

def _headline(items: list, worst: str) -> str:
    if worst in CAPTURE_HEADLINE and all(v.topic == "Capture" for v in items if v.level == worst):
        return CAPTURE_HEADLINE[worst]
    return HEADLINE[worst]


def render_html(result: Result, charts: dict[str, bytes] | None = None) -> str:
    """The report page as text. `charts` maps a chart name to PNG bytes; None renders them."""
    if charts is None:
        charts = _render_charts(result)
    env = environment()
    script = env.get_template("sort.js.j2").render()
    flows = result.flows
    start = float(flows["ts_start"].min()) if len(flows) else None
    end = float(flows["ts_end"].max()) if len(flows) else None
    items = verdicts(result)
    worst = "ok"
    for v in items:
        worst = v.level if LEVELS.index(v.level) > LEVELS.index(worst) else worst
    context = dict(
        version=__version__,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        start=_stamp(start), end=_stamp(end),
        span=fmt_s(end - start) if start is not None else "",
        worst=worst, headline=_headline(items, worst), level_label=LEVEL_LABEL,
        verdicts=items,
        clock=Clock(start, end),
        blocked=_limited(result.blocked, ROW_LIMIT),
        sequences=_sequences(result.sequences),
        outcomes=OUTCOMES,
        courier=_courier(result.courier),
        timing=_timing(result.timing),
        charts=[dict(name=name, title=CHART_TITLES.get(name, name.replace("_", " ").capitalize()),
                     uri=_data_uri(data)) for name, data in charts.items() if data],
        flows=_flows(flows),
        capture=_capture(result, flows),
        script=Markup(script),
        script_hash=base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii"),
        row_limit=ROW_LIMIT, flow_limit=FLOW_LIMIT,
    )
    return env.get_template("report.html.j2").render(**context)


def _render_charts(result: Result) -> dict[str, bytes]:
    from .charts import CHARTS, png_bytes
    return {name: png_bytes(make(result)) for name, make in CHARTS.items()}


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as dicts with pandas nulls as None (templates test `is none`)."""
    if frame.empty:
        return []
    obj = frame.astype(object)
    return obj.where(frame.notna(), None).to_dict("records")


def _limited(frame: pd.DataFrame, limit: int) -> dict:
    """The first `limit` rows as dicts (only those are turned into Python objects)."""
    return {"rows": _records(frame.head(limit)), "total": len(frame), "hidden": max(0, len(frame) - limit)}


def _sequences(seq: pd.DataFrame) -> dict:
    rank = seq["outcome"].map({k: i for i, k in enumerate(OUTCOMES)}).fillna(len(OUTCOMES))
    when = seq["push_ts"].astype("Float64").fillna(seq["checkin_ts"].astype("Float64")).astype("float64")
    order = np.lexsort((when.fillna(np.inf).to_numpy(), rank.to_numpy(float)))
    rows = _records(seq.iloc[order].head(ROW_LIMIT))
    counts = seq["outcome"].value_counts()
    summary = [(key, label, level, int(counts.get(key, 0))) for key, (label, level) in OUTCOMES.items()
               if counts.get(key, 0)]
    return {"rows": rows, "total": len(seq), "hidden": max(0, len(seq) - ROW_LIMIT), "summary": summary}


def _courier(courier: pd.DataFrame) -> dict:
    flapping = courier["flapping"].fillna(False).to_numpy(bool)
    order = np.lexsort((courier["device_ip"].astype(str).to_numpy(),
                        -courier["reconnects_per_hour"].fillna(0).to_numpy(float),
                        -courier["closed_by_network"].fillna(0).to_numpy(float), ~flapping))
    rows = _records(courier.iloc[order].head(ROW_LIMIT))
    return {"rows": rows, "total": len(courier), "hidden": max(0, len(courier) - ROW_LIMIT),
            "flapping": int(flapping.sum())}


def _timing(timing: pd.DataFrame) -> dict:
    """Per category: the long table (metric rows). Per device: one row per device, one column
    per metric, devices with unanswered pushes and slow answers first."""
    metric_rank = {m: i for i, m in enumerate(METRICS)}
    part = timing[timing["scope"] == "category"]
    order = np.lexsort((part["metric"].map(metric_rank).fillna(len(METRICS)).to_numpy(float),
                        part["key"].astype(str).to_numpy(),
                        part["key"].map(CATEGORY_RANK).fillna(len(CATEGORY_RANK)).to_numpy(float)))
    rows = _records(part.iloc[order])
    for row in rows:
        row["label"], row["unit"] = METRICS.get(row["metric"], (row["metric"], "num"))
    category = {"rows": rows, "total": len(rows), "hidden": 0}

    # Devices ranked without a Python object per row: only the shown ones become dicts.
    per_device = timing[timing["scope"] == "device"]
    present = set(per_device["metric"].unique())
    columns = [(m, label, unit) for m, (label, unit) in METRICS.items() if m in present]
    columns += [(m, m, "num") for m in sorted(present - set(METRICS))]
    keys = pd.Index(per_device["key"].astype(str).unique())

    def stat(metric: str, column: str, default: float) -> np.ndarray:
        part = per_device[per_device["metric"] == metric]
        values = np.full(len(keys), default)
        at = keys.get_indexer(part["key"].astype(str))
        values[at] = part[column].astype("Float64").fillna(default).to_numpy(float)
        return values

    order = np.lexsort((keys.to_numpy(str), -stat("rtt_ms", "max", 0.0), -stat("push_checkin_s", "max", 0.0),
                        stat("checkin_rate", "p50", 1.0)))
    shown = keys[order[:ROW_LIMIT]]
    rows = _records(per_device[per_device["key"].astype(str).isin(shown)])
    metrics: dict[str, dict] = {key: {} for key in shown}
    for row in rows:
        metrics[str(row["key"])][row["metric"]] = row
    device = {"rows": [{"key": k, "metrics": metrics[k]} for k in shown], "columns": columns,
              "total": len(keys), "hidden": max(0, len(keys) - ROW_LIMIT)}
    return {"category": category, "device": device}


def _flows(flows: pd.DataFrame) -> dict:
    """The most relevant flows: blocked first, then by category (APNs, MDM, ...), then time."""
    n = len(flows)
    if not n:
        return {"rows": [], "total": 0, "hidden": 0}
    blocked = flows["blocked"].fillna(False).to_numpy(bool)
    rank = flows["category"].map(CATEGORY_RANK).fillna(len(CATEGORY_RANK)).to_numpy(float)
    order = np.lexsort((flows["flow_id"].to_numpy(), flows["ts_start"].to_numpy(float), rank, ~blocked))
    rows = _records(flows.iloc[order[:FLOW_LIMIT]])
    return {"rows": rows, "total": n, "hidden": max(0, n - FLOW_LIMIT)}


def _capture(result: Result, flows: pd.DataFrame) -> dict:
    s = result.stats
    by_category = flows["category"].value_counts() if len(flows) else pd.Series(dtype=int)
    return {
        "files": list(s.files),
        "frames": s.records,
        "in_flows": s.packets_in_flows,
        "icmp_errors": s.icmp_errors,
        "flows": len(flows),
        "blocked_flows": int(flows["blocked"].fillna(False).sum()) if len(flows) else 0,
        "categories": sorted(((str(k), int(v)) for k, v in by_category.items()),
                             key=lambda kv: CATEGORY_RANK.get(kv[0], len(CATEGORY_RANK))),
        "skipped": sorted(s.skipped.items()),
        "malformed": sorted(s.malformed.items()),
        "limits": sorted(s.limits.items()),
        "problems": list(result.problems),
    }
