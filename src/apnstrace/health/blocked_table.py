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
    parts = [p for p in (_flow_rows(flows), _lookup_rows(flows, failures, site)) if p is not None]
    if not parts:
        return schema.to_frame(None, schema.BLOCKED)
    table = pd.concat(parts, ignore_index=True)
    del parts                                   # one copy of the rows at a time
    table["_variant"] = table["_variant"].fillna("") if "_variant" in table else ""
    table["_rank"] = _severity_ranks(table["category"])
    # Sorted before the sentences are made (they are row by row): the sort does not copy them.
    # The flow rows come in this order (_flow_rows): the sort then copies nothing (pandas keeps
    # the columns when nothing moves; engine_10m's copy was ~56 MB beside the rows it sorted),
    # unless lookup rows are among them.
    table = table.sort_values(["_rank", "ts", "flow_id"], kind="stable").drop(columns="_rank")
    table["sentence"] = _sentences(table)
    table = schema.to_frame({c.name: table[c.name].array for c in schema.BLOCKED}, schema.BLOCKED, copy=False)
    # Arrow's pool (mimalloc) keeps what the sentences' kernels freed: given back here, it is
    # not held beside the sequences' numpy work, which glibc serves (engine_10m ~50 MB).
    pa.default_memory_pool().release_unused()
    return table


def _severity_ranks(category: pd.Series) -> np.ndarray:
    """Each row's category's rank in sentences.toml's severity (others, and none, last)."""
    severity = _phrases()["severity"]
    codes, categories = pd.factorize(category)                  # a rank per distinct category
    ranks = np.array([severity.get(c, len(severity)) for c in categories] + [len(severity)], dtype=np.int64)
    return ranks[codes]


def _flow_rows(flows: pd.DataFrame) -> pd.DataFrame | None:
    """The blocked flows' rows, with their evidence and meaning variant, worst first (as
    blocked_table sorts: category's severity, then start, then flow id; ties in flow order)."""
    rows = np.flatnonzero(flows["blocked"].fillna(False).to_numpy(bool)) if len(flows) else np.empty(0, np.int64)
    if not len(rows):
        return None
    rows = rows[np.lexsort((flows["flow_id"].to_numpy()[rows], flows["ts_start"].to_numpy()[rows],
                            _severity_ranks(flows["category"].iloc[rows]))).astype(np.int64)]
    # The columns it reads only, kept as they are: Arrow text stays Arrow text (as Python
    # strings, a scan's blocked rows cost ~60 bytes a value).
    hit = flows[[c for c in _HIT_COLUMNS if c in flows]].iloc[rows]
    part = pd.DataFrame({name: hit[name].array for name in _FLOW_COLUMNS}, copy=False)
    part["ts"] = hit["ts_start"].to_numpy()
    part["reason"] = hit["block_reason"].array
    part["evidence"] = hit[EVIDENCE].array if EVIDENCE in hit else None
    notes, injected = rst_origin(flows, rows)
    noted = np.flatnonzero(notes != "")
    if len(noted):                              # the evidence, then the note (the few reset rows only)
        said = part["evidence"].iloc[noted].to_numpy(dtype=object)
        evidence = part["evidence"].copy()
        evidence.iloc[noted] = [f"{e}; {n}" if e else n for e, n in zip(said.tolist(), notes[noted].tolist())]
        part["evidence"] = evidence
    # The meaning the sentence ends with: the reason's own, or a variant the evidence shows.
    variant = np.full(len(rows), "", dtype=object)
    variant[(part["reason"] == "reset").fillna(False).to_numpy(bool) & unacknowledged_synack(hit)] = "_unacknowledged"
    variant[injected] = "_injected"            # a box on the path sent the RST, whatever came before
    part["_variant"] = variant
    return part


def _lookup_rows(flows: pd.DataFrame, failures: Sequence, site: Site | None) -> pd.DataFrame | None:
    """Failed lookups of watched names (health/dns_failures.py), on the DNS flows that carried them."""
    lookups = dns_failures(flows, list(failures), site)
    if not len(lookups):
        return None
    rows = lookups["row"].to_numpy()
    part = pd.DataFrame({name: flows[name].iloc[rows].to_numpy() for name in _FLOW_COLUMNS})
    for name in ("ts", "reason", "category"):       # the service stays the DNS flow's own
        part[name] = lookups[name].to_numpy()
    part["server_name"] = lookups["qname"].to_numpy()
    part["evidence"] = [_dns_evidence(q, t, r) for q, t, r in lookups[["qname", "qtype", "reason"]].itertuples(index=False)]
    return part


