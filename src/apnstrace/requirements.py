"""Apple's network requirements for device management (requirements.toml) as a checklist, checked against flows.

    from apnstrace.requirements import check_requirements
    result = apnstrace.analyze(["capture.pcapng"])
    check_requirements(result.flows)      # one row per host x port: reachable / blocked / not_seen
"""
from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd

from .classify.rules import Service, compile_patterns
from .errors import ConfigError
from .schema import Column, to_frame

GROUPS = ("APNs", "Device management / enrollment", "Device setup", "Software update", "Certificate validation",
          "Content caching")
REQUIRED_FOR = ("devices", "MDM server", "content cache")
CONFIDENCE = ("V", "P", "U")
TRANSPORTS = ("tcp", "udp")
KEYS = ("group", "hosts", "aliases", "service", "transport", "ports", "purpose", "required_for", "confidence",
        "notes", "source")
_REQUIRED_KEYS = ("group", "hosts", "transport", "ports", "purpose", "required_for", "confidence", "source")

REACHABLE, BLOCKED, NOT_SEEN = "reachable", "blocked", "not_seen"
ESTABLISHED = ("SF", "S1", "S2", "S3", "RSTO", "RSTR")     # Zeek states after a full handshake

CHECKLIST: tuple[Column, ...] = (
    Column("group", "string", "Requirement group: APNs, Device management / enrollment, ..."),
    Column("host", "string", "Host name or glob (*-courier.push.apple.com)."),
    Column("transport", "string", "tcp or udp."),
    Column("port", "int32", "Server port."),
    Column("purpose", "string", "What the host is for."),
    Column("required_for", "string", "Who must reach it: devices, MDM server, content cache."),
    Column("confidence", "string", "V read in the source, P secondary, U recalled (apple-traffic.md)."),
    Column("notes", "string", "Fallback ports, proxy rules, what is not verified."),
    Column("source", "string", "apple-traffic.md section and the primary source."),
)
CHECK: tuple[Column, ...] = (
    *CHECKLIST[:6],
    Column("status", "string", "reachable (a matching flow got through), blocked, not_seen."),
    Column("flows", "int64", "Matching flows."),
    Column("evidence", "string", "Which flows, or the block reason / DNS failure."),
    Column("source", "string", "apple-traffic.md section and the primary source."),
)
FLOW_COLUMNS = ("transport", "client_ip", "server_ip", "server_port", "server_name", "service", "state", "blocked",
                "block_reason")


@dataclass(frozen=True, slots=True)
class Requirement:
    """One [[requirement]] entry: every host on every port."""

    group: str
    hosts: tuple[str, ...]
    transport: str
    ports: tuple[int, ...]
    purpose: str
    required_for: tuple[str, ...]
    confidence: str
    source: str
    notes: str = ""
    aliases: tuple[str, ...] = ()
    service: str | None = None
    origin: str = ""                      # "requirements.toml, requirement 3 (api.push.apple.com)"
    host_res: tuple[re.Pattern, ...] = field(default=(), compare=False, repr=False)   # one per host
    alias_re: re.Pattern | None = field(default=None, compare=False, repr=False)

    def rows(self) -> Iterator[tuple[int, str, int]]:
        """(host index, host, port) of each checklist row, in file order."""
        for i, host in enumerate(self.hosts):
            for port in self.ports:
                yield i, host, port


@cache
def _builtin() -> tuple[Requirement, ...]:
    text = resources.files(__package__).joinpath("requirements.toml").read_text(encoding="utf-8")
    return load_requirements(text, "requirements.toml")


