"""Compare apnstrace flows with the tshark-built reference in ../shared/corpus/ndpi/tshark-flows.

The reference keys flows on the unordered 5-tuple with no time splitting (its README), so our
flows are summed per unordered 5-tuple before comparing packets and bytes.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

KEY = ["proto", "addr_a", "port_a", "addr_b", "port_b"]


def _canonical_text(addr: str) -> str:
    return str(ipaddress.ip_address(addr))


def reference_flows(csv_path: Path) -> pd.DataFrame:
    ref = pd.read_csv(csv_path, dtype={"addr_a": str, "addr_b": str, "sni": str}, keep_default_na=False)
    if len(ref):
        ref["addr_a"] = ref["addr_a"].map(_canonical_text)
        ref["addr_b"] = ref["addr_b"].map(_canonical_text)
    return ref


def ours_by_five_tuple(flows: pd.DataFrame) -> pd.DataFrame:
    """Sum our flows per unordered 5-tuple, endpoint a the smaller (address text, then port)."""
    if flows.empty:
        return pd.DataFrame(columns=KEY + ["packets", "bytes"])
    c = list(zip(flows["client_ip"].astype(str), flows["client_port"].astype(int)))
    s = list(zip(flows["server_ip"].astype(str), flows["server_port"].astype(int)))
    a, b = zip(*[(x, y) if x <= y else (y, x) for x, y in zip(c, s)])
    frame = pd.DataFrame({
        "proto": flows["transport"].astype(str).to_numpy(),
        "addr_a": [x[0] for x in a], "port_a": [x[1] for x in a],
        "addr_b": [x[0] for x in b], "port_b": [x[1] for x in b],
        "packets": (flows["pkts_c2s"] + flows["pkts_s2c"]).to_numpy(),
        "bytes": (flows["bytes_c2s"] + flows["bytes_s2c"]).to_numpy(),
    })
    return frame.groupby(KEY, as_index=False)[["packets", "bytes"]].sum()


@dataclass
class Comparison:
    capture: str
    reference: int          # reference flows
    exact: int              # found with the same packets and bytes
    mismatched: pd.DataFrame  # reference rows not matched exactly, with our numbers


def compare(capture: str, ours: pd.DataFrame, ref: pd.DataFrame) -> Comparison:
    if ref.empty:
        return Comparison(capture, 0, 0, pd.DataFrame())
    merged = ref.merge(ours_by_five_tuple(ours), on=KEY, how="left", suffixes=("", "_ours"))
    same = (merged["packets"] == merged["packets_ours"]) & (merged["bytes"] == merged["bytes_ours"])
    bad = merged.loc[~same, KEY + ["packets", "packets_ours", "bytes", "bytes_ours"]].copy()
    bad.insert(0, "capture", capture)
    return Comparison(capture, len(ref), int(same.sum()), bad)
