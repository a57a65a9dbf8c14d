"""Does the capture see both directions? A span port fed by one side of an asymmetric route,
or a tap on one fibre, shows every conversation one way: the device's data and ACKs with no
server packet at all. Then missing answers are the capture's blind side, not the network's,
and "connected" cannot be confirmed either. Counted per TCP flow, vectorized over the table.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

ATTEMPTS = ("S0", "RSTOS0")     # a bare connection attempt: one-way is what a drop looks like
MIN_ONE_WAY = 3                 # fewer: a flow cut at the capture's start or end, not the capture point


@dataclass(frozen=True, slots=True)
class Directions:
    one_way: int                # TCP flows past a bare attempt with packets from one side only
    two_way: int                # TCP flows with packets from both sides

    @property
    def blind_side(self) -> bool:
        """Most conversations one way: the capture point likely sees one direction."""
        return self.one_way >= MIN_ONE_WAY and self.one_way > self.two_way


def directions(flows: pd.DataFrame) -> Directions:
    if flows.empty:
        return Directions(0, 0)
    tcp = (flows["transport"] == "tcp").fillna(False).to_numpy(bool)
    c2s = flows["pkts_c2s"].fillna(0).to_numpy(np.int64) > 0
    s2c = flows["pkts_s2c"].fillna(0).to_numpy(np.int64) > 0
    # A bare attempt: the client sent its SYNs (and maybe a closing RST), nothing else. A SYN
    # followed by ACKs or data (S0 too, in Zeek's terms) is a conversation seen one way.
    state = flows["state"]
    syns = flows["syn_retries"].fillna(0).to_numpy(np.int64) + 1
    sent = flows["pkts_c2s"].fillna(0).to_numpy(np.int64) - (state == "RSTOS0").to_numpy(bool)
    attempt = state.isin(ATTEMPTS).to_numpy(bool) & (sent <= syns)
    return Directions(one_way=int((tcp & (c2s ^ s2c) & ~attempt).sum()), two_way=int((tcp & c2s & s2c).sum()))
