"""Rich tables for the terminal: the columns an admin reads first."""
from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..pipeline import Result

FLOW_COLUMNS = (
    ("flow_id", "id"), ("category", "category"), ("service", "service"), ("transport", "proto"),
    ("client_ip", "client"), ("client_port", "cport"), ("server_ip", "server"), ("server_port", "sport"),
    ("server_name", "server name"), ("classified_by", "by"), ("state", "state"),
    ("pkts_c2s", "pkts >"), ("pkts_s2c", "pkts <"), ("bytes_c2s", "bytes >"), ("bytes_s2c", "bytes <"),
    ("duration", "secs"), ("rtt_ms", "rtt ms"), ("syn_retries", "syn retries"), ("vlan", "vlan"),
)
LEFT = {"category", "service", "proto", "client", "server", "server name", "by", "state"}
# States where the server never answered or refused: shown in a warning colour.
FAILED_STATES = {"S0", "REJ", "RSTOS0", "SH"}


def _cell(value: object, name: str) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    if name == "duration":
        return f"{value:.3f}"
    if name == "rtt_ms":
        return f"{value:.1f}"
    return escape(str(value))


def _console() -> Console:
    """A terminal gets its own width; a pipe or file gets room for every column."""
    probe = Console()
    return probe if probe.is_terminal else Console(width=250)


def print_flows_table(frame: pd.DataFrame, limit: int, console: Console | None = None) -> None:
    console = console or _console()
    shown = frame if limit <= 0 else frame.head(limit)
    table = Table(title=f"{len(frame)} flow{'' if len(frame) == 1 else 's'}", show_lines=False, header_style="bold")
    for _, label in FLOW_COLUMNS:
        table.add_column(label, justify="left" if label in LEFT else "right")
    state_at = [c for c, _ in FLOW_COLUMNS].index("state")
    for row in shown[[c for c, _ in FLOW_COLUMNS]].itertuples(index=False, name=None):
        style = "yellow" if row[state_at] in FAILED_STATES else None
        table.add_row(*(_cell(v, c) for v, (c, _) in zip(row, FLOW_COLUMNS)), style=style)
    console.print(table)
    if len(shown) < len(frame):
        more = len(frame) - len(shown)
        console.print(f"... {more} more flow{'' if more == 1 else 's'}: use --limit 0, or --format csv/jsonl/parquet.")


def print_run_summary(result: Result, console: Console | None = None) -> None:
    console = console or _console()
    s = result.stats
    parts = [f"{s.records:,} frame{'' if s.records == 1 else 's'} read", f"{s.packets_in_flows:,} in flows"]
    if s.icmp_errors:
        parts.append(f"{s.icmp_errors:,} ICMP error{'' if s.icmp_errors == 1 else 's'}")
    skipped = sum(s.skipped.values())
    if skipped:
        parts.append(f"{skipped} not TCP/UDP (" + ", ".join(f"{k} {v}" for k, v in sorted(s.skipped.items())) + ")")
    malformed = sum(s.malformed.values())
    if malformed:
        parts.append(f"{malformed} malformed (" + ", ".join(f"{k} {v}" for k, v in sorted(s.malformed.items())) + ")")
    if s.limits:
        parts.append("limits reached (" + ", ".join(f"{k} {v}" for k, v in sorted(s.limits.items())) + ")")
    console.print(escape("; ".join(parts)), style="dim")


# Other tables: (column, label) pairs; rows styled by a column's value.
BLOCKED_COLUMNS = (("reason", "reason"), ("category", "category"), ("client_ip", "client"),
                   ("server_ip", "server"), ("server_port", "port"), ("sentence", "what happened"))
TIMING_COLUMNS = (("scope", "scope"), ("key", "key"), ("metric", "metric"), ("count", "n"),
                  ("p50", "p50"), ("p95", "p95"), ("max", "max"))
