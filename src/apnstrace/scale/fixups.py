"""Per-flow answers that read beyond their flow's file, redone in the merge for the rows concerned.

Workers run the per-flow stages (metadata attached, classification, block reasons) on their
own file, replay shards (replay.py) on their keys' flows. Three inputs of those stages belong
to the whole capture, not to one file:
- server_name from DNS: the latest answer for the server address before the flow started,
  which may be in an earlier file (or found by another shard's replay);
- ICMP errors, which may sit in another file than the flow they quote;
- the capture's end, which no_response and no_server_data read for unanswered or unclosed flows
  (a worker's is its file's last frame, SEEN_UNTIL).
The rows these can change are picked with whole-column tests (no SNI or HTTP Host; addresses
and ports an ICMP error quotes; health.reads_capture_end) and go through classification and
block reasons again with the whole capture's inputs: every row then holds what a single
process gives (both stages answer each row from that row alone, given those inputs).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..health import reads_capture_end
from ..health.reasons import EVIDENCE as BLOCK_EVIDENCE
from ..metadata import NAME_SOURCE
from ..metadata.attach import _server_names as dns_names     # the rule attach() applies
from ..metadata.collect import DnsRecords
from ..options import FlowOptions
from ..site import Site
from .partial import SEEN_UNTIL

OUTPUTS = ("category", "service", "classified_by", "blocked", "block_reason", BLOCK_EVIDENCE)
NAMED = ["sni", "http-host"]            # server_name sources a flow's own packets give


def fix_up(flows: pd.DataFrame, from_worker: np.ndarray, dns: DnsRecords, icmp: pd.DataFrame,
           site: Site | None, options: FlowOptions, capture_end: float | None) -> pd.DataFrame:
    """`flows` (ordered, all files) with the rows that read other files redone: any row DNS may
    name (workers and replay shards name flows from their own answers only), rows of
    `from_worker` an ICMP error quotes (the shards saw every file's), rows reading the
    capture's end."""
    from ..pipeline import per_flow
    redo = _renamed(flows, np.ones(len(flows), bool), dns)
    redo |= from_worker & _quoted(flows, icmp)
    if capture_end is not None:
        redo |= reads_capture_end(flows, flows[SEEN_UNTIL].to_numpy(), capture_end)
    rows = np.flatnonzero(redo)
    if rows.size:
        again = per_flow(flows.iloc[rows].reset_index(drop=True), icmp, site, options, capture_end)
        _put(flows, rows, again, OUTPUTS)
    return flows


def _renamed(flows: pd.DataFrame, from_worker: np.ndarray, dns: DnsRecords) -> np.ndarray:
    """Rows named by DNS (or not at all) whose name the whole capture's answers change; their
    server_name and its source are set here."""
    changed = np.zeros(len(flows), bool)
    if not len(dns):
        return changed                  # no answers anywhere: no worker had any either
    named = flows[NAME_SOURCE].isin(NAMED).to_numpy(dtype=bool, na_value=False)
    rows = np.flatnonzero(from_worker & ~named)
    if not rows.size:
        return changed
    sub = pd.DataFrame({name: flows[name].iloc[rows].reset_index(drop=True)
                        for name in ("sni", "http_host", "ts_start", "server_ip")})
    name, source = dns_names(sub, dns)                      # Arrow string arrays
    name = pd.array(name.to_pandas(types_mapper=pd.ArrowDtype), dtype="string")
    source = pd.array(source.to_pandas(types_mapper=pd.ArrowDtype), dtype="string")
    old = flows["server_name"].iloc[rows].array
    differs = (old.fillna("\0") != name.fillna("\0")).to_numpy(dtype=bool)   # NUL: never in a name
    changed[rows[differs]] = True
    if differs.any():
        new = pd.DataFrame({"server_name": name[differs],
                            NAME_SOURCE: source[differs]})
        _put(flows, rows[differs], new, ("server_name", NAME_SOURCE))
    return changed


def _quoted(flows: pd.DataFrame, icmp: pd.DataFrame) -> np.ndarray:
    """Rows whose addresses and ports some ICMP error quotes (a superset of the rows an error
    can be evidence for: block_reasons checks type, code and time)."""
    if icmp is None or icmp.empty:
        return np.zeros(len(flows), bool)
    return (flows["client_ip"].isin(pd.unique(icmp["src"].astype(str))).to_numpy(dtype=bool, na_value=False)
            & flows["server_ip"].isin(pd.unique(icmp["dst"].astype(str))).to_numpy(dtype=bool, na_value=False)
            & np.isin(flows["client_port"].to_numpy(), icmp["sport"].to_numpy())
            & np.isin(flows["server_port"].to_numpy(), icmp["dport"].to_numpy()))


def _put(flows: pd.DataFrame, rows: np.ndarray, values: pd.DataFrame, names) -> None:
    """Write `values` (one row per entry of `rows`) into those rows of `flows`, keeping dtypes."""
    for name in names:
        column = flows[name].array.copy()
        column[rows] = values[name].array
        flows[name] = column
