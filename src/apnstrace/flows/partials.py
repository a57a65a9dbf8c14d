"""Partial flows: the columns kept per flow while it is open, and how two parts combine.

Directions are canonical: 0 is endpoint a -> b, 1 is b -> a (a is the smaller endpoint).
Who is client is decided only when the flow is finished (see finalize.py).
"""
from __future__ import annotations

import numpy as np

NO_HWM = -(1 << 40)        # no data segment seen yet in that direction
INF = np.inf

# name -> dtype, for every column a partial flow carries.
FIELDS: dict[str, type] = {
    "a_hi": np.uint64, "a_lo": np.uint64, "b_hi": np.uint64, "b_lo": np.uint64,
    "port_a": np.int64, "port_b": np.int64, "proto": np.int64, "h": np.uint64,
    "vlan": np.int64, "ts_first": np.float64, "ts_last": np.float64, "first_dir": np.int64,
    "ts_prev": np.float64,                                   # the last frame's time, capture order
    "clock_last": np.float64,                                # the capture clock after the last frame
    "pkts0": np.int64, "pkts1": np.int64, "bytes0": np.int64, "bytes1": np.int64,
    "payload0": np.int64, "payload1": np.int64,
    "syn0": np.int64, "syn1": np.int64, "synack0": np.int64, "synack1": np.int64,
    "fin0": np.int64, "fin1": np.int64, "rst0": np.int64, "rst1": np.int64,
    "first_syn_dir": np.int64, "first_synack_dir": np.int64,
    "syn_last0": np.float64, "syn_last1": np.float64,        # last SYN at/before the other side's first SYN+ACK
    "synack_ts0": np.float64, "synack_ts1": np.float64,      # first SYN+ACK sent in that direction
    "base0": np.int64, "base1": np.int64,                    # first TCP sequence number seen, -1 none
    "hwm0": np.int64, "hwm1": np.int64,                      # highest relative data end seen
    "retx": np.int64,
    "uid": np.int64,                                         # the flow's identity, kept to the output
    "ndata0": np.int64, "ndata1": np.int64,                  # payload-carrying packets per direction
    # first SYN, payload, FIN and RST sent in that direction (INF: none)
    "syn_first0": np.float64, "syn_first1": np.float64, "data_ts0": np.float64, "data_ts1": np.float64,
    "fin_ts0": np.float64, "fin_ts1": np.float64, "rst_ts0": np.float64, "rst_ts1": np.float64,
    # IP TTL / hop limit of the first non-RST and of the first RST packet sent that way (-1: none):
    # a RST whose TTL differs from the server's other packets was sent by a box on the path.
    "ttl0": np.int64, "ttl1": np.int64, "rst_ttl0": np.int64, "rst_ttl1": np.int64,
}
FIRST_TIMES = ("syn_first", "data_ts", "fin_ts", "rst_ts")
KEY = ("a_hi", "a_lo", "b_hi", "b_lo", "port_a", "port_b", "proto")

Partials = dict[str, np.ndarray]


def empty() -> Partials:
    return {name: np.empty(0, dtype) for name, dtype in FIELDS.items()}


def take(part: Partials, idx: np.ndarray) -> Partials:
    return {name: col[idx] for name, col in part.items()}


def concat(parts: list[Partials]) -> Partials:
    parts = [p for p in parts if len(p["h"])]
    if not parts:
        return empty()
    return {name: np.concatenate([p[name] for p in parts]) for name in FIELDS}


def closed(part: Partials) -> np.ndarray:
    """A TCP flow is closed once both sides sent FIN, or either sent RST."""
    return ((part["fin0"] > 0) & (part["fin1"] > 0)) | ((part["rst0"] + part["rst1"]) > 0)


def combine(left: Partials, right: Partials) -> Partials:
    """Row i of `right` continues row i of `left` (same key, later in time).

    `right` was computed with `left`'s sequence bases and high-water marks as its starting
    point (table.py does that), so those simply carry over.
    """
    out: Partials = {}
    for name in KEY + ("h", "vlan", "first_dir", "uid"):
        out[name] = left[name]
    out["ts_first"] = np.minimum(left["ts_first"], right["ts_first"])
    out["ts_last"] = np.maximum(left["ts_last"], right["ts_last"])
    out["ts_prev"] = right["ts_prev"]
    out["clock_last"] = right["clock_last"]
    for name in ("pkts0", "pkts1", "bytes0", "bytes1", "payload0", "payload1", "syn0", "syn1",
                 "synack0", "synack1", "fin0", "fin1", "rst0", "rst1", "retx", "ndata0", "ndata1"):
        out[name] = left[name] + right[name]
    for name in ("first_syn_dir", "first_synack_dir", "base0", "base1", "ttl0", "ttl1", "rst_ttl0", "rst_ttl1"):
        out[name] = np.where(left[name] >= 0, left[name], right[name])
    for d in (0, 1):
        for name in ("synack_ts",) + FIRST_TIMES:
            out[f"{name}{d}"] = np.minimum(left[f"{name}{d}"], right[f"{name}{d}"])
    for d in (0, 1):
        answer = out[f"synack_ts{1 - d}"]
        lo, ro = left[f"syn_last{d}"], right[f"syn_last{d}"]
        out[f"syn_last{d}"] = np.maximum(np.where(lo <= answer, lo, -INF), np.where(ro <= answer, ro, -INF))
        out[f"hwm{d}"] = np.maximum(left[f"hwm{d}"], right[f"hwm{d}"])
    return out