COURIER_COLUMNS = (("device_ip", "device"), ("connections", "conns"), ("lifetime_p50_s", "median s"),
                   ("closed_by_network", "cut by net"), ("reconnects_per_hour", "reconn/h"),
                   ("keepalive_s", "keepalive s"), ("verdict", "verdict"))
REQUIREMENT_COLUMNS = (("status", "status"), ("group", "group"), ("host", "host"), ("transport", "proto"),
                       ("port", "port"), ("flows", "flows"), ("evidence", "evidence"))
STATUS_STYLE = {"blocked": "red", "reachable": "green", "not_seen": "dim"}
SEQUENCE_COLUMNS = (("device_ip", "device"), ("push_ts", "push at"), ("push_bytes", "bytes"),
                    ("provider_ts", "provider at"), ("checkin_ts", "check-in at"), ("mdm_server", "MDM server"),
                    ("latency_s", "after s"),
                    ("outcome", "outcome"), ("followups", "follow-ups"), ("followups_blocked", "blocked"),
                    ("detail", "detail"))
OUTCOME_STYLE = {"checkin_blocked": "red", "no_checkin": "yellow", "unsolicited_checkin": "dim"}


def print_table(frame: pd.DataFrame, columns, title: str, limit: int = 0, style_by: str | None = None,
                styles: dict | None = None, console: Console | None = None) -> None:
    """Any result frame as a rich table; every cell escaped (capture strings are data)."""
    console = console or _console()
    shown = frame if limit <= 0 else frame.head(limit)
    table = Table(title=title, header_style="bold")
    for name, label in columns:
        numeric = name in frame and pd.api.types.is_numeric_dtype(frame[name]) and not pd.api.types.is_bool_dtype(frame[name])
        table.add_column(label, justify="right" if numeric else "left", overflow="fold")
    for row in shown[[c for c, _ in columns]].itertuples(index=False, name=None):
        values = dict(zip((c for c, _ in columns), row))
        style = (styles or {}).get(values.get(style_by)) if style_by else None
        table.add_row(*(_number(v) for v in row), style=style)
    console.print(table)
    if len(shown) < len(frame):
        console.print(f"... {len(frame) - len(shown)} more rows: use --limit 0, or --format csv/jsonl/parquet.")


def _number(value: object) -> str:
    if isinstance(value, float) and value > 1e9:         # epoch seconds: a time of day is what people read
        return datetime.fromtimestamp(value, timezone.utc).strftime("%H:%M:%S.%f")[:-3]
    if isinstance(value, float) and value == value:
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3g}"
    return _cell(value, "")


LEVEL_STYLE = {"ok": "green", "info": "cyan", "warn": "yellow", "fail": "bold red"}


def print_analysis(result: Result, limit: int = 10, console: Console | None = None) -> None:
    """analyze's terminal summary: the verdict lines first, then the key tables."""
    console = console or _console()
    for verdict in result.verdicts:
        console.print(f"[{LEVEL_STYLE[verdict.level]}]{verdict.level.upper():4}[/] "
                      f"[bold]{escape(verdict.topic)}:[/] {escape(verdict.text)}", highlight=False)
    if len(result.blocked):
        print_table(result.blocked, BLOCKED_COLUMNS, f"{len(result.blocked)} blocked, worst first", limit,
                    console=console)
    seq = result.sequences
    if len(seq):
        worst_first = seq.sort_values("outcome", key=lambda s: s.map(
            {"checkin_blocked": 0, "no_checkin": 1, "checked_in": 2, "unsolicited_checkin": 3}), kind="stable")
        print_table(worst_first, SEQUENCE_COLUMNS, f"{len(seq)} push / check-in sequences", limit,
                    style_by="outcome", styles=OUTCOME_STYLE, console=console)
    flapping = result.courier[result.courier["flapping"].fillna(False).to_numpy(bool)]
    if len(flapping):
        print_table(flapping, COURIER_COLUMNS, "flapping APNs courier connections", limit, console=console)
    print_run_summary(result, console)
