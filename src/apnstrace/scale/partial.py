"""Per-file work: one Session over one capture file, and what the merge needs from it.

A worker analyzes its file as if it were the whole capture, through the per-flow stages too
(metadata attached, classification, block reasons): exact for every flow whose key does not
continue across a file boundary, except where those stages read beyond the flow (DNS names
from earlier files, ICMP errors in other files, the capture's end), which merge.py redoes for
the few rows concerned. For flows that do cross, the merge replays the key's packets through
one sequential Session, so the worker also keeps, in a spill folder, compact columns of the
packets it read: what the flow table, the activity collector and the metadata collector
read, with payload bytes only where the metadata collector could still look (docs/scale.md,
"Why the merge is exact").
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import CaptureError
from ..flows import partials as P
from ..flows.finalize import assemble
from ..flows.keys import key_hash
from ..flows.table import frame_clock
from ..metadata.collect import DNS_PORTS, EARLY, MAX_SEGMENTS, DnsRecords
from ..metadata import attach
from ..metadata.held import gather_ranges
from ..metadata.dns_tcp import MAX_PAYLOADS as DNS_TCP_PAYLOADS
from ..options import FlowOptions, SequenceOptions
from ..reader import iter_batches
from ..records import IcmpErrors, PacketBatch
from ..sequences import Activity
from ..site import Site
from ..stats import RunStats
from .boundary import SUMMARY, worth_keeping

SYN, ACK = 0x02, 0x10
TCP, UDP = 6, 17
SEEN_UNTIL = "_seen_until"               # hidden column: the capture end a worker's block reasons read
READ_RANK = max(EARLY, MAX_SEGMENTS)     # payloads the TLS/HTTP/QUIC readers look at per direction
# Packet columns kept for a replay (PacketBatch fields but the payload position).
COLUMNS = ("ts", "wire_len", "a_hi", "a_lo", "b_hi", "b_lo", "port_a", "port_b", "proto", "direction",
           "tcp_flags", "seq", "payload_len", "vlan", "ttl")
KEY = ("a_hi", "a_lo", "b_hi", "b_lo", "port_a", "port_b", "proto")      # spilled once per flow key
# Spilled per packet, as compact types (PacketBatch types come back in load_rows).
PACKED = {"ts": np.float64, "clock": np.float64, "wire_len": np.uint32, "direction": np.int8,
          "tcp_flags": np.uint8, "seq": np.int64, "payload_len": np.int32, "vlan": np.int16, "ttl": np.uint8,
          "uid": np.int64, "payload_off": np.int64, "payload_cap": np.int32}
SPILLED = tuple(name for name in PACKED if name != "payload_off")


@dataclass
class FilePartial:
    """What one file gave: its flows and parser findings under file-local uids, a summary of
    its flow keys, and where its packet columns were spilled."""

    index: int                              # the file's place in time order
    path: str
    flows: pd.DataFrame                     # ordered, through the per-flow stages, hidden columns kept
    dns: DnsRecords
    activity: Activity
    icmp: list[IcmpErrors]
    stats: RunStats
    uids: int                               # uids used: 0 .. uids-1
    keys: dict[str, np.ndarray]             # per flow key (capture order): boundary.SUMMARY
    ts_min: float = np.inf                  # over TCP/UDP packets (the flow table's clock)
    ts_max: float = -np.inf
    spill: str | None = None
    open_at_end: int = 0
    size: int = 0                           # bytes of capture file
    clock_floor: float = -np.inf            # the capture clock the file was read from (merge.py)


@dataclass
class _Keep:
    """Packet columns of one file, a chunk at a time, and the per-uid facts deciding which
    payloads are kept."""

    parts: list[dict] = field(default_factory=list)
    payloads: list[np.ndarray] = field(default_factory=list)
    held: int = 0                           # payload bytes kept so far
    count: int = 0
    has_data: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    late_syn: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    def add(self, buf: np.ndarray, pk: PacketBatch, joined, now: float) -> None:
        n = len(pk)
        if n == 0:
            return
        uid, rank = joined.uid, joined.rank
        grow = int(uid.max()) + 1
        if grow > len(self.has_data):
            size = max(grow, 2 * len(self.has_data))
            self.has_data = np.concatenate([self.has_data, np.zeros(size - len(self.has_data), bool)])
            self.late_syn = np.concatenate([self.late_syn, np.zeros(size - len(self.late_syn), bool)])
        data = pk.payload_len > 0
        pure_syn = (pk.proto == TCP) & ((pk.tcp_flags & SYN) != 0) & ((pk.tcp_flags & ACK) == 0)
        # A SYN after payload in the same flow may start a new flow in a replay, where the
        # worker did not split: payload ranks restart there, so keep all that flow's payloads.
        if pure_syn.any():
            row = np.flatnonzero(data)
            first_data = np.full(len(self.has_data), n, np.int64)
            first_data[uid[row[::-1]]] = row[::-1]       # repeated indices: the last assignment wins
            syn = np.flatnonzero(pure_syn)
            late = syn[self.has_data[uid[syn]] | (first_data[uid[syn]] < syn)]
            self.late_syn[uid[late]] = True
        self.has_data[uid[data]] = True
        dns_udp = (pk.proto == UDP) & _port_in(pk, DNS_PORTS)
        dns_tcp = (pk.proto == TCP) & _port_in(pk, (53,)) & (rank < DNS_TCP_PAYLOADS)
        keep = (pk.payload_cap > 0) & ((rank < READ_RANK) | dns_udp | dns_tcp | self.late_syn[uid])
        cap = np.where(keep, pk.payload_cap, 0)
        off = np.zeros(n, np.int64)
        off[keep] = self.held + np.cumsum(cap[keep]) - cap[keep]
        total = int(cap.sum())
        if total:
            self.payloads.append(gather_ranges(np.asarray(buf), pk.payload_off[keep], cap[keep]))
        self.held += total
        # The flow table's key hashes and clock of this chunk, not computed a second time.
        h = joined.h if joined.h is not None else key_hash(pk.a_hi, pk.a_lo, pk.b_hi, pk.b_lo, pk.port_a,
                                                           pk.port_b, pk.proto)
        clock = joined.clock if joined.clock is not None else frame_clock(pk.ts, now)
        cols = {"h": h, "clock": clock, "uid": uid, "payload_off": off, "payload_cap": cap}
        cols.update((name, getattr(pk, name)) for name in COLUMNS if name not in cols)
        cols = {name: (v if name in KEY else v.astype(PACKED[name], copy=False) if name in PACKED else v)
                for name, v in cols.items()}
        self.parts.append(cols)
        self.count += n

    def joined(self) -> dict[str, np.ndarray]:
        if not self.parts:
            return {}
        out = {name: np.concatenate([p[name] for p in self.parts]) for name in self.parts[0]}
        self.parts = []
        return out


def run_file(index: int, path: str, options: FlowOptions, site: Site | None,
             sequence_options: SequenceOptions | None, sequences: bool, spill_root: str | None,
             force: np.ndarray | None = None, clock_floor: float = -np.inf) -> FilePartial:
    """Analyze one file on its own (a worker task: only picklable arguments and result).
    `force`: flow keys whose packets are spilled whatever boundary.worth_keeping says;
    `clock_floor`: the capture clock before the file's first frame, when known (merge.py)."""
    from ..pipeline import Session, _icmp_frame, _problem_of, _size, per_flow
    session = Session(options, None, sequence_options, sequences=sequences, stats=RunStats())
    session.table.now = clock_floor
    keep = _Keep()
    session.tap = keep.add
    try:
        for raw in iter_batches(Path(path), session.stats, options.chunk_bytes, options.max_gzip_ratio):
            session.add(raw)
    except CaptureError as exc:
        session.stats.problems.append(_problem_of(exc))
    table = session.table
    open_at_end, open_h, open_closed = table.open_flows, table.open["h"], P.closed(table.open)
    session.collector.finish()
    flows = attach(assemble(table.finish_pieces(), keep_keys=True), session.collector)
    flows = per_flow(flows, _icmp_frame(session.icmp_parts), site, options)
    # The capture end block_reasons saw here (fixups.py redoes the rows that read it).
    flows[SEEN_UNTIL] = float(np.nanmax(flows["ts_end"].to_numpy())) if len(flows) else -np.inf
    cols = keep.joined()
    keys = _keys(cols)
    part = FilePartial(index=index, path=str(path), flows=flows, dns=session.collector.dns,
                       activity=session.activity.found if session.activity is not None else Activity(),
                       icmp=session.icmp_parts, stats=session.stats, uids=table.next_uid, keys={},
                       open_at_end=open_at_end, size=_size(Path(path)), clock_floor=clock_floor)
    if cols:
        part.ts_min, part.ts_max = float(cols["ts"].min()), float(cols["ts"].max())
        keys.update(_edge_facts(cols, keys, open_h, open_closed))
        keys["kept"] = worth_keeping(keys, part.ts_min, part.ts_max, options)
        if force is not None and force.size:
            keys["kept"] |= np.isin(keys["h"], force)
        if spill_root is not None:
            part.spill = _spill(Path(spill_root) / f"file-{index:06d}", cols, keys, keep.payloads)
    else:
        keys.update(syn_first=np.empty(0, bool), closed_end=np.empty(0, bool), kept=np.empty(0, bool))
    part.keys = {name: keys[name] for name in SUMMARY}
    return part


