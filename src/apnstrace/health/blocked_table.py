"""result.blocked: blocked flows and failed lookups of watched names, worst first, each said
in one sentence (docs/blocked.md)."""
from __future__ import annotations

import tomllib
from collections.abc import Sequence
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd

from .. import schema
from ..site import Site
from .dns_failures import dns_failures
from .reasons import EVIDENCE

_FLOW_COLUMNS = ("flow_id", "transport", "client_ip", "client_port", "server_ip", "server_port",
                 "category", "service", "server_name", "state")


@cache
def _phrases() -> dict:
    return tomllib.loads(resources.files(__package__).joinpath("sentences.toml").read_text("utf-8"))


def blocked_table(flows: pd.DataFrame, failures: Sequence = (), site: Site | None = None) -> pd.DataFrame:
    """Rows of schema.BLOCKED from a flows frame that went through health.block_reasons
    (and, for DNS rows, the collector's DNS failures and the flows' hidden dns_query)."""
    parts = []
    hit = flows[flows["blocked"].fillna(False).to_numpy(bool)] if len(flows) else flows
    if len(hit):
        part = pd.DataFrame({name: hit[name].to_numpy() for name in _FLOW_COLUMNS})
        part["ts"] = hit["ts_start"].to_numpy()
        part["reason"] = hit["block_reason"].to_numpy(dtype=object)
        part["evidence"] = hit[EVIDENCE].to_numpy(dtype=object) if EVIDENCE in hit else None
        parts.append(part)
    lookups = dns_failures(flows, list(failures), site)
    if len(lookups):
        rows = lookups["row"].to_numpy()
        part = pd.DataFrame({name: flows[name].to_numpy()[rows] for name in _FLOW_COLUMNS})
        for name in ("ts", "reason", "category"):       # the service stays the DNS flow's own
            part[name] = lookups[name].to_numpy()
        part["server_name"] = lookups["qname"].to_numpy()
        part["evidence"] = [_dns_evidence(q, t, r) for q, t, r in lookups[["qname", "qtype", "reason"]].itertuples(index=False)]
        parts.append(part)
    if not parts:
        return schema.to_frame(None, schema.BLOCKED)
    table = pd.concat(parts, ignore_index=True)
    table["sentence"] = [_sentence(row) for row in table.itertuples(index=False)]
    severity = _phrases()["severity"]
    table["_rank"] = table["category"].map(lambda c: severity.get(c, len(severity)))
    table = table.sort_values(["_rank", "ts", "flow_id"], kind="stable").drop(columns="_rank")
    return schema.to_frame({c.name: table[c.name].to_numpy() for c in schema.BLOCKED}, schema.BLOCKED)


def _dns_evidence(qname: str, qtype: str, reason: str) -> str:
    asked = f"{qtype} {qname}" if qtype else qname
    if reason == "dns_no_answer":
        return f"query for {asked} got no answer"
    if reason == "dns_sinkhole":
        return f"{asked} answered with a null address (0.0.0.0, 127/8, ::)"
    return f"{asked} answered {reason[4:].upper()}"


def _sentence(row) -> str:
    phrases = _phrases()
    what = phrases["what"].get(row.category, phrases["what"]["other"])
    meaning = phrases["meaning"].get(row.reason) or phrases["meaning"]["dns_other"]
    if row.reason.startswith("dns_"):
        head = f"DNS lookup via {row.server_ip}"
    else:
        label = ", ".join(str(x) for x in (row.service, row.server_name) if isinstance(x, str) and x)
        head = f"{str(row.transport).upper()} {row.server_port} to {row.server_ip}" + (f" ({label})" if label else "")
    return f"{head}: {row.evidence} - {meaning.format(what=what)}"
