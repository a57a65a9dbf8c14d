"""Finished partial flows -> the `flows` frame: client/server sides, conn_state, text addresses."""
from __future__ import annotations

import socket

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import schema
from . import partials as P
from .keys import pair_hash
from .state import conn_state

V4_MARK = np.uint64(0x0000FFFF)


def client_is_a(part: P.Partials) -> np.ndarray:
    """docs/flows.md 'Client and server': SYN sender, else SYN+ACK receiver, else higher port."""
    fs, fsa, pa, pb = part["first_syn_dir"], part["first_synack_dir"], part["port_a"], part["port_b"]
    return np.select(
        [fs == 0, fs == 1, fsa == 1, fsa == 0, pa > pb, pa < pb],
        [True, False, True, False, True, False],
        part["first_dir"] == 0)


def _address_text(hi: int, lo: int) -> str:
    if hi == 0 and (lo >> 32) == 0xFFFF:
        return socket.inet_ntoa((lo & 0xFFFFFFFF).to_bytes(4, "big"))
    return socket.inet_ntop(socket.AF_INET6, hi.to_bytes(8, "big") + lo.to_bytes(8, "big"))


def address_codes(hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """16-byte addresses -> (codes, text of each distinct address), formatting each once."""
    if len(hi) == 0:
        return np.empty(0, np.int64), []
    if (hi != 0).any():      # IPv6 present: group on a hash of both halves, checked exactly
        codes, uniques = pd.factorize(pair_hash(hi, lo))
        first = np.empty(len(uniques), np.int64)
        first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
        if not (np.array_equal(hi[first][codes], hi) and np.array_equal(lo[first][codes], lo)):
            codes, uniques = pd.factorize(pd.MultiIndex.from_arrays([hi, lo]))
            first = None
        pairs = list(uniques) if first is None else list(zip(hi[first].tolist(), lo[first].tolist()))
    else:                    # IPv4 only (mapped): the low half is the whole address
        codes, uniques = pd.factorize(lo)
        pairs = [(0, int(v)) for v in uniques]
    return codes, [_address_text(int(h), int(l)) for h, l in pairs]


def addresses_to_text(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    codes, labels = address_codes(hi, lo)
    return np.asarray(labels, dtype=object)[codes] if len(codes) else np.empty(0, object)


def text_column(codes: np.ndarray, labels: list[str]) -> pd.arrays.ArrowStringArray:
    """A pandas string column from codes into a few labels, built in C (no per-row objects)."""
    dictionary = pa.array(labels, type=pa.string())
    column = pa.DictionaryArray.from_arrays(pa.array(codes, type=pa.int32()), dictionary).cast(pa.string())
    return pd.array(column, dtype="string")


def _factorized(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    codes, uniques = pd.factorize(values)
    return codes, [str(u) for u in uniques]


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

    codes, labels = address_codes(np.concatenate([part["a_hi"], part["b_hi"]]),
                                  np.concatenate([part["a_lo"], part["b_lo"]]))
    code_a, code_b = codes[:n], codes[n:]
    vlan = pd.array(np.where(part["vlan"] >= 0, part["vlan"], 0), dtype="Int32")
    vlan[part["vlan"] < 0] = pd.NA
    data = {
        "flow_id": np.zeros(n, np.int64),       # numbered after sorting, below
        "ts_start": part["ts_first"],
        "ts_end": part["ts_last"],
        "duration": part["ts_last"] - part["ts_first"],
        "transport": text_column(np.where(is_tcp, 0, 1), ["tcp", "udp"]),
        "client_ip": text_column(np.where(a_client, code_a, code_b), labels),
        "client_port": np.where(a_client, part["port_a"], part["port_b"]),
        "server_ip": text_column(np.where(a_client, code_b, code_a), labels),
        "server_port": np.where(a_client, part["port_b"], part["port_a"]),
        "vlan": vlan,
        "state": text_column(*_factorized(state)),
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
