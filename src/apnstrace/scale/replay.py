"""The replay of flow keys that cross file boundaries, one shard of those keys per task.

A Session's work for a flow key depends on that key's packets and the capture clock before
each of them, nothing else (docs/scale.md, "Why the merge is exact"), so the keys to replay
can be cut into shards by hash and each shard replayed by its own Session, on the worker
pool, at the same time. A shard's Session is fed, file by file in time order, the spilled
packets of its keys with the true capture clock; its flows then go through the per-flow
stages (metadata attached, classification, block reasons) with the ICMP errors of every file
and the capture's end as the workers' flows tell it. DNS names from other files' answers are
the merge's to fill in (fixups.py renames every row that DNS names), as for the workers' flows.
What a task returns is picklable: its flows (uids local to the shard), and per file the DNS
records and activity records its packets gave.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..flows.finalize import assemble
from ..metadata import attach
from ..metadata.collect import DnsRecords
from ..metadata.held import gather_ranges_into
from ..options import FlowOptions, SequenceOptions
from ..records import PacketBatch
from ..sequences import Activity
from ..site import Site
from ..stats import RunStats
from .partial import COLUMNS, SEEN_UNTIL, load_rows

REPLAY_ROWS = 1 << 20          # packets per replay batch
PAD = 128                      # zero bytes after the replay payloads (decoders may over-read)
ACTIVITY = tuple(f.name for f in dataclasses.fields(Activity))


@dataclasses.dataclass
class ReplayPart:
    """One shard's replay: its flows through the per-flow stages, and per file what its
    packets of that file gave."""

    flows: pd.DataFrame                 # assembled with keep_keys, uids 0 .. uids-1
    dns: list[DnsRecords]               # per file: answers and failures, in the order found
    activity: list[Activity]            # per file
    uids: int


def shard_of(keys: np.ndarray, shards: int) -> np.ndarray:
    """The shard of each flow key hash (keys are hashes: any residue spreads them evenly)."""
    return (keys % np.uint64(shards)).astype(np.int64) if shards > 1 else np.zeros(len(keys), np.int64)


def replay_shard(spills: Sequence[str | None], keys: Sequence[np.ndarray], floors: Sequence[float],
                 options: FlowOptions, site: Site | None, sequence_options: SequenceOptions | None,
                 sequences: bool, icmp: pd.DataFrame, capture_end: float | None) -> ReplayPart:
    """Replay these keys (per file: the hashes to replay from its spill folder; `floors`: the
    capture clock when each file begins) through one Session (a pool task)."""
    from ..pipeline import Session, per_flow
    session = Session(options, None, sequence_options, sequences=sequences, stats=RunStats())
    marks = [_marks(None)]
    for spill, wanted, floor in zip(spills, keys, floors):
        if wanted.size and spill is not None:
            _replay_file(session, spill, wanted, floor)
        marks.append(_marks(session))
    session.collector.finish()
    marks[-1] = _marks(session)                    # what finish() parsed belongs to the last file
    flows = attach(assemble(session.table.finish_pieces(), keep_keys=True), _Own(session.collector))
    flows = per_flow(flows, icmp, site, options, capture_end)
    flows[SEEN_UNTIL] = capture_end if capture_end is not None else -np.inf
    found = session.activity.found if session.activity is not None else Activity()
    dns = session.collector.dns
    return ReplayPart(flows=flows,
                      dns=[_dns_slice(dns, a, b) for a, b in zip(marks, marks[1:])],
                      activity=[_activity_slice(found, a, b) for a, b in zip(marks, marks[1:])],
                      uids=session.table.next_uid)


@dataclasses.dataclass
class _Own:
    """The collector's metadata, with only the shard's own DNS answers (the merge renames)."""

    collector: object

    def table(self):
        return self.collector.table()

    @property
    def dns(self) -> DnsRecords:
        return self.collector.dns


def _replay_file(session, folder: str, wanted: np.ndarray, clock_floor: float) -> None:
    cols, payload = load_rows(folder, wanted)
    n = len(cols["ts"])
    for start in range(0, n, REPLAY_ROWS):
        rows = slice(start, min(n, start + REPLAY_ROWS))
        cap = cols["payload_cap"][rows]
        off = cols["payload_off"][rows]
        kept = cap > 0
        # This batch's payloads, laid out one after the other (then zero padding).
        local = np.zeros(len(cap), np.int64)
        local[kept] = np.cumsum(cap[kept]) - cap[kept]
        total = int(cap.sum())
        buf = np.zeros(total + PAD, np.uint8)
        if total:
            gather_ranges_into(np.asarray(payload), off[kept], cap[kept], buf[:total])
        batch = PacketBatch(**{name: np.asarray(cols[name][rows]) for name in COLUMNS},
                            payload_off=local, payload_cap=np.asarray(cap))
        clock = np.maximum(np.asarray(cols["clock"][rows]), clock_floor)
        session.add_packets(buf, batch, clock)


def _marks(session) -> dict:
    if session is None:
        return {"dns": 0, "failures": 0, **{name: 0 for name in ACTIVITY}}
    dns = session.collector.dns
    out = {"dns": len(dns), "failures": len(dns.failures)}
    found = session.activity.found if session.activity is not None else Activity()
    out.update({name: len(getattr(found, name)) for name in ACTIVITY})
    return out


def _dns_slice(dns: DnsRecords, before: dict, mark: dict) -> DnsRecords:
    a, b = before["dns"], mark["dns"]
    out = dns.answers(a, b)
    out.failures = dns.failures[before["failures"]: mark["failures"]]
    return out


def _activity_slice(found: Activity, before: dict, mark: dict) -> Activity:
    return Activity(**{name: getattr(found, name)[before[name]: mark[name]] for name in ACTIVITY})
