"""Combine per-file partials into the Result a single Session over all files would give.

1. Keys that may continue across a file boundary (boundary.replay_plan): a key seen in an
   earlier file whose first frame here is within the idle timeout of its last frame there,
   unless a closed connection is followed by a SYN (a superset of the flows the flow table
   would continue). Both files' packets of such a key are replayed.
2. The replay: one Session fed, file by file in time order, the spilled packets of those keys
   with the true capture clock. Per key, a Session's work does not depend on other keys'
   packets except through the clock, so the replayed flows are exactly the sequential ones.
3. Everything the workers found for replayed keys is dropped; the rest keeps its values under
   uids moved past the earlier files'. The replayed flows go through the per-flow stages here;
   the workers' flows come through them already, and fixups.py redoes the few rows whose
   answer reads other files. All flows are ordered once (finalize.assemble), then the stages
   over all flows (blocked table, sequences, timing, courier) run once, as in one process.
"""
from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .. import schema
from ..flows.finalize import EVIDENCE, HIDDEN, UID, assemble
from ..metadata import attach
from ..metadata.collect import DnsRecords
from ..options import FlowOptions, SequenceOptions
from ..records import PacketBatch
from ..sequences import Activity, ActivityCollector
from ..site import Site
from ..stats import RunStats
from .boundary import replay_plan
from .fixups import fix_up
from .partial import COLUMNS, SEEN_UNTIL, FilePartial, gather, load_rows, run_file, spilled_uids

log = logging.getLogger(__name__)
REPLAY_ROWS = 1 << 20          # packets per replay batch
PAD = 128                      # zero bytes after the replay payloads (decoders may over-read)
ACTIVITY = tuple(f.name for f in dataclasses.fields(Activity))
KNOWN = set(schema.names(schema.FLOWS)) | {UID, "_client_is_a", *EVIDENCE, *HIDDEN}   # assemble() keeps these


class NotMergeable(Exception):
    """Time steps back across a file boundary by more than a timeout: run sequentially."""


def merge(parts: Sequence[FilePartial], options: FlowOptions, site: Site | None,
          sequence_options: SequenceOptions | None, sequences: bool):
    """The Result of the files as one capture (raises NotMergeable, see above)."""
    from ..pipeline import Session, _icmp_frame, _tables, per_flow
    parts = sorted(parts, key=lambda p: p.index)
    _check_clock(parts, options)
    _read_stepped_back_files_again(parts, options, site, sequence_options, sequences)
    keys, missing = replay_plan([p.keys for p in parts], options)
    for i, lost in enumerate(missing):
        if lost.size:                  # keys its worker did not keep (boundary.py): read the file again
            log.info("%s: reading again for %d flow keys that cross a boundary", parts[i].path, lost.size)
            parts[i] = _again(parts[i], lost, options, sequence_options, sequences)
    replay = Session(options, None, sequence_options, sequences=sequences, stats=RunStats())
    marks = _replay(replay, parts, keys)
    replay_base = sum(p.uids for p in parts)
    got = _collect(parts, keys, marks, replay, replay_base)
    frames, dns, found, icmp, stats = got.frames, got.dns, got.found, got.icmp, got.stats
    log.info("merged %d files: %d flow keys replayed across boundaries (%d worker flows redone)",
             len(parts), int(sum(len(k) for k in keys)), got.replayed_uids)
    if stats.limits.get("flows_expired_at_limit") or sum(p.open_at_end for p in parts) > options.max_open_flows:
        warnings.warn("the open-flow limit may have been reached: a parallel run can then differ from a "
                      "single-process one (docs/scale.md)", stacklevel=2)
    icmp_frame = _icmp_frame(icmp)
    # The replayed flows go through the per-flow stages here, with what all files found.
    redone = attach(assemble(replay.table.finish_pieces(), keep_keys=True), _Collected(replay.collector.flows, dns))
    redone[UID] = redone[UID].to_numpy() + replay_base
    capture_end = max((float(np.nanmax(f["ts_end"].to_numpy())) for f in frames + [redone] if len(f)),
                      default=None)
    redone = per_flow(redone, icmp_frame, site, options, capture_end)
    redone[SEEN_UNTIL] = capture_end if capture_end is not None else -np.inf
    extra = tuple(name for name in redone.columns if name not in KNOWN)
    flows = assemble(frames + [redone], extra=extra)
    del frames, redone
    flows = fix_up(flows, flows[UID].to_numpy() < replay_base, dns, icmp_frame, site, options, capture_end)
    activity = None
    if sequences:
        activity = ActivityCollector(sequence_options or SequenceOptions())
        activity.found = found
    return _tables(flows, dns.failures, activity, site, icmp_frame, stats)


@dataclasses.dataclass
class _Files:
    """What the files and the replay found, in file order, uids moved to their final values."""

    frames: list[pd.DataFrame]
    dns: DnsRecords
    found: Activity
    icmp: list
    stats: RunStats
    replayed_uids: int