def load_requirements(text: str | None = None, source: str = "requirements.toml") -> tuple[Requirement, ...]:
    """The shipped requirements (text None, loaded once), or `text` parsed and checked.

    A mistake raises one ConfigError line naming the file and the entry.
    """
    if text is None:
        return _builtin()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    for key in data:
        if key != "requirement":
            raise ConfigError(f"{source}: unknown table '{key}' (expected [[requirement]])")
    raw_list = data.get("requirement", [])
    if not isinstance(raw_list, list) or not raw_list:
        raise ConfigError(f"{source}: expected one or more [[requirement]] tables")
    out: list[Requirement] = []
    seen: dict[tuple[str, str, str, int], str] = {}
    for number, raw in enumerate(raw_list, 1):
        where = f"{source}, requirement {number}"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a table")
        hosts = raw.get("hosts")
        if isinstance(hosts, list) and hosts and isinstance(hosts[0], str):
            where = f"{where} ({hosts[0]})"
        try:
            req = _requirement(raw, where)
        except ValueError as bad:        # _Bad from compile_patterns is a ValueError too
            raise ConfigError(f"{where}: {bad}") from None
        # The same host and port twice in one group is a copy-paste slip; across groups it is Apple
        # listing one host for two purposes (gs.apple.com: setup and update), which the checklist keeps.
        for _, host, port in req.rows():
            key = (req.group, host.lower(), req.transport, port)
            if key in seen:
                raise ConfigError(f"{where}: {host} {req.transport}/{port} is already in {seen[key]}")
            seen[key] = where
        out.append(req)
    return tuple(out)


def _requirement(raw: dict, where: str) -> Requirement:
    for key in raw:
        if key not in KEYS:
            hint = difflib.get_close_matches(key, KEYS, n=1, cutoff=0.75)
            raise ValueError(f"unknown key '{key}'" + (f" (did you mean '{hint[0]}'?)" if hint else ""))
    for key in _REQUIRED_KEYS:
        if key not in raw:
            raise ValueError(f"missing key '{key}'")
    group = _string(raw, "group")
    if group not in GROUPS:
        raise ValueError(f"unknown group '{group}' (expected one of: {', '.join(GROUPS)})")
    hosts = _strings(raw, "hosts")
    if not hosts:
        raise ValueError("hosts must not be empty")
    aliases = _strings(raw, "aliases")
    for pattern in hosts + aliases:
        if pattern.startswith("re:"):      # compile_patterns would take it; a checklist row needs a name
            raise ValueError(f"host {pattern!r}: use a name or a glob, not a regular expression")
    transport = _string(raw, "transport")
    if transport not in TRANSPORTS:
        raise ValueError(f"transport '{transport}' is not tcp or udp")
    ports = raw["ports"]
    if (not isinstance(ports, list) or not ports
            or not all(isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 65535 for p in ports)):
        raise ValueError(f"ports must be a non-empty list of ports 1-65535, not {ports!r}")
    required_for = _strings(raw, "required_for")
    if not required_for or any(r not in REQUIRED_FOR for r in required_for):
        raise ValueError(f"required_for must list some of: {', '.join(REQUIRED_FOR)} (got {list(required_for)})")
    confidence = _string(raw, "confidence")
    if confidence not in CONFIDENCE:
        raise ValueError(f"confidence '{confidence}' is not V, P or U")
    service = raw.get("service")
    if service is not None and service not in Service.__members__.values():
        raise ValueError(f"unknown service {service!r} (use one of apnstrace.classify.Service)")
    notes = raw.get("notes", "")
    if not isinstance(notes, str):
        raise ValueError("notes must be a string")
    return Requirement(
        group=group, hosts=hosts, transport=transport, ports=tuple(ports), purpose=_string(raw, "purpose"),
        required_for=required_for, confidence=confidence, source=_string(raw, "source"), notes=notes,
        aliases=aliases, service=service, origin=where,
        host_res=tuple(_compile((h,), "hosts") for h in hosts), alias_re=_compile(aliases, "aliases"))


def _compile(patterns: tuple[str, ...], key: str) -> re.Pattern | None:
    # The classifier's host-name pattern rules; exact=True: "gs.apple.com" is that host, not also its
    # subdomains (a glob says so when meant). Checked one by one so the error names the entry.
    for pattern in patterns:
        try:
            compile_patterns((pattern,), "names", exact=True)
        except ValueError:
            raise ValueError(f"{key} entry {pattern!r} is not a host name or glob") from None
    return compile_patterns(patterns, "names", exact=True)


def _string(raw: dict, key: str) -> str:
    value = raw[key]
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} must be a non-empty string")
    return value


