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
from .reasons import EVIDENCE, unacknowledged_synack
from .rst_origin import rst_origin

_FLOW_COLUMNS = ("flow_id", "transport", "client_ip", "client_port", "server_ip", "server_port",
                 "category", "service", "server_name", "state")


@cache
def _phrases() -> dict:
    return tomllib.loads(resources.files(__package__).joinpath("sentences.toml").read_text("utf-8"))


def blocked_table(flows: pd.DataFrame, failures: Sequence = (), site: Site | None = None) -> pd.DataFrame:
    """Rows of schema.BLOCKED from a flows frame that went through health.block_reasons
    (and, for DNS rows, the collector's DNS failures and the flows' hidden dns_query)."""
    parts = []
    rows = np.flatnonzero(flows["blocked"].fillna(False).to_numpy(bool)) if len(flows) else np.empty(0, np.int64)
    hit = flows.iloc[rows]
    if len(hit):
        part = pd.DataFrame({name: hit[name].to_numpy() for name in _FLOW_COLUMNS})
        part["ts"] = hit["ts_start"].to_numpy()
        part["reason"] = hit["block_reason"].to_numpy(dtype=object)
        part["evidence"] = hit[EVIDENCE].to_numpy(dtype=object) if EVIDENCE in hit else None
        notes, injected = rst_origin(flows, rows)
        if injected.any() or (notes != "").any():
            said = np.array([e or "" for e in part["evidence"]], dtype=object)
            part["evidence"] = np.where(notes != "", np.where(said != "", said + "; ", "") + notes, part["evidence"])
        # The meaning the sentence ends with: the reason's own, or a variant the evidence shows.
        variant = np.full(len(rows), "", dtype=object)
        variant[(part["reason"].to_numpy(dtype=object) == "reset") & unacknowledged_synack(hit)] = "_unacknowledged"
        variant[injected] = "_injected"            # a box on the path sent the RST, whatever came before
        part["_variant"] = variant
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
    table["_variant"] = table["_variant"].fillna("") if "_variant" in table else ""
    table["sentence"] = _sentences(table)
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


def _sentences(table: pd.DataFrame) -> np.ndarray:
    """One sentence per row, built column-wise: scans make tens of thousands of blocked rows."""
    phrases = _phrases()
    reason = table["reason"].to_numpy(dtype=object)
    # Variants with their own meaning: "<reason>_injected" (another box sent the RST,
    # health/rst_origin.py), "reset_unacknowledged" (the server's SYN/ACK went unanswered).
    reason = reason + table["_variant"].to_numpy(dtype=object)
    category = table["category"].to_numpy(dtype=object)
    # The meaning only depends on (reason, category): format each pair once.
    pairs = pd.MultiIndex.from_arrays([reason, category])
    codes, uniques = pairs.factorize()
    meanings = np.array([_meaning(r, c, phrases) for r, c in uniques], dtype=object)[codes]

    def text(name: str) -> np.ndarray:
        col = table[name].to_numpy(dtype=object)
        return np.where(pd.isna(col), "", col).astype(str).astype(object)

    service, server_name = text("service"), text("server_name")
    label = np.where((service != "") & (server_name != ""), service + ", " + server_name, service + server_name)
    label = np.where(label != "", " (" + label + ")", "")
    ip = text("server_ip")
    dns = np.array([r.startswith("dns_") for r in table["reason"].to_numpy(dtype=object)], dtype=bool) if len(reason) else np.zeros(0, bool)
    head = np.where(dns, "DNS lookup via " + ip,
                    np.char.upper(text("transport").astype(str)).astype(object) + " " + text("server_port")
                    + " to " + ip + label)
    return head + ": " + text("evidence") + " - " + meanings


def _meaning(reason: str, category: str, phrases: dict) -> str:
    what = phrases["what"].get(category, phrases["what"]["other"])
    meaning = phrases["meaning"].get(reason) or phrases["meaning"]["dns_other"]
    return meaning.format(what=what)