def _edge_facts(cols: dict[str, np.ndarray], keys: dict[str, np.ndarray], open_h: np.ndarray,
                open_closed: np.ndarray) -> dict[str, np.ndarray]:
    """Per flow key, what boundary.worth_keeping reads besides times: its first packet is a pure
    SYN, it carried no payload here, its flow at the file's end is closed (or was expired
    before: as good as closed for what follows)."""
    first = keys["first"]
    flags = cols["tcp_flags"][first]
    at = pd.Index(open_h).get_indexer(keys["h"])
    closed = np.ones(len(at), bool)
    closed[at >= 0] = open_closed[at[at >= 0]]
    data = np.bincount(keys["code"], weights=cols["payload_len"] > 0, minlength=len(keys["h"]))
    return {"syn_first": (cols["proto"][first] == TCP) & ((flags & SYN) != 0) & ((flags & ACK) == 0),
            "quiet": data == 0, "closed_end": closed}


def _spill(folder: Path, cols: dict[str, np.ndarray], keys: dict[str, np.ndarray], payloads: list[np.ndarray]) -> str:
    """The packets of the kept keys as .npy files: key columns once per flow key, the rest per
    packet, and their kept payload bytes one after the other."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "key_h.npy", keys["h"])
    for name in KEY:
        np.save(folder / f"key_{name}.npy", cols[name][keys["first"]])
    rows = np.flatnonzero(keys["kept"][keys["code"]])
    np.save(folder / "code.npy", keys["code"][rows].astype(np.int32))
    cap = cols["payload_cap"][rows]
    has = cap > 0
    # payload_off is not written: it is the running sum of payload_cap (load_rows).
    for name in SPILLED:
        np.save(folder / f"{name}.npy", cols[name][rows])
    # The kept rows' payloads, chunk piece by piece (joining all pieces first would copy every
    # payload the worker held, a few hundred MB on a 500 MB file, to write a third of them).
    start = cols["payload_off"][rows][has]
    length = cap[has]
    bases = np.cumsum([0] + [len(p) for p in payloads])
    piece = np.searchsorted(bases, start, side="right") - 1
    with open(folder / "payload.bin", "wb") as out:
        for i in np.unique(piece).tolist():
            mine = piece == i
            gather_ranges(payloads[i], start[mine] - bases[i], length[mine]).tofile(out)
    return str(folder)


def _keys(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per flow key of the file: its hash, protocol, first and last frame time (capture order),
    the row of its first frame, and each packet's key code (keys numbered in order of first
    appearance)."""
    if not cols:
        return {"h": np.empty(0, np.uint64), "proto": np.empty(0, np.int64),
                "first_ts": np.empty(0), "last_ts": np.empty(0)}
    # A flow (uid) is one key: keys are found among the file's flows, tens of thousands, not
    # hashed per packet (625,000 on a fleet file: 13.6 -> 5.3 ms).
    uid, rows = cols["uid"], np.arange(len(cols["uid"]))
    n = len(uid)
    first_row = np.full(int(uid.max()) + 1, n, np.int64)
    first_row[uid[::-1]] = rows[::-1]                 # repeated indices: the last assignment wins
    seen = np.flatnonzero(first_row < n)
    by_first = seen[np.argsort(first_row[seen], kind="stable")]     # flows in order of first frame
    flow_h = np.zeros(len(first_row), np.uint64)
    flow_h[uid] = cols["h"]
    flow_code, uniques = pd.factorize(flow_h[by_first])               # keys in order of first frame
    code_of = np.zeros(len(first_row), np.int64)
    code_of[by_first] = flow_code
    code = code_of[uid]
    # A key's first flow raises the running maximum of the codes.
    running = np.maximum.accumulate(flow_code)
    new = np.empty(len(flow_code), bool)
    new[0] = True
    np.greater(running[1:], running[:-1], out=new[1:])
    first = first_row[by_first[new]]
    last = np.empty(len(uniques), np.int64)
    last[code] = rows                                 # repeated indices: the last assignment wins
    return {"h": np.asarray(uniques, np.uint64), "proto": cols["proto"][first], "first_ts": cols["ts"][first],
            "last_ts": cols["ts"][last], "first": first, "code": code}


