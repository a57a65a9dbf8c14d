"""The answer on top: a few verdict lines an admin reads first, and summary.json for scripts.

Each verdict is computed from the result's tables (flows, blocked, sequences, courier); the
wording says what was seen and what it means, with the numbers that back it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import __version__
from ..health.one_way import directions
from .units import DAY, seconds_text

if TYPE_CHECKING:
    from ..pipeline import Result

LEVELS = ("ok", "info", "warn", "fail")          # worst last
COURIER = "apns-courier"
COURIER_PORTS = (5223, 443)
WATCHED_FOR_FAILURE = ("apns", "mdm")            # --fail-on-blocked


@dataclass(frozen=True, slots=True)
class Verdict:
    topic: str          # "APNs", "MDM check-ins", "APNs provider", "Blocked", "Capture"
    level: str          # ok, info, warn, fail
    text: str

    def line(self) -> str:
        return f"{self.topic}: {self.text}"


def verdicts(result: Result) -> list[Verdict]:
    """The verdict lines, in reading order."""
    return [v for v in (_apns(result), _checkins(result), _provider(result), _blocked(result),
                        _capture(result)) if v is not None]


def blocked_apns_or_mdm(result: Result) -> bool:
    """What --fail-on-blocked tests: any blocked APNs or MDM flow or lookup."""
    return bool(result.blocked["category"].isin(WATCHED_FOR_FAILURE).any())


def summary(result: Result) -> dict:
    """summary.json: verdicts and counts for monitoring scripts (stable keys)."""
    flows, seq = result.flows, result.sequences
    pushed = seq[seq["push_ts"].notna()]
    latency = pushed.loc[pushed["outcome"] == "checked_in", "latency_s"].astype("float64")
    lines = verdicts(result)
    live = {} if result.stats.live is None else {"live": dict(result.stats.live)}   # drop counts, backend
    return {
        "apnstrace_version": __version__,
        "capture": {
            "files": list(result.stats.files),
            "start": _float(flows["ts_start"].min()) if len(flows) else None,
            "end": _float(flows["ts_end"].max()) if len(flows) else None,
            "frames": result.stats.records,
            "flows": len(flows),
            "malformed": dict(sorted(result.stats.malformed.items())),
            "limits": dict(sorted(result.stats.limits.items())),
            "problems": list(result.problems),
            "tcp_one_way": directions(flows).one_way,
        },
        "verdicts": [asdict(v) for v in lines],
        "worst": _worst(lines),
        "blocked_apns_or_mdm": blocked_apns_or_mdm(result),
        "counts": {
            "flows_by_category": _counts(flows["category"]),
            "blocked_by_reason": _counts(result.blocked["reason"]),
            "blocked_by_category": _counts(result.blocked["category"]),
            "courier_devices": int(result.courier["device_ip"].nunique()),
            "flapping_devices": int(result.courier["flapping"].fillna(False).sum()),
            "pushes": len(pushed),
            "outcomes": _counts(seq["outcome"]),
        },
        "push_checkin_latency_s": {
            "count": int(latency.count()),
            "p50": _float(latency.quantile(0.5)) if latency.count() else None,
            "p95": _float(latency.quantile(0.95)) if latency.count() else None,
            "max": _float(latency.max()) if latency.count() else None,
        },
    } | live


# ---------------------------------------------------------------- one verdict each

def _apns(result: Result) -> Verdict | None:
    flows = result.flows
    courier = flows[(flows["service"] == COURIER).fillna(False).to_numpy(bool)]
    apns_dns = result.blocked[(result.blocked["category"] == "apns") & result.blocked["reason"].str.startswith("dns_")]
    if courier.empty and apns_dns.empty:
        return Verdict("APNs", "info", "no APNs courier traffic in this capture")
    up = courier[~courier["blocked"].fillna(False).to_numpy(bool)]
    down = courier[courier["blocked"].fillna(False).to_numpy(bool)]
    ok_devices = set(up["client_ip"])
    parts, level = [], "ok"
    # A courier nothing came back on proves nothing (a one-way capture shows every flow so).
    answered = set(up.loc[up["pkts_s2c"].fillna(0).to_numpy(np.int64) > 0, "client_ip"])
    if answered:
        parts.append(f"{_n(len(answered), 'device')} connected on {_ports(up[up['client_ip'].isin(answered)])}")
    if ok_devices - answered:
        unconfirmed = up[up["client_ip"].isin(ok_devices - answered)]
        parts.append(f"{_n(len(ok_devices - answered), 'device')} sent on {_ports(unconfirmed)} with no packet "
                     f"back in the capture")
        level = "ok" if answered else "info"
    for port, group in down.groupby("server_port", sort=True):
        devices = set(group["client_ip"])
        reasons = ", ".join(sorted(set(group["block_reason"].dropna())))
        other = up[up["client_ip"].isin(devices) & (up["server_port"] != port)]
        # Fell back: connected on another port after the failed attempt; else it was up there anyway.
        first_fail = group.groupby("client_ip")["ts_start"].min()
        later = other[other["ts_start"].to_numpy() > first_fail.reindex(other["client_ip"]).to_numpy()]
        text = f"{port} {_reason_verb(reasons)} for {_n(len(devices), 'device')}"
        if len(later):
            text += f" -> {later['client_ip'].nunique()} fell back to {_ports(later)}"
        elif len(other):
            text += f" ({other['client_ip'].nunique()} also connected on {_ports(other)})"
        if len(other):
            level = _worse(level, "warn")
        if devices - ok_devices:
            level = "fail"
        parts.append(text)
    if len(apns_dns):
        parts.append(f"{_n(len(apns_dns), 'failed lookup')} of APNs names ({', '.join(sorted(set(apns_dns['reason'])))})")
        level = _worse(level, "fail" if not ok_devices else "warn")
    flapping = result.courier[result.courier["flapping"].fillna(False).to_numpy(bool)]
    if len(flapping):
        parts.append(f"{_n(len(flapping), 'device')} flapping (connections cut by the network every "
                     f"~{flapping['lifetime_p50_s'].median():.0f} s: an idle timeout shorter than the keepalive)")
        level = _worse(level, "warn")
    label = {"ok": "OK", "info": "", "warn": "DEGRADED", "fail": "BLOCKED"}[level]
    return Verdict("APNs", level, f"{label} - " + "; ".join(parts) if label else "; ".join(parts))


def _checkins(result: Result) -> Verdict | None:
    seq = result.sequences
    if seq.empty:
        return None
    pushed = seq[seq["push_ts"].notna()]
    outcomes = pushed["outcome"].value_counts()
    answered = int(outcomes.get("checked_in", 0))
    parts, level = [], "ok"
    if len(pushed):
        latency = pushed.loc[pushed["outcome"] == "checked_in", "latency_s"].astype("float64")
        text = f"{answered:,}/{len(pushed):,} pushes answered"
        if latency.count():
            text += f", p50 {latency.median():.1f} s, p95 {latency.quantile(0.95):.1f} s"
        parts.append(text)
        if outcomes.get("checkin_blocked", 0):
            parts.append(f"{outcomes['checkin_blocked']:,} check-in{'s' if outcomes['checkin_blocked'] > 1 else ''} blocked")
            level = "fail"
        if outcomes.get("no_checkin", 0):
            parts.append(f"{outcomes['no_checkin']:,} push{'es' if outcomes['no_checkin'] > 1 else ''} with no check-in")
            level = _worse(level, "warn")
    else:
        level = "info"
        parts.append("no pushes seen")
    if len(pushed) and not (result.flows["category"] == "mdm").any() and not seq["mdm_server_inferred"].fillna(False).any():
        # No MDM traffic at all: the capture does not see the MDM side, so silence proves nothing.
        level = "info"
        parts.append("no MDM traffic in the capture (give --mdm-host if the MDM server is in view)")
    unsolicited = int((seq["outcome"] == "unsolicited_checkin").sum())
    if unsolicited:
        parts.append(f"{unsolicited:,} check-in{'s' if unsolicited > 1 else ''} without a push")
    if seq["mdm_server_inferred"].fillna(False).any():
        parts.append("MDM server inferred (give --mdm-host to be sure)")
    return Verdict("MDM check-ins", level, "; ".join(parts))


def _provider(result: Result) -> Verdict | None:
    flows = result.flows
    provider = flows[(flows["service"] == "apns-provider").fillna(False).to_numpy(bool)]
    if provider.empty:
        return None
    bad = provider[provider["blocked"].fillna(False).to_numpy(bool)]
    servers = _n(provider["client_ip"].nunique(), "server")
    if bad.empty:
        if not (provider["pkts_s2c"].fillna(0).to_numpy(np.int64) > 0).any():     # a one-way capture
            return Verdict("APNs provider", "info", f"{servers} sent to the APNs provider API on "
                                                    f"{_ports(provider)} with no packet back in the capture")
        return Verdict("APNs provider", "ok", f"{servers} reached the APNs provider API on {_ports(provider)}")
    reasons = ", ".join(sorted(set(bad["block_reason"].dropna())))
    level = "fail" if len(bad) == len(provider) else "warn"
    return Verdict("APNs provider", level, f"{len(bad):,} of {len(provider):,} connections to the provider API "
                                           f"blocked ({reasons}) on {_ports(bad)}")


def _blocked(result: Result) -> Verdict:
    blocked = result.blocked
    if blocked.empty:
        return Verdict("Blocked", "ok", "nothing blocked")
    by = blocked["category"].value_counts(sort=False)
    order = blocked["category"].drop_duplicates()          # the table is worst first
    parts = [f"{by[c]:,} {c}" for c in order]
    level = "fail" if blocked["category"].isin(WATCHED_FOR_FAILURE).any() else "warn"
    return Verdict("Blocked", level, f"{len(blocked):,} ({', '.join(parts)}); worst: {blocked['sentence'].iloc[0]}")


def _capture(result: Result) -> Verdict:
    s, flows = result.stats, result.flows
    span = float(flows["ts_end"].max() - flows["ts_start"].min()) if len(flows) else 0.0
    text = f"{_n(s.records, 'frame')}, {_n(len(flows), 'flow')} over {seconds_text(span)}"
    if span >= 2 * DAY:
        # Days between first and last frame are usually captures merged from different times
        # (or a device clock that jumped): say when, so nobody reads it as one long recording.
        first, last = (_date(flows["ts_start"].min()), _date(flows["ts_end"].max()))
        text += f" ({first} to {last} UTC)"
    malformed = sum(s.malformed.values())
    level = "ok"
    if malformed:
        text += f"; {malformed:,} malformed frames counted"
    if result.problems:
        text += f"; {len(result.problems)} file{'s' if len(result.problems) > 1 else ''} read only in part"
        level = "warn"
    seen = directions(flows)
    if seen.blind_side:
        text += (f"; {seen.one_way:,} of {seen.one_way + seen.two_way:,} TCP conversations seen one way only "
                 f"(data and ACKs, never a packet back): the capture point likely sees one direction "
                 f"(asymmetric routing, one-way span or tap), so a missing answer may be the capture's "
                 f"blind side, not a block")
        level = "warn"
    elif seen.one_way:
        text += f"; {_n(seen.one_way, 'TCP flow')} seen one way only (cut at the capture's edges?)"
    live = s.live or {}
    if live.get("flows_retired"):
        where = f", in {live['dataset']}" if live.get("dataset") else " (not kept: no --dataset)"
        text += (f"; live window: the last {seconds_text(live['keep_s'])} and open connections shown, "
                 f"{live['flows_retired']:,} older flows left it{where}")
    return Verdict("Capture", level, text)


# ---------------------------------------------------------------- wording helpers

def _reason_verb(reasons: str) -> str:
    words = {"no_response": "dropped", "reset": "refused", "icmp_unreachable": "rejected (ICMP)",
             "tls_intercepted": "intercepted by a TLS proxy", "tls_alert": "refused in the TLS handshake",
             "reset_after_handshake": "cut after the ClientHello", "no_server_data": "unanswered"}
    return " / ".join(words.get(r, r) for r in reasons.split(", ") if r) or "blocked"


def _ports(frame: pd.DataFrame) -> str:
    ports = sorted(set(int(p) for p in frame["server_port"]))
    return "/".join(str(p) for p in ports)


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _date(ts: float) -> str:
    return datetime.fromtimestamp(float(ts), timezone.utc).strftime("%Y-%m-%d %H:%M")


def _worse(a: str, b: str) -> str:
    return a if LEVELS.index(a) >= LEVELS.index(b) else b


def _worst(items: list[Verdict]) -> str:
    level = "ok"
    for v in items:
        level = _worse(level, v.level)
    return level


def _counts(column: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in column.dropna().value_counts().sort_index().items()}


def _float(value) -> float | None:
    value = float(value)
    return None if np.isnan(value) else value
