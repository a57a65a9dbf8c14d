"""result.blocked: blocked flows and failed lookups of watched names, worst first, each said
in one sentence (docs/blocked.md)."""
from __future__ import annotations

import tomllib
from collections.abc import Sequence
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import schema
from ..site import Site
from .dns_failures import dns_failures
from .reasons import EVIDENCE, unacknowledged_synack
from .rst_origin import rst_origin

_FLOW_COLUMNS = ("flow_id", "transport", "client_ip", "client_port", "server_ip", "server_port",
                 "category", "service", "server_name", "state")
# What the blocked rows' part reads (unacknowledged_synack: _handshake, _syns, pkts_c2s, _c_payload).
_HIT_COLUMNS = (*_FLOW_COLUMNS, "ts_start", "block_reason", EVIDENCE, "_handshake", "_syns", "pkts_c2s", "_c_payload")


@cache
def _phrases() -> dict:
    return tomllib.loads(resources.files(__package__).joinpath("sentences.toml").read_text("utf-8"))


def blocked_table(flows: pd.DataFrame, failures: Sequence = (), site: Site | None = None) -> pd.DataFrame:
    """Rows of schema.BLOCKED from a flows frame that went through health.block_reasons
    (and, for DNS rows, the collector's DNS failures and the flows' hidden dns_query)."""
    parts = []
    rows = np.flatnonzero(flows["blocked"].fillna(False).to_numpy(bool)) if len(flows) else np.empty(0, np.int64)
    # The columns it reads only, kept as they are: Arrow text stays Arrow text (as Python
    # strings, a scan's blocked rows cost ~60 bytes a value).
    hit = flows[[c for c in _HIT_COLUMNS if c in flows]].iloc[rows]
    if len(hit):
        part = pd.DataFrame({name: hit[name].array for name in _FLOW_COLUMNS})
        part["ts"] = hit["ts_start"].to_numpy()
        part["reason"] = hit["block_reason"].array
        part["evidence"] = hit[EVIDENCE].array if EVIDENCE in hit else None
        notes, injected = rst_origin(flows, rows)
        if injected.any() or (notes != "").any():
            said = np.array([e or "" for e in part["evidence"].to_numpy(dtype=object)], dtype=object)
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
    codes, categories = pd.factorize(table["category"])       # a rank per distinct category
    ranks = np.array([severity.get(c, len(severity)) for c in categories] + [len(severity)], dtype=np.int64)
    table["_rank"] = ranks[codes]
    table = table.sort_values(["_rank", "ts", "flow_id"], kind="stable").drop(columns="_rank")
    return schema.to_frame({c.name: table[c.name].array for c in schema.BLOCKED}, schema.BLOCKED)


def _dns_evidence(qname: str, qtype: str, reason: str) -> str:
    asked = f"{qtype} {qname}" if qtype else qname
    if reason == "dns_no_answer":
        return f"query for {asked} got no answer"
    if reason == "dns_sinkhole":
        return f"{asked} answered with a null address (0.0.0.0, 127/8, ::)"
    return f"{asked} answered {reason[4:].upper()}"


def _sentences(table: pd.DataFrame) -> pd.arrays.ArrowStringArray:
    """One sentence per row, built column-wise as Arrow strings (scans make hundreds of
    thousands of blocked rows): each distinct value of a column is said once in Python, then
    Arrow joins the pieces row by row."""
    phrases = _phrases()
    # Variants with their own meaning: "<reason>_injected" (another box sent the RST,
    # health/rst_origin.py), "reset_unacknowledged" (the server's SYN/ACK went unanswered).
    # The meaning only depends on (reason + variant, category): format each triple once.
    triples = pd.MultiIndex.from_arrays([table["reason"].array, table["_variant"].array, table["category"].array])
    codes, uniques = triples.factorize()
    meanings = _said([_meaning(r + v, c, phrases) for r, v, c in uniques], codes)

    def text(name: str, say=str) -> pa.Array:
        codes, uniques = pd.factorize(table[name].array)        # missing: -1, said ""
        return _said([say(u) for u in uniques] + [""], np.where(codes < 0, len(uniques), codes))

    service, server_name, ip = text("service"), text("server_name"), text("server_ip")
    both = pc.and_(pc.not_equal(service, _text("")), pc.not_equal(server_name, _text("")))
    label = pc.if_else(both, _join(service, ", ", server_name), _join(service, server_name))
    label = pc.if_else(pc.not_equal(label, _text("")), _join(" (", label, ")"), _text(""))
    dns_codes, reasons = pd.factorize(table["reason"].array)
    dns = np.array([r.startswith("dns_") for r in reasons] + [False], bool)[np.where(dns_codes < 0, len(reasons), dns_codes)]
    head = pc.if_else(pa.array(dns), _join("DNS lookup via ", ip),
                      _join(text("transport", lambda u: str(u).upper()), " ", text("server_port"), " to ", ip, label))
    return pd.arrays.ArrowStringArray(_join(head, ": ", text("evidence"), " - ", meanings))


def _said(texts: list[str], codes: np.ndarray) -> pa.Array:
    """texts[codes] as an Arrow string array (the Python strings stay one per distinct text)."""
    return pa.array(texts, pa.large_string()).take(pa.array(codes, pa.int64()))


def _join(*pieces) -> pa.Array:
    """The pieces (arrays, or one text for every row) joined row by row."""
    return pc.binary_join_element_wise(*(_text(p) for p in pieces), _text(""))


def _text(piece):
    return pa.scalar(piece, pa.large_string()) if isinstance(piece, str) else piece


def _meaning(reason: str, category: str, phrases: dict) -> str:
    what = phrases["what"].get(category, phrases["what"]["other"])
    meaning = phrases["meaning"].get(reason) or phrases["meaning"]["dns_other"]
    return meaning.format(what=what)
