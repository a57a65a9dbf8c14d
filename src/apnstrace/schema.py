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

# One row per push, plus one per unexplained check-in session (docs/sequences.md).
SEQUENCES: tuple[Column, ...] = (
    Column("device_ip", "string", "The device: its courier connection's client address."),
    Column("push_ts", "Float64", "The push: first packet of the server burst on the courier (null for unsolicited check-ins)."),
    Column("push_flow_id", "Int64", "The courier flow that carried the push."),
    Column("push_bytes", "Int64", "TCP payload bytes of the push burst."),
    Column("provider_ts", "Float64", "The MDM server's request to the APNs provider API that caused it, when captured."),
    Column("provider_flow_id", "Int64", "The provider flow of that request."),
    Column("checkin_ts", "Float64", "The device's check-in: a new connection to its MDM server, or a new request on a kept-alive one."),
    Column("checkin_flow_id", "Int64", "The MDM flow of the check-in."),
    Column("mdm_server", "string", "The MDM server: name (or address), with :port unless 443."),
    Column("latency_s", "Float64", "checkin_ts - push_ts, seconds."),
    Column("outcome", "string", "checked_in, no_checkin, checkin_blocked, unsolicited_checkin."),
    Column("followups", "string", "Categories fetched after the check-in inside the window, in order (e.g. sus,file_share)."),
    Column("followups_blocked", "Int64", "How many of those follow-up flows were blocked."),
    Column("mdm_server_inferred", "boolean", "True when the MDM server was inferred from what devices contact after pushes."),
    Column("detail", "string", "How a check-in was blocked (reason and sentence), or other notes."),
)

# One row per blocked flow and per DNS failure of an Apple or site name, worst first (docs/blocked.md).
BLOCKED: tuple[Column, ...] = (
    Column("ts", "float64", "When: the flow's first frame, or the DNS answer (epoch seconds)."),
    Column("flow_id", "Int64", "The blocked flow, or the DNS flow that carried the failed lookup."),
    Column("transport", "string", "`tcp` or `udp`."),
    Column("client_ip", "string", "The device (or server) that tried."),
    Column("client_port", "Int32", "Its port."),
    Column("server_ip", "string", "Where it tried to go (the DNS server for DNS failures)."),
    Column("server_port", "Int32", "The port it tried."),
    Column("category", "string", "What the traffic was for (for DNS failures: what the name is for)."),
    Column("service", "string", "Finer label, as in flows."),
    Column("server_name", "string", "The server's name (for DNS failures: the name asked)."),
    Column("reason", "string", "A flows block_reason, or dns_nxdomain, dns_servfail, dns_refused, dns_sinkhole, dns_no_answer, dns_<rcode>."),
    Column("evidence", "string", "What on the wire shows it (SYN count and spread, ICMP type/code, alert, issuer...)."),
    Column("sentence", "string", "The row in one line for a person."),
    Column("state", "string", "The flow's Zeek conn_state."),
)

# Long format: one row per (scope, key, metric) (docs/blocked.md "Timing").
TIMING: tuple[Column, ...] = (
    Column("scope", "string", "`category` or `device`."),
    Column("key", "string", "The category, or the device address."),
    Column("metric", "string", "rtt_ms, tls_handshake_ms, ttfb_ms, courier_lifetime_s, push_checkin_s, pushes, checkin_rate."),
    Column("count", "int64", "Flows that have the value."),
    Column("p50", "Float64", "Median."),
    Column("p95", "Float64", "95th percentile (linear interpolation)."),
    Column("max", "Float64", "Largest."),
)

# One row per device with APNs courier connections.
COURIER: tuple[Column, ...] = (
    Column("device_ip", "string", "The device (client address of its courier connections)."),
    Column("connections", "int64", "Courier connections (flows) seen."),
    Column("lifetime_p50_s", "float64", "Median connection lifetime, seconds."),
    Column("lifetime_max_s", "float64", "Longest connection, seconds."),
    Column("closed_by_network", "int64", "Connections ended by a RST from the server side."),
    Column("reconnects_per_hour", "Float64", "Re-opened connections (after every earlier one ended) per hour; null under 10 minutes of span."),
    Column("keepalive_s", "Float64", "Keepalive interval estimate from connections longer than 10 minutes."),
    Column("flapping", "boolean", "Short-lived connections cut by the network and re-opened: an idle timeout shorter than the keepalive."),
    Column("verdict", "string", "The row in one line for a person."),
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
             columns: Sequence[Column], *, copy: bool = True) -> pd.DataFrame:
    """Build a frame with exactly `columns` in order and their dtypes; empty in, empty frame out.

    `data` is either a mapping of column -> array (the vectorized path) or an iterable of row
    dicts (the reference engines). Columns missing from `data` are all-null. copy=False: the
    frame may share the arrays (for arrays nothing else writes to: pandas arrays of a frame).
    """
    if data is None:
        data = {}
    if isinstance(data, Mapping):
        frame = pd.DataFrame({k: v for k, v in data.items() if k in {c.name for c in columns}}, copy=copy)
        length = len(frame)
        for col in columns:
            if col.name not in frame:
                frame[col.name] = null_column(col.dtype, length)
        frame = frame[names(columns)]
    else:
        frame = pd.DataFrame(list(data), columns=names(columns))
    return frame.astype({c.name: c.dtype for c in columns}).reset_index(drop=True)