def _strings(raw: dict, key: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{key} must be a list of non-empty strings")
    return tuple(value)


# ---------------------------------------------------------------- checklist

def checklist(requirements: tuple[Requirement, ...] | None = None) -> pd.DataFrame:
    """The requirements as a table, one row per host x port (columns CHECKLIST)."""
    reqs = load_requirements() if requirements is None else requirements
    rows = [dict(group=r.group, host=host, transport=r.transport, port=port, purpose=r.purpose,
                 required_for=", ".join(r.required_for), confidence=r.confidence, notes=r.notes, source=r.source)
            for r in reqs for _, host, port in r.rows()]
    return to_frame(rows, CHECKLIST)


def check_requirements(flows: pd.DataFrame, blocked: pd.DataFrame | None = None,
                       requirements: tuple[Requirement, ...] | None = None) -> pd.DataFrame:
    """One row per requirement host x port (columns CHECK): reachable, blocked or not_seen in `flows`.

    A flow matches when its transport and server_port match and its server_name matches the host or an
    alias, or (rows with a service) its service is that one and its name is empty or names no other
    requirement. reachable: a matching flow was not blocked (null counts as not blocked); blocked: every
    matching flow was, or none was seen and `blocked` (result.blocked) has a DNS failure for the host.
    """
    reqs = load_requirements() if requirements is None else requirements
    missing = [c for c in FLOW_COLUMNS if c not in flows.columns]
    if missing:
        raise ValueError(f"flows lacks columns: {', '.join(missing)}")

    # Only flows on a required port can match: cut the frame (and its columns) down first.
    wanted_ports = np.array(sorted({p for r in reqs for p in r.ports}))
    keep = [c for c in ("flow_id", *FLOW_COLUMNS) if c in flows.columns]
    f = flows.loc[np.isin(flows["server_port"].to_numpy("int64"), wanted_ports), keep].reset_index(drop=True)
    transport = f["transport"].astype("string").fillna("").to_numpy(object)
    port = f["server_port"].to_numpy("int64")
    service = f["service"].astype("string").fillna("").to_numpy(object)
    was_blocked = f["blocked"].astype("boolean").fillna(False).to_numpy(bool)
    client = pd.factorize(f["client_ip"])[0]

    # Each distinct server name is matched once per pattern; flows then pick the results up by code.
    codes, uniques = pd.factorize(f["server_name"])
    host_hits, alias_hits = _hits(reqs, uniques)
    names = [_any(h) | a for h, a in zip(host_hits, alias_hits)]
    claims = np.sum(names, axis=0) if names else np.zeros(len(uniques), int)

    dns = _dns_failures(blocked)
    dns_codes, dns_uniques = pd.factorize(dns["server_name"])
    dns_hits, _ = _hits(reqs, dns_uniques)
    sentences = _sentences(blocked)

    rows = []
    tp_masks: dict[tuple[str, int], np.ndarray] = {}
    for r, req in enumerate(reqs):
        # The provider's clients are MDM servers: "from 1 device" would mislead there.
        clients = "device" if "devices" in req.required_for else "client"
        by_service = np.zeros(len(f), bool)
        if req.service:
            # The service fallback takes nameless flows, and named ones no other requirement claims:
            # a sandbox courier's SNI is *.push.apple.com's, not the production courier's.
            unclaimed = _take((claims - names[r]) == 0, codes, null=True)
            by_service = (service == req.service) & unclaimed
        for h, host in enumerate(req.hosts):
            by_name = _take(host_hits[r][h] | alias_hits[r], codes)
            # A DNS failure is for the name, whatever port; aliases (the courier's bare SNI) are not
            # asked for in DNS, so a failed lookup of one says nothing.
            dns_rows = dns[_take(dns_hits[r][h], dns_codes)]
            for p in req.ports:
                tp = tp_masks.get((req.transport, p))
                if tp is None:
                    tp = tp_masks[(req.transport, p)] = (transport == req.transport) & (port == p)
                idx = np.flatnonzero(tp & (by_name | by_service))
                status, evidence = _verdict(f, idx, was_blocked[idx], len(np.unique(client[idx])), clients,
                                            dns_rows, sentences)
                rows.append(dict(group=req.group, host=host, transport=req.transport, port=p,
                                 purpose=req.purpose, required_for=", ".join(req.required_for), status=status,
                                 flows=len(idx), evidence=evidence, source=req.source))
    return to_frame(rows, CHECK)


def _take(per_name: np.ndarray, codes: np.ndarray, null: bool = False) -> np.ndarray:
    """Per flow: per_name[code], and `null` where the flow has no name (code -1 picks the appended value)."""
    return np.append(per_name, null)[codes]


def _hits(reqs: tuple[Requirement, ...], names: pd.Index | np.ndarray,
          ) -> tuple[list[list[np.ndarray]], list[np.ndarray]]:
    """Per requirement: a bool array over the distinct `names` per host, and one for its aliases."""
    names = [str(n).rstrip(".") for n in names]        # patterns ignore case; a trailing dot is the root
    def hit(rx: re.Pattern | None) -> np.ndarray:
        if rx is None:
            return np.zeros(len(names), bool)
        return np.fromiter((rx.search(n) is not None for n in names), bool, len(names))
    return [[hit(rx) for rx in r.host_res] for r in reqs], [hit(r.alias_re) for r in reqs]


def _any(arrays: list[np.ndarray]) -> np.ndarray:
    return np.logical_or.reduce(arrays) if len(arrays) > 1 else arrays[0]


def _dns_failures(blocked: pd.DataFrame | None) -> pd.DataFrame:
    cols = ["ts", "server_name", "reason", "sentence"]
    if blocked is None or blocked.empty or "reason" not in blocked or "server_name" not in blocked:
        return pd.DataFrame({c: pd.Series(dtype="string") for c in cols})
    dns = blocked[blocked["reason"].astype("string").str.startswith("dns_").fillna(False)
                  & blocked["server_name"].notna()]
    dns = dns.reindex(columns=cols)
    return dns.sort_values("ts", kind="stable") if dns["ts"].notna().any() else dns


def _sentences(blocked: pd.DataFrame | None) -> dict[int, str]:
    """flow_id -> the blocked table's sentence for that flow."""
    if blocked is None or blocked.empty or "flow_id" not in blocked or "sentence" not in blocked:
        return {}
    b = blocked[blocked["flow_id"].notna() & blocked["sentence"].notna()]
    return dict(zip(b["flow_id"].astype("int64"), b["sentence"].astype(str)))


def _verdict(f: pd.DataFrame, idx: np.ndarray, was_blocked: np.ndarray, n_clients: int, clients: str,
             dns: pd.DataFrame, sentences: dict[int, str]) -> tuple[str, str]:
    """status and evidence of one checklist row: its flows are f.iloc[idx], its DNS failures `dns`."""
    n = len(idx)
    if n:
        counted = f"{n} flow{'s' if n != 1 else ''} from {n_clients} {clients}{'s' if n_clients != 1 else ''}"
        if not was_blocked.all():
            ok = idx[~was_blocked]
            # Show a flow that plainly worked (established) over, say, an unblocked mid-stream RST.
            est = np.flatnonzero(f["state"].iloc[ok].isin(ESTABLISHED).to_numpy(bool))
            text = f"{counted}, e.g. {_example(f.iloc[ok[est[0] if len(est) else 0]])}"
            if was_blocked.any():
                reasons = f["block_reason"].iloc[idx[was_blocked]].dropna().unique()
                text += f"; {int(was_blocked.sum())} blocked" + (f" ({', '.join(reasons)})" if len(reasons) else "")
            return REACHABLE, text
        first = f.iloc[idx[0]]
        sentence = None
        if "flow_id" in first and pd.notna(first["flow_id"]):
            sentence = sentences.get(int(first["flow_id"]))
        reason = first["block_reason"] if pd.notna(first["block_reason"]) else "blocked"
        text = f"{counted}, all blocked: {reason}: {sentence or _example(first)}"
        if len(dns):
            text += f"; and {_dns_text(dns)}"
        return BLOCKED, text
    if len(dns):
        return BLOCKED, _dns_text(dns)
    return NOT_SEEN, ""


def _example(flow: pd.Series) -> str:
    name = f" ({flow['server_name']})" if pd.notna(flow["server_name"]) else ""
    state = f" {flow['state']}" if pd.notna(flow["state"]) else ""
    return f"{flow['client_ip']} -> {flow['server_ip']}{name}{state}"


def _dns_text(dns: pd.DataFrame) -> str:
    first = dns.iloc[0]
    many = f"{len(dns)} DNS failures, first " if len(dns) > 1 else "DNS failure "
    sentence = f": {first['sentence']}" if pd.notna(first["sentence"]) else ""
    return f"{many}{first['reason']} for {first['server_name']}{sentence}"
