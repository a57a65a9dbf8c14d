"""Put what the parsers found into the flows frame: TLS, HTTP and DNS-derived names."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from ..flows.finalize import UID
from .collect import DnsRecords, MetadataCollector
from .meta_log import MetaTable, take_or_null

TEXT = ("sni", "alpn", "tls_version", "tls_alert", "cert_issuer", "http_method", "http_host", "http_path",
        "http_user_agent")
NAME_SOURCE = "server_name_source"      # sni, http-host or dns: which evidence named the server
DNS_QUERY = "dns_query"                  # a DNS flow's first question (for the classifier)
TLS_EVIDENCE = ("client_alert", "server_alpn")   # hidden: what block reasons read (docs/blocked.md)


def attach(flows: pd.DataFrame, collected: MetadataCollector) -> pd.DataFrame:
    """Fill sni, alpn, server_name, http_*, tls_*, cert_issuer, tls_handshake_ms by flow uid."""
    flows = flows.copy()
    n = len(flows)
    # A collector resolves its metadata log; a merge of several hands over FlowMeta records.
    table = collected.table() if hasattr(collected, "table") else MetaTable.from_metas(collected.flows)
    if len(table) and n:
        at = pd.Index(table.uid).get_indexer(flows[UID].to_numpy())

        def found(name: str) -> pa.Array:
            return take_or_null(table.columns[name], at)

        for name in TEXT + (DNS_QUERY,) + TLS_EVIDENCE:
            flows[name] = pd.array(found(name), dtype="string")
        status = found("http_status")
        flows["http_status"] = pd.arrays.IntegerArray(status.fill_null(0).to_numpy().astype(np.int32),
                                                       status.is_null().to_numpy(zero_copy_only=False))
        hello = found("hello_ts").to_numpy(zero_copy_only=False)
        server = found("server_ts").to_numpy(zero_copy_only=False)
        ms = (server - hello) * 1000.0
        ok = np.isfinite(ms) & (ms >= 0)
        flows["tls_handshake_ms"] = pd.arrays.FloatingArray(np.where(ok, ms, 0.0), ~ok)
        flows["server_hello_ts"] = server
    for name in (DNS_QUERY,) + TLS_EVIDENCE:
        if name not in flows:
            flows[name] = pd.array([None] * len(flows), dtype="string")
    if "server_hello_ts" not in flows:
        flows["server_hello_ts"] = np.full(len(flows), np.nan)
    name, source = _server_names(flows, collected.dns)
    flows["server_name"] = pd.array(name, dtype="string")
    flows[NAME_SOURCE] = pd.array(source, dtype="string")
    return flows


def _server_names(flows: pd.DataFrame, dns: DnsRecords) -> tuple[np.ndarray, np.ndarray]:
    """SNI, else HTTP Host (port stripped), else the name a DNS answer gave the server address
    before the flow started (answers seen later do not count)."""
    n = len(flows)
    name = np.full(n, None, dtype=object)
    source = np.full(n, None, dtype=object)
    if n == 0:
        return name, source
    sni = flows["sni"].astype(object).to_numpy()
    host = flows["http_host"].astype(object).to_numpy()
    has_sni = flows["sni"].fillna("").ne("").to_numpy()
    has_host = ~has_sni & flows["http_host"].fillna("").ne("").to_numpy()
    name[has_sni], source[has_sni] = sni[has_sni], "sni"
    stripped = np.array([h.rsplit(":", 1)[0] if h.count(":") == 1 else h for h in host[has_host]], dtype=object)
    name[has_host], source[has_host] = stripped, "http-host"
    rest = np.flatnonzero(~has_sni & ~has_host)
    if rest.size and dns.ts:
        answers = pd.DataFrame({"ts": dns.ts, "server_ip": dns.address, "dns_name": dns.name}).sort_values("ts")
        wanted = pd.DataFrame({"ts": flows["ts_start"].to_numpy()[rest],
                               "server_ip": flows["server_ip"].astype(object).to_numpy()[rest],
                               "row": rest}).sort_values("ts")
        # allow_exact_matches: an answer with the same timestamp as the SYN was seen first.
        matched = pd.merge_asof(wanted, answers, on="ts", by="server_ip", direction="backward")
        ok = matched["dns_name"].notna().to_numpy()
        rows = matched["row"].to_numpy()[ok]
        name[rows] = matched["dns_name"].to_numpy()[ok]
        source[rows] = "dns"
    return name, source
