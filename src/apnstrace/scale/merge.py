"""Combine per-file partials into the Result a single Session over all files would give.

1. Keys that may continue across a file boundary (boundary.replay_plan): a key seen in an
   earlier file whose first frame here is within the idle timeout of its last frame there,
   unless a closed connection is followed by a SYN (a superset of the flows the flow table
   would continue). Both files' packets of such a key are replayed.
2. The replay (replay.py): per shard of those keys (by hash; one per pool process), a Session
   fed, file by file in time order, the spilled packets of its keys with the true capture
   clock. Per key, a Session's work does not depend on other keys' packets except through the
   clock, so the replayed flows are exactly the sequential ones, whatever the shards.
3. Everything the workers found for replayed keys is dropped (while the shards run); the rest
   keeps its values under uids moved past the earlier files'. Workers and shards both run the
   per-flow stages on their flows, and fixups.py redoes the few rows whose answer reads other
   files (or other shards' DNS answers). All flows are ordered once (finalize.assemble), then the stages
   over all flows (blocked table, sequences, timing, courier) run once, as in one process.
"""
from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from pathlib import Path

import numpy as np
import pandas as pd

from .. import schema
from ..flows.finalize import EVIDENCE, HIDDEN, UID, assemble
from ..metadata.collect import DnsRecords
from ..metadata.key_set import isin_keys
from ..options import FlowOptions, SequenceOptions
from ..sequences import Activity, ActivityCollector
from ..site import Site
from ..stats import RunStats
from .boundary import replay_plan
from .fixups import fix_up
from .partial import FilePartial, run_file, spilled_uids
from .replay import ACTIVITY, ReplayPart, replay_shard, shard_of

log = logging.getLogger(__name__)
KNOWN = set(schema.names(schema.FLOWS)) | {UID, "_client_is_a", *EVIDENCE, *HIDDEN}   # assemble() keeps these


class NotMergeable(Exception):
    """Time steps back across a file boundary by more than a timeout: run sequentially."""


def merge(parts: Sequence[FilePartial], options: FlowOptions, site: Site | None,
          sequence_options: SequenceOptions | None, sequences: bool, pool: Executor | None = None,
          shards: int = 1, spill_done: Callable[[], None] | None = None):
    """The Result of the files as one capture (raises NotMergeable, see above). `pool` runs the
    replay as `shards` tasks, one per shard of the keys, and is shut down once they are done,
    without waiting: its processes exit (their memory is not held) while the merge goes on;
    without it the replay runs here, as one. `spill_done` is called once nothing
    reads the spill folders any more."""
    from ..pipeline import _icmp_frame, _tables
    parts = sorted(parts, key=lambda p: p.index)
    _check_clock(parts, options)
    _read_stepped_back_files_again(parts, options, site, sequence_options, sequences)
    keys, missing = replay_plan([p.keys for p in parts], options)
    for i, lost in enumerate(missing):
        if lost.size:                  # keys its worker did not keep (boundary.py): read the file again
            log.info("%s: reading again for %d flow keys that cross a boundary", parts[i].path, lost.size)
            parts[i] = _again(parts[i], lost, options, sequence_options, sequences)
    icmp_frame = _icmp_frame([e for p in parts for e in p.icmp])
    capture_end = max((float(np.nanmax(p.flows["ts_end"].to_numpy())) for p in parts if len(p.flows)),
                      default=None)
    tasks = _start_replay(parts, keys, options, site, sequence_options, sequences, icmp_frame, capture_end,
                          pool, shards if pool is not None else 1)
    mine = _collect(parts, keys)                   # while the shards replay
    replayed = [task.result() if pool is not None else task for task in tasks]
    if pool is not None:
        pool.shutdown(wait=False)
    if spill_done is not None:
        spill_done()
    frames, dns, found, stats = _join(mine, replayed)
    log.info("merged %d files: %d flow keys replayed across boundaries in %d shards (%d worker flows redone)",
             len(parts), int(sum(len(k) for k in keys)), len(replayed), mine.replayed_uids)
    if stats.limits.get("flows_expired_at_limit") or sum(p.open_at_end for p in parts) > options.max_open_flows:
        warnings.warn("the open-flow limit may have been reached: a parallel run can then differ from a "
                      "single-process one (docs/scale.md)", stacklevel=2)
    extra = tuple(name for name in frames[-1].columns if name not in KNOWN)
    drop = np.concatenate(mine.dropped + [np.zeros(len(f), bool) for f in frames[len(mine.dropped):]])
    flows = assemble(frames, extra=extra, drop=drop)
    del frames, drop
    flows = fix_up(flows, flows[UID].to_numpy() < mine.replay_base, dns, icmp_frame, site, options, capture_end)
    activity = None
    if sequences:
        activity = ActivityCollector(sequence_options or SequenceOptions())
        activity.found = found
    return _tables(flows, dns.failures, activity, site, icmp_frame, stats)


