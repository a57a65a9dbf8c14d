"""Put what the parsers found into the flows frame: TLS, HTTP and DNS-derived names."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..flows.finalize import UID
from .collect import DnsRecords, MetadataCollector
from .column_codes import arrow_codes
from .meta_log import MetaTable, take_or_null

TEXT = ("sni", "alpn", "tls_version", "tls_alert", "cert_issuer", "http_method", "http_host", "http_path",
        "http_user_agent")
NAME_SOURCE = "server_name_source"      # sni, http-host or dns: which evidence named the server
DNS_QUERY = "dns_query"                  # a DNS flow's first question (for the classifier)
TLS_EVIDENCE = ("client_alert", "server_alpn")   # hidden: what block reasons read (docs/blocked.md)


def attach(flows: pd.DataFrame, collected: MetadataCollector) -> pd.DataFrame:
    """Fill sni, alpn, server_name, http_*, tls_*, cert_issuer, tls_handshake_ms by flow uid."""
    flows = flows.copy(deep=False)          # copy-on-write (pandas 3): the caller's frame stays as it is
    n = len(flows)
    # A collector resolves its metadata log; a merge of several hands over FlowMeta records.
    table = collected.table() if hasattr(collected, "table") else MetaTable.from_metas(collected.flows)
    if len(table) and n:
        at = pd.Index(table.uid).get_indexer(flows[UID].to_numpy())
        has = at >= 0
        safe = np.where(has, at, 0)
        indices: dict[tuple[int, int], pa.Array] = {}     # per source row list: Arrow take indices

        def found(name: str) -> pa.Array:
            """table.column(name, at), the take indices made once per source row list (the
            fields of one kind of record share theirs)."""
            values, rows = table.sources[name]
            key = (id(rows), len(values))
            index = indices.get(key)
            if index is None:
                picked = np.where(has, rows[safe], -1) if len(rows) else np.full(n, -1)
                index = indices[key] = pa.array(np.where(picked < 0, len(values), picked))
            return pa.concat_arrays([values, pa.nulls(1, values.type)]).take(index)

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


def _server_names(flows: pd.DataFrame, dns: DnsRecords) -> tuple[pa.Array, pa.Array]:
    """SNI, else HTTP Host (port stripped), else the name a DNS answer gave the server address
    before the flow started (answers seen later do not count). Arrow columns, each value taken
    once from where it is."""
    n = len(flows)
    sni, host = _text(flows["sni"]), _text(flows["http_host"])
    has_sni = _filled(sni)
    has_host = ~has_sni & _filled(host)
    # "host:port" loses its port; a name with several colons (an IPv6 literal) stays as it is
    port = pc.equal(pc.count_substring(host, ":"), 1).fill_null(False)
    stripped = pc.if_else(port, pc.replace_substring_regex(host, ":[^:]*$", ""), host)
    pick = np.full(n, -1, np.int64)                 # row of concat([sni, stripped, dns names]), -1: null
    kind = np.full(n, -1, np.int64)                 # 0 sni, 1 http-host, 2 dns
    every = np.arange(n, dtype=np.int64)
    pick[has_sni], kind[has_sni] = every[has_sni], 0
    pick[has_host], kind[has_host] = n + every[has_host], 1
    named = pa.array([], pa.large_string())
    rest = np.flatnonzero(~has_sni & ~has_host)
    if rest.size and dns.ts:
        # Addresses as codes of the flows' distinct server addresses (no Python string per flow);
        # an answered address no flow went to matches nothing.
        # (classify reads the same codes: made once per column)
        encoded = arrow_codes(flows["server_ip"])
        if encoded is None:
            encoded = _text(flows["server_ip"]).dictionary_encode()
            encoded = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary
        codes, distinct = encoded
        answered = pc.index_in(pa.array(dns.address, pa.large_string()), value_set=distinct.cast(pa.large_string()))
        # not -1: that is a flow without an address
        answered = answered.fill_null(-2).to_numpy(zero_copy_only=False).astype(np.int64)
        answers = pd.DataFrame({"ts": dns.ts, "server_ip": answered, "dns_name": dns.name}).sort_values("ts")
        wanted = pd.DataFrame({"ts": flows["ts_start"].to_numpy()[rest], "server_ip": codes[rest], "row": rest})
        if not wanted["ts"].is_monotonic_increasing:         # flows come ordered by start: mostly not needed
            wanted = wanted.sort_values("ts")
        # allow_exact_matches: an answer with the same timestamp as the SYN was seen first.
        matched = pd.merge_asof(wanted, answers, on="ts", by="server_ip", direction="backward")
        ok = matched["dns_name"].notna().to_numpy()
        rows = matched["row"].to_numpy()[ok]
        named = pa.array(matched["dns_name"].to_numpy()[ok], type=pa.large_string())
        pick[rows], kind[rows] = 2 * n + np.arange(len(rows)), 2
    name = take_or_null(pa.concat_arrays([sni, stripped.cast(pa.large_string()), named]), pick)
    return name, take_or_null(pa.array(["sni", "http-host", "dns"], pa.large_string()), kind)


def _text(column: pd.Series) -> pa.Array:
    """A text column as one Arrow large_string array."""
    got = pa.array(column.array) if isinstance(column.array, pd.arrays.ArrowStringArray) else \
        pa.array(column.astype(object).to_numpy(), type=pa.large_string(), from_pandas=True)
    got = got.combine_chunks() if isinstance(got, pa.ChunkedArray) else got
    return got.cast(pa.large_string()) if got.type != pa.large_string() else got


def _filled(text: pa.Array) -> np.ndarray:
    """Not null and not empty."""
    return pc.greater(pc.binary_length(text), 0).fill_null(False).to_numpy(zero_copy_only=False)
