"""Zeek's conn_state from each endpoint's final state (docs/flows.md has the table)."""
from __future__ import annotations

import numpy as np

INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET = range(7)

# conn_state's labels, in the order of its TCP and UDP conditions ("OTH" when none holds).
_TCP_STATES = ["REJ", "RSTRH", "RSTR", "RSTOS0", "OTH", "RSTO", "SF", "SH", "S2", "SHR", "S3", "S0", "S1"]
_UDP_STATES = ["SF", "S0", "SHR"]
STATES = tuple(sorted({*_TCP_STATES, *_UDP_STATES, "OTH"}))    # every label it gives, sorted


def endpoint_states(sent_rst, sent_fin, pkts, sent_syn, sent_synack, peer_synack, client_acked, is_client):
    """What one side of each TCP flow ended in, from what it sent."""
    established = np.where(is_client, sent_syn & peer_synack & client_acked, sent_synack & client_acked)
    opening = np.where(is_client, sent_syn, sent_synack)
    opening_state = SYN_SENT if is_client else SYN_ACK_SENT
    return np.select(
        [sent_rst, sent_fin, pkts == 0, established, opening],
        [RESET, CLOSED, INACTIVE, ESTABLISHED, opening_state],
        PARTIAL)


def conn_state(is_tcp, c_pkts, s_pkts, c_syn, s_synack, c_fin, s_fin, c_rst, s_rst,
               c_payload, s_payload) -> np.ndarray:
    """Vectorized Zeek conn_state for flows oriented client/server."""
    client_acked = c_pkts > c_syn             # the client sent something besides SYNs
    o = endpoint_states(c_rst > 0, c_fin > 0, c_pkts, c_syn > 0, np.zeros_like(c_syn, bool),
                        s_synack > 0, client_acked, True)
    r = endpoint_states(s_rst > 0, s_fin > 0, s_pkts, np.zeros_like(c_syn, bool), s_synack > 0,
                        np.zeros_like(c_syn, bool), client_acked, False)
    o_inactive = (o == INACTIVE) | (o == PARTIAL)
    r_inactive = (r == INACTIVE) | (r == PARTIAL)
    no_payload = (c_payload == 0) & (s_payload == 0)
    rej = (o == SYN_SENT) | (o == SYN_ACK_SENT) | ((o == RESET) & no_payload)
    tcp = np.select(
        [
            (r == RESET) & rej,
            (r == RESET) & o_inactive,
            r == RESET,
            (o == RESET) & r_inactive & (c_syn > 0) & (s_synack == 0),
            (o == RESET) & r_inactive,
            o == RESET,
            (r == CLOSED) & (o == CLOSED),
            (o == CLOSED) & r_inactive,
            o == CLOSED,
            (r == CLOSED) & o_inactive,
            r == CLOSED,
            (o == SYN_SENT) & (r == INACTIVE),
            (o == ESTABLISHED) & (r == ESTABLISHED),
        ],
        _TCP_STATES, "OTH")
    udp = np.select([(c_pkts > 0) & (s_pkts > 0), c_pkts > 0, s_pkts > 0], _UDP_STATES, "OTH")
    return np.where(is_tcp, tcp, udp)
