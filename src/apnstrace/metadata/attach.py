"""Put what the parsers found into the flows frame: TLS, HTTP and DNS-derived names."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..flows.finalize import UID
from .collect import DnsRecords, MetadataCollector

TEXT = ("sni", "alpn", "tls_version", "tls_alert", "cert_issuer", "http_method", "http_host", "http_path",
        "http_user_agent")
NAME_SOURCE = "server_name_source"      # sni, http-host or dns: which evidence named the server
DNS_QUERY = "dns_query"                  # a DNS flow's first question (for the classifier)


def attach(flows: pd.DataFrame, collected: MetadataCollector) -> pd.DataFrame:
    """Fill sni, alpn, server_name, http_*, tls_*, cert_issuer, tls_handshake_ms by flow uid."""
    flows = flows.copy()
    if collected.flows and len(flows):
        found = pd.DataFrame.from_dict({uid: vars(meta) for uid, meta in collected.flows.items()}, orient="index")
        at = flows[UID].map(pd.Series(np.arange(len(found)), index=found.index))
        hit = at.notna().to_numpy()
        idx = at[hit].astype(np.int64).to_numpy()
        for name in TEXT:
            values = found[name].to_numpy(dtype=object)[idx]
            column = flows[name].astype(object)
            column[hit] = values
            flows[name] = pd.array(column, dtype="string")
        status = flows["http_status"].astype("Float64")
        status[hit] = pd.array(found["http_status"].to_numpy(dtype=object)[idx], dtype="Float64")
        flows["http_status"] = status.astype("Int32")
        hello = pd.array(found["hello_ts"].to_numpy(dtype=object)[idx], dtype="Float64")
        server = pd.array(found["server_ts"].to_numpy(dtype=object)[idx], dtype="Float64")
        query = np.full(len(flows), None, dtype=object)
        query[hit] = found["dns_query"].to_numpy(dtype=object)[idx]
        flows[DNS_QUERY] = pd.array(query, dtype="string")
        ms = flows["tls_handshake_ms"].astype("Float64")
        ms[hit] = (server - hello) * 1000.0
        flows["tls_handshake_ms"] = ms.mask(ms < 0)
    if DNS_QUERY not in flows:
        flows[DNS_QUERY] = pd.array([None] * len(flows), dtype="string")
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