def _start_replay(parts, keys, options, site, sequence_options, sequences, icmp, capture_end,
                  pool: Executor | None, shards: int) -> list:
    """The replay tasks (futures on `pool`, else the one shard's result)."""
    spills = [p.spill for p in parts]
    floors = list(np.maximum.accumulate([-np.inf] + [p.ts_max for p in parts[:-1]]))
    args = (options, site, sequence_options, sequences, icmp, capture_end)
    if pool is None:
        return [replay_shard(spills, keys, floors, *args)]
    cut = [shard_of(k, shards) for k in keys]
    return [pool.submit(replay_shard, spills, [k[c == s] for k, c in zip(keys, cut)], floors, *args)
            for s in range(shards)]


@dataclasses.dataclass
class _Mine:
    """What the workers found, per file, without their replayed keys' (uids moved past the
    earlier files')."""

    frames: list[pd.DataFrame]             # as the workers gave them, uids final
    dropped: list[np.ndarray]              # per frame: its rows of replayed keys (left out)
    dns: list[DnsRecords]                  # answers, and failures with final uids
    activity: list[Activity]               # final uids
    stats: RunStats
    replay_base: int                       # the first uid of the replayed flows
    replayed_uids: int


def _collect(parts: Sequence[FilePartial], keys: list[np.ndarray]) -> _Mine:
    base, frames, rows, dns, found = 0, [], [], [], []
    stats, replayed_uids = RunStats(), 0
    for part, wanted in zip(parts, keys):
        dropped = _uids_of(part, wanted)
        replayed_uids += len(dropped)
        uid = part.flows[UID].to_numpy()
        # Rows of replayed keys are left out when the flows are ordered (one copy, not two).
        rows.append(isin_keys(uid.astype(np.int64, copy=False), dropped.astype(np.int64, copy=False)))
        part.flows[UID] = uid + base               # the worker's frame: no other holder
        frames.append(part.flows)
        part.flows = None                          # held once: the merged frame is built from these
        gone = set(dropped.tolist())
        failures = [dataclasses.replace(f, uid=f.uid + base) for f in part.dns.failures if f.uid not in gone]
        answers = part.dns.answers()
        answers.failures = failures
        dns.append(answers)
        activity = Activity()
        _extend_activity(activity, part.activity, dropped, base)
        found.append(activity)
        _add_stats(stats, part.stats)
        base += part.uids
    return _Mine(frames, rows, dns, found, stats, base, replayed_uids)


def _join(mine: _Mine, replayed: Sequence[ReplayPart]
          ) -> tuple[list[pd.DataFrame], DnsRecords, Activity, RunStats]:
    """All flows (the workers', then each shard's), and per file in file order the workers' DNS
    records and activity followed by the shards' (answers and failures in time order within a
    file), uids final."""
    bases = [int(b) for b in np.cumsum([mine.replay_base] + [r.uids for r in replayed])]
    frames = mine.frames
    for shard, base in zip(replayed, bases):
        shard.flows[UID] = shard.flows[UID].to_numpy() + base
        frames.append(shard.flows)
    dns, failures, found = DnsRecords(), [], Activity()
    for i, (answers, activity) in enumerate(zip(mine.dns, mine.activity)):
        theirs = [r.dns[i] for r in replayed]
        _extend_dns(dns, [answers] + theirs)
        moved = [dataclasses.replace(f, uid=f.uid + base)
                 for got, base in zip(theirs, bases) for f in got.failures]
        failures.extend(sorted(answers.failures + moved, key=lambda f: f.ts))
        _extend_activity(found, activity, np.empty(0, np.int64), 0)
        for r, base in zip(replayed, bases):
            _extend_activity(found, r.activity[i], np.empty(0, np.int64), base)
    dns.failures = failures
    return frames, dns, found, mine.stats


