"""Finished partial flows -> the `flows` frame: client/server sides, conn_state, text addresses."""
from __future__ import annotations

import socket

import numpy as np
import pandas as pd

from .. import schema
from . import partials as P
from .state import conn_state

V4_MARK = np.uint64(0x0000FFFF)


def client_is_a(part: P.Partials) -> np.ndarray:
    """docs/flows.md 'Client and server': SYN sender, else SYN+ACK receiver, else higher port."""
    fs, fsa, pa, pb = part["first_syn_dir"], part["first_synack_dir"], part["port_a"], part["port_b"]
    return np.select(
        [fs == 0, fs == 1, fsa == 1, fsa == 0, pa > pb, pa < pb],
        [True, False, True, False, True, False],
        part["first_dir"] == 0)


def addresses_to_text(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """16-byte addresses (IPv4 mapped) -> text, formatting each distinct address once."""
    if len(hi) == 0:
        return np.empty(0, object)
    pairs = np.stack([hi, lo], axis=1)
    uniq, inverse = np.unique(pairs, axis=0, return_inverse=True)
    text = []
    for h, l in uniq.tolist():
        if h == 0 and (l >> 32) == 0xFFFF:
            text.append(socket.inet_ntoa((l & 0xFFFFFFFF).to_bytes(4, "big")))
        else:
            text.append(socket.inet_ntop(socket.AF_INET6, h.to_bytes(8, "big") + l.to_bytes(8, "big")))
    return np.asarray(text, dtype=object)[inverse.reshape(-1)]


def to_flows_frame(part: P.Partials) -> pd.DataFrame:
    n = len(part["h"])
    if n == 0:
        return schema.to_frame(None, schema.FLOWS)
    a_client = client_is_a(part)

    def side(name: str, client: bool) -> np.ndarray:
        a_val, b_val = part[f"{name}0"], part[f"{name}1"]     # dir 0 is sent by a
        return np.where(a_client == client, a_val, b_val)

    c = {name: side(name, True) for name in ("pkts", "bytes", "payload", "syn", "synack", "fin", "rst", "syn_last")}
    s = {name: side(name, False) for name in ("pkts", "bytes", "payload", "syn", "synack", "fin", "rst", "synack_ts")}
    is_tcp = part["proto"] == 6
    state = conn_state(is_tcp, c["pkts"], s["pkts"], c["syn"], s["synack"], c["fin"], s["fin"],
                       c["rst"], s["rst"], c["payload"], s["payload"])
    with np.errstate(invalid="ignore"):
        rtt = (s["synack_ts"] - c["syn_last"]) * 1000.0
    rtt_ok = np.isfinite(rtt) & (rtt >= 0) & is_tcp

    addr_a = addresses_to_text(part["a_hi"], part["a_lo"])
    addr_b = addresses_to_text(part["b_hi"], part["b_lo"])
    vlan = pd.array(np.where(part["vlan"] >= 0, part["vlan"], 0), dtype="Int32")
    vlan[part["vlan"] < 0] = pd.NA
    data = {
        "flow_id": np.zeros(n, np.int64),       # numbered after sorting, below
        "ts_start": part["ts_first"],
        "ts_end": part["ts_last"],
        "duration": part["ts_last"] - part["ts_first"],
        "transport": np.where(is_tcp, "tcp", "udp"),
        "client_ip": np.where(a_client, addr_a, addr_b),
        "client_port": np.where(a_client, part["port_a"], part["port_b"]),
        "server_ip": np.where(a_client, addr_b, addr_a),
        "server_port": np.where(a_client, part["port_b"], part["port_a"]),
        "vlan": vlan,
        "state": state,
        "pkts_c2s": c["pkts"], "pkts_s2c": s["pkts"],
        "bytes_c2s": c["bytes"], "bytes_s2c": s["bytes"],
        "syn_retries": np.maximum(c["syn"] - 1, 0),
        "retransmits": part["retx"],
        "rtt_ms": pd.array(np.where(rtt_ok, rtt, np.nan), dtype="Float64"),
    }
    frame = schema.to_frame(data, schema.FLOWS)
    frame["rtt_ms"] = frame["rtt_ms"].mask(~rtt_ok)
    frame = frame.sort_values(["ts_start", "client_ip", "client_port", "server_ip", "server_port", "transport"],
                              kind="stable").reset_index(drop=True)
    frame["flow_id"] = np.arange(len(frame), dtype=np.int64)
    return frame
