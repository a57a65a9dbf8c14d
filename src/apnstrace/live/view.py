"""What a person watching sees: a rich live screen on a terminal, one plain line per report
when piped (so `apnstrace live ... | tee log` stays readable)."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .backends import CaptureCounts

OPEN_STATES = ("S1", "OTH")     # flow state of a courier connection still up (established, or mid-stream)
ROWS = 8


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one screen shows, distilled from a Result (cheap to render, easy to test)."""

    frames: int
    flows: int
    counts: CaptureCounts
    devices: pd.DataFrame        # device_ip, courier ("up"/"down"), since, pushes, checkins
    events: pd.DataFrame         # time, device_ip, event, detail: recent pushes and check-ins
    blocked: pd.DataFrame        # time, category, reason, sentence: recent blocked attempts
    categories: dict[str, int]   # flows per category


def distill(result, counts: CaptureCounts, tcp_timeout: float) -> Snapshot:
    flows, seq = result.flows, result.sequences
    now = float(flows["ts_end"].max()) if len(flows) else 0.0
    courier = flows[flows["service"] == "apns-courier"]
    devices = []
    for device, group in courier.groupby("client_ip", sort=True):
        last = group.loc[group["ts_end"].idxmax()]
        up = last["state"] in OPEN_STATES and now - float(last["ts_end"]) <= tcp_timeout \
            and not bool(last["blocked"])
        mine = seq[seq["device_ip"] == device]
        devices.append({"device_ip": device, "courier": "up" if up else "down",
                        "since": float(last["ts_start"] if up else last["ts_end"]),
                        "pushes": int(mine["push_ts"].notna().sum()),
                        "checkins": int((mine["outcome"] == "checked_in").sum())})
    events = []
    for row in seq.itertuples(index=False):
        if pd.notna(row.push_ts):
            events.append({"time": float(row.push_ts), "device_ip": row.device_ip, "event": "push",
                           "detail": f"{int(row.push_bytes or 0)} bytes"})
        if pd.notna(row.checkin_ts):
            what = "check-in" if row.outcome != "checkin_blocked" else "check-in blocked"
            latency = f", {row.latency_s:.1f} s after the push" if pd.notna(row.latency_s) else ""
            events.append({"time": float(row.checkin_ts), "device_ip": row.device_ip, "event": what,
                           "detail": f"{row.mdm_server}{latency}"})
    events = pd.DataFrame(events, columns=["time", "device_ip", "event", "detail"]).sort_values("time").tail(ROWS)
    blocked = result.blocked
    time_col = "ts" if "ts" in blocked else ("ts_start" if "ts_start" in blocked else None)
    shown = blocked.sort_values(time_col).tail(ROWS) if time_col and len(blocked) else blocked.head(0)
    blocked_rows = pd.DataFrame({
        "time": shown[time_col].to_numpy(float) if time_col else np.empty(0),
        "category": shown["category"].astype(object).to_numpy() if "category" in shown else [],
        "reason": shown["reason"].astype(object).to_numpy() if "reason" in shown else [],
        "sentence": shown["sentence"].astype(object).to_numpy() if "sentence" in shown else []})
    cats = {str(k): int(v) for k, v in flows["category"].value_counts().items()} if len(flows) else {}
    return Snapshot(result.stats.records, len(flows), counts, pd.DataFrame(
        devices, columns=["device_ip", "courier", "since", "pushes", "checkins"]), events, blocked_rows, cats)


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts)) if ts else "-"


def _dropped(counts: CaptureCounts) -> str:
    return "unknown" if counts.dropped is None else str(counts.dropped)


class PlainView:
    """Piped or redirected output: a start line, one line per report update, a closing summary."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stdout

    def __enter__(self) -> PlainView:
        return self

    def __exit__(self, *exc) -> None:
        pass

    wants_frequent_updates = False

    def started(self, iface: str, backend: str, bpf: str) -> None:
        self._line(f"capturing on {iface} (backend {backend}, filter: {bpf}); Ctrl-C or SIGTERM stops")

    def update(self, snap: Snapshot, report: str | None) -> None:
        pushes = sum(int(x) for x in snap.devices["pushes"]) if len(snap.devices) else 0
        checkins = sum(int(x) for x in snap.devices["checkins"]) if len(snap.devices) else 0
        up = int((snap.devices["courier"] == "up").sum()) if len(snap.devices) else 0
        line = (f"{time.strftime('%H:%M:%S')} frames {snap.frames} flows {snap.flows} couriers up {up} "
                f"pushes {pushes} check-ins {checkins} blocked {len(snap.blocked)} dropped {_dropped(snap.counts)}")
        self._line(line + (f"; report updated: {report}" if report else ""))

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


class RichView(PlainView):
    """A terminal: devices with their courier state, recent pushes and check-ins, recent
    blocked attempts and flows per category, redrawn in place."""

    wants_frequent_updates = True

    def __init__(self, console=None) -> None:
        from rich.console import Console
        super().__init__()
        self.console = console or Console()
        self.live = None
        self.header = ""
        self.report = None

    def __enter__(self) -> RichView:
        from rich.live import Live
        self.live = Live(console=self.console, refresh_per_second=2, transient=False)
        self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def started(self, iface: str, backend: str, bpf: str) -> None:
        self.header = f"apnstrace live on [bold]{iface}[/] (backend {backend}, filter: {bpf}) — Ctrl-C stops"
        if self.live is not None:
            self.live.update(self.header)

    def update(self, snap: Snapshot, report: str | None) -> None:
        self.report = report or self.report
        if self.live is not None:
            self.live.update(self.render(snap))

    def render(self, snap: Snapshot):
        from rich.console import Group
        from rich.table import Table
        head = (f"{self.header}\nframes {snap.frames}  flows {snap.flows}  received {snap.counts.received}  "
                f"dropped [{'red' if snap.counts.dropped else 'green'}]{_dropped(snap.counts)}[/]"
                + (f"  report: {self.report}" if self.report else ""))
        devices = Table(title="devices (APNs courier)", title_justify="left")
        for col in ("device", "courier", "since", "pushes", "check-ins"):
            devices.add_column(col)
        for d in snap.devices.itertuples(index=False):
            state = "[green]up[/]" if d.courier == "up" else "[red]down[/]"
            devices.add_row(str(d.device_ip), state, _clock(d.since), str(d.pushes), str(d.checkins))
        events = Table(title="pushes and check-ins", title_justify="left")
        for col in ("time", "device", "event", "detail"):
            events.add_column(col)
        for e in snap.events.itertuples(index=False):
            style = "yellow" if e.event == "push" else ("red" if "blocked" in e.event else "green")
            events.add_row(_clock(e.time), str(e.device_ip), f"[{style}]{e.event}[/]", str(e.detail))
        blocked = Table(title=f"blocked ({len(snap.blocked)} shown)", title_justify="left")
        for col in ("time", "category", "reason", "what happened"):
            blocked.add_column(col, overflow="fold")
        for b in snap.blocked.itertuples(index=False):
            blocked.add_row(_clock(b.time), str(b.category), f"[red]{b.reason}[/]", str(b.sentence))
        cats = "  ".join(f"{k} {v}" for k, v in sorted(snap.categories.items(), key=lambda kv: -kv[1])) or "none yet"
        return Group(head, devices, events, blocked, f"flows per category: {cats}")


def make_view(quiet: bool | None = None):
    """RichView on a terminal, PlainView otherwise (or when asked to be quiet)."""
    if quiet is None:
        quiet = not sys.stdout.isatty()
    return PlainView() if quiet else RichView()