def _dns_evidence(qname: str, qtype: str, reason: str) -> str:
    asked = f"{qtype} {qname}" if qtype else qname
    if reason == "dns_no_answer":
        return f"query for {asked} got no answer"
    if reason == "dns_sinkhole":
        return f"{asked} answered with a null address (0.0.0.0, 127/8, ::)"
    return f"{asked} answered {reason[4:].upper()}"


# Rows per slice of sentences: the pieces' Arrow temporaries are a slice's, not the table's
# (engine_10m's 287K rows: the full-length ones were ~55 MB at _tables' peak).
_SLICE = 1 << 15


def _sentences(table: pd.DataFrame) -> pd.arrays.ArrowStringArray:
    """One sentence per row, "<head>: <evidence> - <meaning>", built column-wise as Arrow
    strings (scans make hundreds of thousands of blocked rows), a slice of rows at a time:
    the pieces of few distinct values are said once each in Python, and Arrow joins them row by row."""
    phrases = _phrases()
    chunks = [_slice_sentences(table.iloc[start:start + _SLICE], phrases) for start in range(0, len(table), _SLICE)]
    return pd.arrays.ArrowStringArray(pa.chunked_array(chunks, pa.large_string()))


def _slice_sentences(table: pd.DataFrame, phrases: dict) -> pa.Array:
    # Variants with their own meaning: "<reason>_injected" (another box sent the RST,
    # health/rst_origin.py), "reset_unacknowledged" (the server's SYN/ACK went unanswered).
    # The meaning only depends on (reason + variant, category).
    meanings = _per_distinct(lambda r, v, c: _meaning(r + v, c, phrases),
                             table["reason"], table["_variant"], table["category"])
    dns = table["reason"].str.startswith("dns_").fillna(False).to_numpy(bool)
    # The head: "DNS lookup via <ip>", or "<TRANSPORT> <port> to <ip> (<service>, <name>)".
    lead = _per_distinct(lambda d, t, p: "DNS lookup via " if d else f"{_said(t).upper()} {_said(p)} to ",
                         pd.Series(dns, index=table.index), table["transport"], table["server_port"])
    service, server_name = _texts(table["service"]), _texts(table["server_name"])
    empty = _text("")
    both = pc.and_(pc.not_equal(service, empty), pc.not_equal(server_name, empty))
    label = pc.if_else(both, _join(service, ", ", server_name), _join(service, server_name))
    del both, service, server_name              # a slice's temporaries let go as soon as used
    label = pc.if_else(pc.or_(pa.array(dns), pc.equal(label, empty)), empty, _join(" (", label, ")"))
    sentences = _join(lead, _texts(table["server_ip"]), label, ": ", _texts(table["evidence"]), " - ", meanings)
    return sentences.combine_chunks() if isinstance(sentences, pa.ChunkedArray) else sentences


def _said(value) -> str:
    """A value as the sentence says it: missing says nothing."""
    return "" if pd.isna(value) else str(value)


def _texts(column: pd.Series):
    """A column's values as Arrow text, missing as "": Arrow text as it is, others said once
    per distinct value."""
    if isinstance(column.dtype, pd.StringDtype) and column.dtype.storage == "pyarrow":
        return pc.fill_null(pa.array(column.array).cast(pa.large_string()), _text(""))
    return _per_distinct(_said, column)


def _per_distinct(say, *columns: pd.Series) -> pa.Array:
    """say(*values) for every row, called once per distinct combination of the columns' values."""
    codes, uniques = pd.MultiIndex.from_arrays([c.array for c in columns]).factorize()
    texts = pa.array([say(*values) for values in uniques], pa.large_string())
    return texts.take(pa.array(codes, pa.int64()))


def _join(*pieces) -> pa.Array:
    """The pieces (arrays, or one text for every row) joined row by row."""
    return pc.binary_join_element_wise(*(_text(p) for p in pieces), _text(""))


def _text(piece):
    return pa.scalar(piece, pa.large_string()) if isinstance(piece, str) else piece


def _meaning(reason: str, category: str, phrases: dict) -> str:
    what = phrases["what"].get(category, phrases["what"]["other"])
    meaning = phrases["meaning"].get(reason) or phrases["meaning"]["dns_other"]
    return meaning.format(what=what)
