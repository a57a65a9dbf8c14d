"""Output columns as data: name, pandas dtype, doc. The spec's schemas are a contract."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    dtype: str
    doc: str


FLOWS: tuple[Column, ...] = (
    Column("flow_id", "int64", "Stable within one result: flows numbered in order of ts_start."),
    Column("ts_start", "float64", "First frame of the flow, epoch seconds."),
    Column("ts_end", "float64", "Last frame of the flow, epoch seconds."),
    Column("duration", "float64", "ts_end - ts_start, seconds."),
    Column("transport", "string", "`tcp` or `udp`."),
    Column("client_ip", "string", "Initiator: the SYN sender; for mid-stream flows the side on the higher port."),
    Column("client_port", "int32", "Initiator's port."),
    Column("server_ip", "string", "Responder's address."),
    Column("server_port", "int32", "Responder's port."),
    Column("vlan", "Int32", "Outermost 802.1Q/802.1ad VLAN id of the flow's first frame; null when untagged."),
    Column("category", "string", "apns, mdm, enrollment, sus, file_share, http_distribution, apple, dns, other."),
    Column("service", "string", "Finer label: apns-courier, apns-provider, mdm, sus, smb, afp, http, https, ..."),
    Column("classified_by", "string", "Evidence that decided the category: sni, dns, http-host, site, address, port."),
    Column("sni", "string", "TLS ClientHello server_name, reassembled if split across segments."),
    Column("alpn", "string", "TLS ClientHello ALPN list, comma-separated."),
    Column("server_name", "string", "Best name for the server: SNI, else HTTP Host, else an earlier DNS answer."),
    Column("http_method", "string", "First clear-text HTTP request's method."),
    Column("http_host", "string", "First clear-text HTTP request's Host header."),
    Column("http_path", "string", "First clear-text HTTP request's path."),
    Column("http_user_agent", "string", "First clear-text HTTP request's User-Agent."),
    Column("http_status", "Int32", "First clear-text HTTP response's status code."),
    Column("tls_version", "string", "Negotiated TLS version (ServerHello)."),
    Column("tls_alert", "string", "First TLS alert, level/description."),
    Column("cert_issuer", "string", "Leaf certificate issuer, when visible (TLS 1.2 and older)."),
    Column("state", "string", "Zeek conn_state: S0 S1 SF REJ S2 S3 RSTO RSTR RSTOS0 RSTRH SH SHR OTH."),
    Column("blocked", "boolean", "The flow never got through."),
    Column("block_reason", "string", "no_response, reset, icmp_unreachable, reset_after_handshake, tls_alert, tls_intercepted, no_server_data."),
    Column("pkts_c2s", "int64", "Frames client -> server."),
    Column("pkts_s2c", "int64", "Frames server -> client."),
    Column("bytes_c2s", "int64", "Original frame lengths on the wire (pcap orig_len), client -> server."),
    Column("bytes_s2c", "int64", "Original frame lengths on the wire (pcap orig_len), server -> client."),
    Column("syn_retries", "int32", "Client SYNs (without ACK) beyond the first."),
    Column("retransmits", "int64", "TCP data segments that carried only bytes already seen in their direction."),
    Column("rtt_ms", "Float64", "Last client SYN -> first server SYN/ACK, milliseconds; null without a handshake."),
    Column("tls_handshake_ms", "Float64", "ClientHello -> first server handshake record, milliseconds."),
    Column("ttfb_ms", "Float64", "First client data -> first server data, milliseconds."),
)


def names(columns: Sequence[Column]) -> list[str]:
    return [c.name for c in columns]


def null_column(dtype: str, length: int) -> pd.api.extensions.ExtensionArray:
    """An all-null column of a nullable dtype, built without a Python object per row."""
    if length == 0:
        return pd.array([], dtype=dtype)
    if dtype == "string":
        import pyarrow as pa
        return pd.array(pa.nulls(length, pa.string()), dtype="string")
    if dtype in ("Int32", "Int64"):
        return pd.arrays.IntegerArray(np.zeros(length, dtype.lower()), np.ones(length, bool))
    if dtype == "Float64":
        return pd.arrays.FloatingArray(np.zeros(length), np.ones(length, bool))
    if dtype == "boolean":
        return pd.arrays.BooleanArray(np.zeros(length, bool), np.ones(length, bool))
    raise ValueError(f"column dtype {dtype} has no null value")


def to_frame(data: Mapping[str, object] | Iterable[Mapping[str, object]] | None,
             columns: Sequence[Column]) -> pd.DataFrame:
    """Build a frame with exactly `columns` in order and their dtypes; empty in, empty frame out.

    `data` is either a mapping of column -> array (the vectorized path) or an iterable of row
    dicts (the reference engines). Columns missing from `data` are all-null.
    """
    if data is None:
        data = {}
    if isinstance(data, Mapping):
        frame = pd.DataFrame({k: v for k, v in data.items() if k in {c.name for c in columns}})
        length = len(frame)
        for col in columns:
            if col.name not in frame:
                frame[col.name] = null_column(col.dtype, length)
        frame = frame[names(columns)]
    else:
        frame = pd.DataFrame(list(data), columns=names(columns))
    return frame.astype({c.name: c.dtype for c in columns}).reset_index(drop=True)
