"""Who sent a blocking RST: the server, or a box on the path pretending to be it.

A firewall or proxy that rejects a connection forges the RST from the server's address, but
it cannot forge the distance: its packets arrive with another IP TTL (IPv6 hop limit) than
the server's own (apple-traffic.md section 6, row 2). The server's TTL comes from the same
flow's SYN/ACK or data when there is one (reset_after_handshake), else from what that address
sent in other flows of the capture (a `reset` flow has nothing but the RST). Reads the whole
flows table, so it runs where the blocked table is built, after every file is merged.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

RESET_REASONS = ("reset", "reset_after_handshake")
# Routes shift by a hop now and then (ECMP, failover): only a larger gap says "another sender".
TTL_SLACK = 1


def rst_origin(flows: pd.DataFrame, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For flow rows `rows` (blocked rows of any reason): an evidence note, "" when there is
    nothing to say, and whether the RST was evidently sent by another box than the server."""
    notes = np.full(len(rows), "", dtype=object)
    injected = np.zeros(len(rows), bool)
    if not len(rows) or "_s_rst_ttl" not in flows:
        return notes, injected
    reset = flows["block_reason"].iloc[rows].isin(RESET_REASONS).to_numpy(dtype=bool)
    rst_ttl = _floats(flows, "_s_rst_ttl")[rows]
    mine = np.flatnonzero(reset & np.isfinite(rst_ttl))
    if not mine.size:
        return notes, injected
    own = _floats(flows, "_s_ttl")[rows]
    # Addresses as Python strings for the reset rows only (a scan blocks hundreds of thousands).
    servers = flows["server_ip"].iloc[rows[mine]].to_numpy(dtype=object)
    usual, seen_in = _usual_ttl(flows, set(servers.tolist()))
    for j, server in zip(mine.tolist(), servers.tolist()):
        rst = int(rst_ttl[j])
        if np.isfinite(own[j]):
            ref, where = int(own[j]), "the server's other packets in this connection"
        elif server in usual:
            count = seen_in[server]
            ref, where = usual[server], f"{server}'s packets in {count} other flow{'s' if count > 1 else ''}"
        else:
            continue
        if abs(rst - ref) > TTL_SLACK:
            injected[j] = True
            notes[j] = (f"the RST came with TTL {rst}, but {where} came with TTL {ref}: "
                        f"a device on the path sent it, not the server")
        else:
            notes[j] = f"the RST's TTL ({rst}) matches {where}: the server (or a box at its distance) sent it"
    return notes, injected


def _usual_ttl(flows: pd.DataFrame, servers: set) -> tuple[dict, dict]:
    """Per server address: the TTL most of its non-RST packets came with (first packet of each
    flow; ties: the lower TTL), and how many flows showed one."""
    ttl = _floats(flows, "_s_ttl")
    pick = np.isfinite(ttl) & flows["server_ip"].isin(servers).to_numpy(dtype=bool)
    if not pick.any():
        return {}, {}
    seen = pd.DataFrame({"server": flows["server_ip"].iloc[np.flatnonzero(pick)].to_numpy(dtype=object),
                         "ttl": ttl[pick].astype(np.int64)})
    counts = seen.value_counts(["server", "ttl"]).rename("n").reset_index()
    best = counts.sort_values(["server", "n", "ttl"], ascending=[True, False, True]).drop_duplicates("server")
    flows_per_server = seen["server"].value_counts()
    return (dict(zip(best["server"], best["ttl"].astype(int))),
            {s: int(flows_per_server[s]) for s in best["server"]})


def _floats(flows: pd.DataFrame, name: str) -> np.ndarray:
    column = flows[name]
    if column.dtype == np.dtype(np.float64):        # the frame's own array, not a full-length copy
        return column.to_numpy()
    return pd.to_numeric(column, errors="coerce").astype("float64").to_numpy(na_value=np.nan)
