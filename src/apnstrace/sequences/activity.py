"""What the sequences need from the packets, kept while reading (docs/sequences.md):

- burst starts of every TCP flow direction: a payload packet at least `burst_gap_s` after the
  previous one in that flow direction (with that gap, to find requests on kept-alive connections);
- every payload packet of APNs flows (courier and provider candidates): pushes, keepalives and
  provider requests are told apart from those.

Both are picked with numpy over the whole chunk; the only state carried between chunks is the
last payload time of each open flow direction.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..options import SequenceOptions
from ..records import PacketBatch
from .last_payload import LastPayload

TCP = 6
APNS_PORTS = (5223, 2197)
# A ClientHello naming an APNs host, or offering an APNs ALPN, makes a 443 flow an APNs candidate.
APNS_NAME = re.compile(r"(?:^|\.)push\.apple\.com$|(?:^|\.)push-apple\.com\.akadns\.net$", re.IGNORECASE)


@dataclass
class Activity:
    """Columns gathered so far (lists of per-chunk arrays, joined on demand)."""

    start_uid: list = field(default_factory=list)
    start_dir: list = field(default_factory=list)
    start_ts: list = field(default_factory=list)
    start_gap: list = field(default_factory=list)     # seconds since the previous payload (inf: first)
    apns_uid: list = field(default_factory=list)
    apns_dir: list = field(default_factory=list)
    apns_ts: list = field(default_factory=list)
    apns_bytes: list = field(default_factory=list)

    def starts(self) -> pd.DataFrame:
        return _frame(uid=self.start_uid, dir=self.start_dir, ts=self.start_ts, gap=self.start_gap)

    def apns_packets(self) -> pd.DataFrame:
        return _frame(uid=self.apns_uid, dir=self.apns_dir, ts=self.apns_ts, bytes=self.apns_bytes)


def _frame(**columns: list) -> pd.DataFrame:
    # The arrays are fresh (concatenated here): the frame takes them as they are.
    return pd.DataFrame({name: np.concatenate(parts) if parts else np.empty(0) for name, parts in columns.items()},
                        copy=False)


class ActivityCollector:
    def __init__(self, options: SequenceOptions) -> None:
        self.options = options
        self.found = Activity()
        self.apns_uids = np.empty(0, np.int64)          # 443 flows whose ClientHello named APNs
        self.last = LastPayload()                       # flow direction (uid*2+dir) -> last payload ts
        self.verdicts: dict[tuple, bool] = {}           # (sni, alpn) -> names APNs

    def add(self, pk: PacketBatch, uid: np.ndarray, metas: dict, open_uids: np.ndarray,
            hellos: np.ndarray) -> None:
        """One chunk: `uid` from the flow table, `metas` the metadata collector's flows (SNI/ALPN
        by uid), `open_uids` the flows still open after this chunk (state for others is dropped),
        `hellos` the flows whose ClientHello the collector read in this chunk."""
        self._learn_apns(hellos, metas)
        rows = np.flatnonzero((pk.proto == TCP) & (pk.payload_len > 0))
        if rows.size == 0:
            return
        key = uid[rows] * 2 + pk.direction[rows]
        ts = pk.ts[rows]
        order = np.argsort(key, kind="stable")                 # by flow direction, capture order within
        k, t = key[order], ts[order]
        first = np.ones(len(k), bool)
        first[1:] = k[1:] != k[:-1]
        prev = np.empty(len(t))
        prev[1:] = t[:-1]
        prev[first] = -np.inf
        if len(self.last):
            prev[first] = self.last.get(k[first])
        gap = t - prev
        start = gap >= self.options.burst_gap_s
        picked = rows[order[start]]
        f = self.found
        f.start_uid.append(uid[picked])
        f.start_dir.append(pk.direction[picked].astype(np.int8))
        f.start_ts.append(pk.ts[picked])
        f.start_gap.append(gap[start])
        ap = rows[_apns_rows(pk, uid, rows, self.apns_uids)]
        if ap.size:
            f.apns_uid.append(uid[ap])
            f.apns_dir.append(pk.direction[ap].astype(np.int8))
            f.apns_ts.append(pk.ts[ap])
            f.apns_bytes.append(pk.payload_len[ap])
        self._carry(k, t, first, open_uids)

    def forget(self, uids: np.ndarray, before: float = -np.inf) -> None:
        """Drop what was gathered for these flows (finished and reported elsewhere), and any
        flow's packets before `before` (the window's start: a long-lived courier connection's
        pushes leave with the window too)."""
        f = self.found
        for prefix, names in (("start", ("uid", "dir", "ts", "gap")), ("apns", ("uid", "dir", "ts", "bytes"))):
            parts = [getattr(f, f"{prefix}_{name}") for name in names]
            if not parts[0]:
                continue
            joined = [np.concatenate(p) for p in parts]
            keep = ~np.isin(joined[0], uids) & (joined[2] >= before)
            for name, column in zip(names, joined):
                setattr(f, f"{prefix}_{name}", [column[keep]])
        self.apns_uids = self.apns_uids[~np.isin(self.apns_uids, uids)]

    def _learn_apns(self, hellos: np.ndarray, metas: dict) -> None:
        """Flows (443 and others) are APNs candidates once their ClientHello said so: only a
        ClientHello sets SNI/ALPN, so only the flows whose one was just read are looked at."""
        named, verdicts = [], self.verdicts
        for u in hellos.tolist():
            meta = metas.get(u)
            if meta is None:
                continue
            said = (meta.sni, meta.alpn)          # most flows repeat a few (sni, alpn) pairs
            apns = verdicts.get(said)
            if apns is None:
                apns = verdicts[said] = _names_apns(*said)
            if apns:
                named.append(u)
        if named:
            self.apns_uids = np.union1d(self.apns_uids, np.array(named, np.int64))

    def _carry(self, k: np.ndarray, t: np.ndarray, first: np.ndarray, open_uids: np.ndarray) -> None:
        """Keep the last payload time of each open flow direction; this chunk's times win."""
        last = np.ones(len(k), bool)
        last[:-1] = first[1:]
        self.last.put(k[last], np.maximum.reduceat(t, np.flatnonzero(first)), open_uids)


def _names_apns(sni: str | None, alpn: str | None) -> bool:
    offered = (alpn or "").split(",")
    return bool(sni and APNS_NAME.search(sni)) or any(a.startswith("apns-") for a in offered)


def _apns_rows(pk: PacketBatch, uid: np.ndarray, rows: np.ndarray, apns_uids: np.ndarray) -> np.ndarray:
    mask = np.zeros(len(rows), bool)
    port_a, port_b = pk.port_a[rows], pk.port_b[rows]
    for port in APNS_PORTS:
        mask |= (port_a == port) | (port_b == port)
    if apns_uids.size:
        mask |= np.isin(uid[rows], apns_uids)          # integers: a lookup table, fast
    return mask