def _collect(parts: Sequence[FilePartial], keys: list[np.ndarray], marks: list[dict], replay,
             replay_base: int) -> _Files:
    """Each file's flows without its replayed keys' (uids moved past the earlier files'), its
    DNS records and activity with the replay's of the same file, ICMP errors and counters."""
    base, frames = 0, []
    dns, failures, found, icmp = DnsRecords(), [], Activity(), []
    stats = RunStats()
    replayed_uids = 0
    before = _marks(None)
    for part, wanted, mark in zip(parts, keys, marks):
        dropped = _uids_of(part, wanted)
        replayed_uids += len(dropped)
        frames.append(_moved(part.flows, dropped, base))
        part.flows = None                          # held once: the merged frame is built from these
        # DNS answers (no uid: a replayed DNS flow gives the same answers again, harmless to the
        # name map) and failures, worker's then replay's, in time order within the file.
        got = _dns_slice(replay.collector.dns, before, mark)
        _extend_dns(dns, part.dns, got)
        gone = set(dropped.tolist())
        mine = [dataclasses.replace(f, uid=f.uid + base) for f in part.dns.failures if f.uid not in gone]
        theirs = [dataclasses.replace(f, uid=f.uid + replay_base) for f in got.failures]
        failures.extend(sorted(mine + theirs, key=lambda f: f.ts))
        _extend_activity(found, part.activity, dropped, base)
        if replay.activity is not None:
            _extend_activity(found, _activity_slice(replay.activity.found, before, mark), np.empty(0, np.int64),
                             replay_base)
        icmp.extend(part.icmp)
        _add_stats(stats, part.stats)
        base += part.uids
        before = mark
    dns.failures = failures
    return _Files(frames, dns, found, icmp, stats, replayed_uids)


@dataclasses.dataclass
class _Collected:
    """What attach() reads from a MetadataCollector."""

    flows: dict
    dns: DnsRecords


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


def _replay(session, parts: Sequence[FilePartial], keys: list[np.ndarray]) -> list[dict]:
    """Feed `session` the spilled packets of the replayed keys, file by file; returns where its
    DNS and activity records stood after each file."""
    marks = []
    floor = -np.inf                                # the capture clock when a file begins
    for part, wanted in zip(parts, keys):
        if wanted.size and part.spill is not None:
            _replay_file(session, part.spill, wanted, floor)
        floor = max(floor, part.ts_max)
        marks.append(_marks(session))
    session.collector.finish()
    marks[-1] = _marks(session)                    # what finish() parsed belongs to the last file
    return marks


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
            buf[:total] = gather(np.asarray(payload), off[kept], cap[kept])
        batch = PacketBatch(**{name: np.asarray(cols[name][rows]) for name in COLUMNS},
                            payload_off=local, payload_cap=np.asarray(cap))
        clock = np.maximum(np.asarray(cols["clock"][rows]), clock_floor)
        session.add_packets(buf, batch, clock)


def _uids_of(part: FilePartial, wanted: np.ndarray) -> np.ndarray:
    """The worker's uids of flows whose key is replayed."""
    if not wanted.size or part.spill is None:
        return np.empty(0, np.int64)
    return spilled_uids(part.spill, wanted)


def _moved(flows: pd.DataFrame, dropped: np.ndarray, base: int) -> pd.DataFrame:
    """A worker's flows without the dropped uids, uids moved by `base`."""
    uid = flows[UID].to_numpy()
    if dropped.size:
        keep = ~np.isin(uid, dropped)
        flows, uid = flows[keep], uid[keep]
    flows[UID] = uid + base                  # the worker's frame (or its filtered copy): no other holder
    return flows


def _marks(session) -> dict:
    if session is None:
        return {"dns": 0, "failures": 0, **{name: 0 for name in ACTIVITY}}
    dns = session.collector.dns
    out = {"dns": len(dns.ts), "failures": len(dns.failures)}
    found = session.activity.found if session.activity is not None else Activity()
    out.update({name: len(getattr(found, name)) for name in ACTIVITY})
    return out


def _dns_slice(dns: DnsRecords, before: dict, mark: dict) -> DnsRecords:
    a, b = before["dns"], mark["dns"]
    return DnsRecords(dns.ts[a:b], dns.address[a:b], dns.name[a:b],
                      dns.failures[before["failures"]: mark["failures"]])


def _extend_dns(out: DnsRecords, mine: DnsRecords, theirs: DnsRecords) -> None:
    ts = mine.ts + theirs.ts
    order = np.argsort(np.asarray(ts, float), kind="stable") if ts else []
    address, name = mine.address + theirs.address, mine.name + theirs.name
    out.ts.extend(ts[i] for i in order)
    out.address.extend(address[i] for i in order)
    out.name.extend(name[i] for i in order)


def _activity_slice(found: Activity, before: dict, mark: dict) -> Activity:
    return Activity(**{name: getattr(found, name)[before[name]: mark[name]] for name in ACTIVITY})


def _extend_activity(out: Activity, got: Activity, dropped: np.ndarray, base: int) -> None:
    """Append `got`'s records (a list of arrays per column), minus dropped uids, uids moved by base."""
    for prefix in ("start", "apns"):
        names = [n for n in ACTIVITY if n.startswith(prefix + "_")]
        for i, uid in enumerate(getattr(got, f"{prefix}_uid")):
            keep = ~np.isin(uid, dropped) if dropped.size else np.ones(len(uid), bool)
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