def load_rows(folder: str, keys: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The spilled packets of the given flow keys (capture order), as PacketBatch columns plus
    clock, uid and payload position, and the file's kept payload bytes."""
    rows, code = _rows_of(folder, keys)
    cols = {name: np.load(os.path.join(folder, f"{name}.npy"), mmap_mode="r")[rows] for name in SPILLED}
    cap = np.load(os.path.join(folder, "payload_cap.npy"), mmap_mode="r")
    cols["payload_off"] = (np.cumsum(cap, dtype=np.int64) - cap)[rows]      # payloads one after the other
    for name in KEY:
        cols[name] = np.load(os.path.join(folder, f"key_{name}.npy"))[code]
    for name in ("wire_len", "tcp_flags", "payload_len", "vlan", "payload_cap"):
        cols[name] = cols[name].astype(np.int64)
    path = os.path.join(folder, "payload.bin")
    payload = np.memmap(path, np.uint8, "r") if os.path.getsize(path) else np.zeros(0, np.uint8)
    return cols, payload


def spilled_uids(folder: str, keys: np.ndarray) -> np.ndarray:
    """The worker's uids of the flows of these keys (sorted)."""
    rows, _ = _rows_of(folder, keys)
    uid = np.load(os.path.join(folder, "uid.npy"), mmap_mode="r")[rows]
    if not len(uid):
        return uid
    # uids are a file's flow numbers (dense, from 0): a table instead of np.unique's sort
    seen = np.zeros(int(uid.max()) + 1, bool)
    seen[uid] = True
    return np.flatnonzero(seen).astype(uid.dtype, copy=False)


def _rows_of(folder: str, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    wanted = np.isin(np.load(os.path.join(folder, "key_h.npy")), keys)
    code = np.load(os.path.join(folder, "code.npy"), mmap_mode="r")
    rows = np.flatnonzero(wanted[code])
    return rows, np.asarray(code[rows])


def _port_in(pk: PacketBatch, ports) -> np.ndarray:
    out = np.zeros(len(pk), bool)
    for port in ports:
        out |= (pk.port_a == port) | (pk.port_b == port)
    return out