def _again(part: FilePartial, lost: np.ndarray, options: FlowOptions, sequence_options: SequenceOptions | None,
           sequences: bool) -> FilePartial:
    """The file's partial read again, its spill now holding the lost keys' packets too (the same
    Session over the same file: the same flows and uids)."""
    root = str(Path(part.spill).parent)
    force = np.union1d(part.keys["h"][part.keys["kept"]], lost)
    again = run_file(part.index, part.path, options, None, sequence_options, sequences, root, force,
                     clock_floor=part.clock_floor)
    part.spill, part.keys = again.spill, again.keys
    return part


def _check_clock(parts: Sequence[FilePartial], options: FlowOptions) -> None:
    latest = -np.inf
    for part in parts:
        if latest - part.ts_min > min(options.tcp_timeout, options.udp_timeout):
            raise NotMergeable(f"{part.path}: frames {latest - part.ts_min:.0f} s older than the file before")
        latest = max(latest, part.ts_max)


def _read_stepped_back_files_again(parts: list[FilePartial], options: FlowOptions, site: Site | None,
                                   sequence_options: SequenceOptions | None, sequences: bool) -> None:
    """A file whose first frames are older than the latest frame before it was read with a
    capture clock of its own, lower than the single-process run's at those frames; flows idle by
    the clock (flows/table.py) can then end differently. Read it again from that clock (rare:
    a capture reordered right at a file boundary)."""
    latest = -np.inf
    for i, part in enumerate(parts):
        if latest > part.ts_min and part.clock_floor < latest:
            log.info("%s: starts %.6f s before the file ahead of it ends: reading it again from that clock",
                     part.path, latest - part.ts_min)
            root = str(Path(part.spill).parent) if part.spill is not None else None
            parts[i] = run_file(part.index, part.path, options, site, sequence_options, sequences, root,
                                clock_floor=latest)
        latest = max(latest, parts[i].ts_max)


def _uids_of(part: FilePartial, wanted: np.ndarray) -> np.ndarray:
    """The worker's uids of flows whose key is replayed."""
    if not wanted.size or part.spill is None:
        return np.empty(0, np.int64)
    return spilled_uids(part.spill, wanted)


def _extend_dns(out: DnsRecords, got: Sequence[DnsRecords]) -> None:
    """Append the answers of `got` (one file's), in time order (stable: `got`'s order at ties)."""
    ordered = DnsRecords.by_time(got)
    out.append(ordered.ts, ordered.address, ordered.name)


def _extend_activity(out: Activity, got: Activity, dropped: np.ndarray, base: int) -> None:
    """Append `got`'s records (a list of arrays per column), minus dropped uids, uids moved by base."""
    for prefix in ("start", "apns"):
        names = [n for n in ACTIVITY if n.startswith(prefix + "_")]
        for i, uid in enumerate(getattr(got, f"{prefix}_uid")):
            keep = ~isin_keys(np.asarray(uid, np.int64), dropped.astype(np.int64, copy=False))
            for name in names:
                values = getattr(got, name)[i][keep]
                getattr(out, name).append(values + base if name.endswith("_uid") else values)


def _add_stats(total: RunStats, part: RunStats) -> None:
    total.files.extend(part.files)
    total.records += part.records
    total.packets_in_flows += part.packets_in_flows
    total.icmp_errors += part.icmp_errors
    total.skipped.update(part.skipped)
    total.malformed.update(part.malformed)
    total.problems.extend(part.problems)
    total.limits.update(part.limits)
