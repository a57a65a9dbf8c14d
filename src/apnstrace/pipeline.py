"""analyze(): read -> decode -> flows, owning RunStats. The CLI and notebooks both call this."""
from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from . import schema
from .beside import Beside, chunk_beside, cores_available
from .decode import decode_chunk
from .errors import CaptureError, InputError
from .classify import classify
from .flows import FlowTable
from .health import block_reasons, blocked_table, courier_table, flow_timing, timing_table
from .metadata import MetadataCollector, attach
from .options import FlowOptions, SequenceOptions
from .reader import iter_batches, order_by_time
from .sequences import ActivityCollector, build_sequences
from .flows.finalize import UID, assemble
from .heap import hand_back_freed, keep_freed_memory
from .old_objects import old_objects_aside
from .flows.table import PacketFlows
from .records import IcmpErrors, PacketBatch, RawBatch
from .site import Site
from .stats import RunStats

log = logging.getLogger(__name__)

ENGINES = ("fast", "scapy")
Progress = Callable[[int], None]      # called with bytes of capture consumed so far


@dataclass
class Result:
    """What one analysis found. Frames follow the schemas in apnstrace.schema."""

    flows: pd.DataFrame
    stats: RunStats
    icmp_errors: pd.DataFrame = field(default_factory=pd.DataFrame)
    blocked: pd.DataFrame = field(default_factory=lambda: schema.to_frame(None, schema.BLOCKED))
    timing: pd.DataFrame = field(default_factory=lambda: schema.to_frame(None, schema.TIMING))
    courier: pd.DataFrame = field(default_factory=lambda: schema.to_frame(None, schema.COURIER))
    sequences: pd.DataFrame = field(default_factory=lambda: schema.to_frame(None, schema.SEQUENCES))

    @property
    def problems(self) -> list[str]:
        """One line per capture file that could be read only in part."""
        return [p.message for p in self.stats.problems]

    @property
    def verdicts(self) -> list:
        """The answer on top: apnstrace.report.verdicts.Verdict lines (topic, level, text)."""
        from .report.verdicts import verdicts
        return verdicts(self)

    @property
    def summary(self) -> dict:
        """Verdicts and counts, as written to summary.json."""
        from .report.verdicts import summary
        return summary(self)

    @property
    def plot(self):
        """The report's charts as matplotlib Figures: result.plot.timeline(), .latency(),
        .blocked(), .traffic(), .courier()."""
        from .report.charts import Plots
        return Plots(self)

    def to_html(self, path: str | os.PathLike) -> Path:
        """Write the self-contained HTML report (charts inline, every capture string escaped)."""
        from .report.folder import write_html
        return write_html(self, Path(path))

    def to_parquet(self, folder: str | os.PathLike) -> dict[str, Path]:
        """Write flows, sequences, blocked, timing and courier as Parquet files in `folder`."""
        from .report.folder import write_tables
        return write_tables(self, Path(folder), formats=("parquet",))

    def anonymized(self, key: str | bytes | None = None, site: Site | None = None) -> Result:
        """A copy for sharing: internal addresses (and the site's internal subnets), MAC-derived
        IPv6 interface IDs, the interface IDs of global IPv6 client addresses and device names replaced by keyed pseudonyms in every table; Apple
        and public service addresses kept. The same key gives the same pseudonyms in every run
        (no key: a random one). See apnstrace.anonymize."""
        from .anonymize import Anonymizer
        clients = self.flows["client_ip"].dropna().unique() if len(self.flows) else ()
        anon = Anonymizer(key, site.internal_subnets if site is not None else (), devices=clients)
        return Result(flows=anon.frame(self.flows), stats=self.stats, icmp_errors=anon.frame(self.icmp_errors),
                      blocked=anon.frame(self.blocked), timing=anon.frame(self.timing),
                      courier=anon.frame(self.courier), sequences=anon.frame(self.sequences))


def analyze(paths: str | os.PathLike | Iterable[str | os.PathLike], *, site: Site | None = None,
            engine: str = "fast", options: FlowOptions | None = None,
            sequence_options: SequenceOptions | None = None, sequences: bool = True,
            progress: Progress | None = None, workers: int = 0, dask: str | None = None,
            spill_dir: str | os.PathLike | None = None) -> Result:
    """Analyze one or more capture files (pcap, pcapng, gzip-compressed) as one capture.

    Files are read in time order of their first frame, so rotated captures can be given in
    any order and a flow crossing a file boundary stays one flow. A file that is not a
    capture, or breaks part-way, is reported in ``result.problems`` (and as a warning); what
    could be read is kept. Raises CaptureError when nothing at all could be read.

    ``site`` (a Site profile: MDM hosts, distribution points, SUS hosts, internal subnets)
    adds rules that win over the built-in classification. ``sequence_options`` tunes push ->
    check-in matching (docs/sequences.md); ``sequences=False`` skips it. The scapy reference
    engine keeps no packet-level activity, so its result has no sequences.

    ``workers``: processes reading the files in parallel (0, the default: one per core when the
    files add up to 4 GiB or more, else one; 1: this process only; a single file is always read
    by one process), ``dask`` (a scheduler address,
    or "local"): on a Dask cluster instead; either way the result is the one a single process
    gives (docs/scale.md). ``spill_dir``: where workers leave packet columns for
    the merge (default: a temporary folder; on a cluster, storage every worker shares).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError("no capture files given")
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
    options = options or FlowOptions()
    stats = RunStats()
    ordered = order_by_time(paths)
    if engine == "scapy":
        from .engines.scapy_engine import build_flows
        result = _result(build_flows(ordered, options, stats), pd.DataFrame(), [], None, site, options, stats)
    else:
        result = None
        if workers == 0 and dask is None and len(ordered) > 1:
            from .scale.workers import auto_workers
            workers = auto_workers(ordered)
        if len(ordered) > 1 and (workers > 1 or dask is not None):
            from .scale.workers import analyze_parallel
            result = analyze_parallel(ordered, site=site, options=options, sequence_options=sequence_options,
                                      sequences=sequences, workers=workers, dask=dask, spill_dir=spill_dir,
                                      progress=progress)
            if result is not None:
                stats = result.stats
        if result is None:
            session = Session(options, site, sequence_options, sequences=sequences, stats=stats,
                              beside=cores_available() > 1)
            with old_objects_aside() as set_aside:
                _fast_flows(ordered, session, progress, set_aside)
                result = session.finish()
    if stats.problems:
        if stats.records == 0 and len(stats.problems) == len(paths):
            raise _nothing_read(stats)
        for problem in stats.problems:
            warnings.warn(problem.message, stacklevel=2)
    return result


class Session:
    """The fast engine's incremental state: feed RawBatch chunks, read a Result at any time.

    analyze() feeds it a file's chunks; live capture feeds it small batches built from
    captured packets. One engine either way: the same decode, flow table, metadata and
    sequence collectors, so live and file results agree on the same packets.
    """

    def __init__(self, options: FlowOptions | None = None, site: Site | None = None,
                 sequence_options: SequenceOptions | None = None, *, sequences: bool = True,
                 stats: RunStats | None = None, beside: bool = False) -> None:
        """beside: the metadata and activity collectors work on each chunk in a second thread
        while the engine reads the next (analyze() on more than one core); every method that
        reads them waits for it first. Results are the same either way."""
        keep_freed_memory()               # chunk after chunk reuses the same sizes (heap.py)
        self.options = options or FlowOptions()
        self.site = site
        self.stats = stats if stats is not None else RunStats()
        self.table = FlowTable(self.options, self.stats)
        # Beside the engine, the collector counts into stats of its own, added in when it is
        # waited for: the two threads would otherwise write the same counters at once.
        self._beside = Beside() if beside else None
        self.chunk_bytes = chunk_beside(self.options.chunk_bytes) if beside else self.options.chunk_bytes
        self._collector_stats = RunStats() if beside else self.stats
        self.collector = MetadataCollector(self._collector_stats, self.options.max_reassembly_bytes)
        self.activity = ActivityCollector(sequence_options or SequenceOptions()) if sequences else None
        self.icmp_parts: list[IcmpErrors] = []
        self.tap = None     # scale/partial.py: called with (buf, packets, joined, clock before the chunk)

    def add(self, raw: RawBatch) -> None:
        """One chunk of capture records, in capture order after the chunks before it."""
        packets, errors = decode_chunk(raw, self.stats)
        now = self.table.now
        joined = self.add_packets(raw.buf, packets)
        if self.tap is not None:
            self.tap(raw.buf, packets, joined, now)
        if len(errors):
            self.icmp_parts.append(errors)

    def add_packets(self, buf: np.ndarray, packets: PacketBatch, clock: np.ndarray | None = None) -> PacketFlows:
        """Decoded packets (payloads in `buf`): the flow table, metadata and activity. `clock`
        is given when the packets are only some of the capture's (see FlowTable.add)."""
        joined = self.table.add(packets, clock)
        open_uids = self.table.open_column("uid") if self.activity is not None else None   # a copy: as of now
        if self._beside is None:
            self._collect(buf, packets, joined.uid, joined.rank, open_uids)
        else:
            self._beside.run(self._collect, buf, packets, joined.uid, joined.rank, open_uids)
        return joined

    def _collect(self, buf: np.ndarray, packets: PacketBatch, uid: np.ndarray, rank: np.ndarray,
                 open_uids: np.ndarray | None) -> None:
        """A chunk's metadata and activity (reads nothing the engine changes after the chunk)."""
        self.collector.add(buf, packets, uid, rank)
        hellos = self.collector.take_hellos()
        if self.activity is not None:
            self.activity.add(packets, uid, self.collector.recent_hellos(), open_uids, hellos)

    def _settled(self) -> None:
        """Wait for the collectors' work on the chunks handed over, and add in what they counted."""
        if self._beside is None:
            return
        self._beside.wait()
        own = self._collector_stats
        for name in ("malformed", "limits", "skipped"):
            getattr(self.stats, name).update(getattr(own, name))
            getattr(own, name).clear()

    def snapshot(self) -> Result:
        """What was read so far; open flows are reported as they stand and stay open, and
        streams still being reassembled are left to finish (their metadata shows up later)."""
        self._settled()
        flows = attach(self.table.snapshot(), self.collector)
        return _result(flows, _icmp_frame(self.icmp_parts), self.collector.dns.failures, self.activity,
                       self.site, self.options, self.stats)

    def retire_before(self, cutoff: float) -> pd.DataFrame:
        """Finished flows whose last frame is older than `cutoff` (capture time), with their
        metadata, classification and block reasons, as the public flows frame; forgotten here
        along with what was gathered for them. A live run keeps a window this way, so memory
        follows the window, not the hours captured (live/run.py)."""
        self._settled()
        flows = assemble(self.table.take_finished_before(cutoff))
        uids = flows[UID].to_numpy()
        if len(flows):
            self.collector.finish_flows(uids)
            flows = per_flow(attach(flows, self.collector), _icmp_frame(self.icmp_parts), self.site,
                             self.options, capture_end=self.table.now)
            self.collector.forget(uids)
            self._drop_icmp_before(self._earliest_start())
        if self.activity is not None:
            self.activity.forget(uids, before=cutoff)
        return _public(flows)

    def _earliest_start(self) -> float:
        """The first frame of any flow still held: older ICMP errors can quote none of them."""
        starts = [float(p["ts_start"].min()) for p in self.table.pieces if len(p)]
        open_starts = self.table.open_column("ts_first")
        if len(open_starts):
            starts.append(float(open_starts.min()))
        return min(starts, default=self.table.now)

    def _drop_icmp_before(self, ts: float) -> None:
        if self.icmp_parts:
            errors = IcmpErrors.concat(self.icmp_parts)
            self.icmp_parts = [errors.take(np.flatnonzero(errors.ts >= ts))] if len(errors) else []

    def finish(self) -> Result:
        """Close every flow and parse what incomplete streams hold: the final Result."""
        self._settled()
        if self._beside is not None:            # the rest runs here: the thread ends
            self._beside.close()
            self._beside, self.collector.stats = None, self.stats
        self.collector.finish()
        failures = self.collector.dns.failures
        # The ICMP errors' frame (a few MB) made before the flows: made after them, its text
        # addresses' temporaries came on top of the whole flows frame (engine_10m ~1,020 MB).
        icmp = _icmp_frame(self.icmp_parts)
        # The frame is handed on, not kept here: _result lets it go once block_reasons copied it.
        return _result(self._finished_flows(), icmp, failures, self.activity, self.site, self.options, self.stats)

    def _finished_flows(self) -> pd.DataFrame:
        """Every flow closed, with its metadata. The session is spent: its collector is let go
        once attach() read it (only its DNS failures are read later), and the heap's free pages
        go back to the system before and after assemble and after attach: what reading, the
        finished pieces and attach freed stayed there (heap.py), under the next stage's peak.
        engine_10m peak ~1,450 -> ~1,300 MB; each trim ~10 ms."""
        _hand_back_freed()
        flows = self.table.finish()
        _hand_back_both()
        flows = attach(flows, self.collector, last=True)      # its log let go once resolved
        self.collector = None
        _hand_back_both()
        return flows


def _result(flows: pd.DataFrame, icmp: pd.DataFrame, dns_failures: list, activity: ActivityCollector | None,
            site: Site | None, options: FlowOptions, stats: RunStats) -> Result:
    """The stages after the flow table: classification, block reasons, sequences, timing."""
    # Rebound, so the frame before is let go: block_reasons' frame is a copy (consolidated blocks).
    flows = per_flow(flows, icmp, site, options)
    # Hidden columns block_reasons alone reads, let go before _tables' temporaries come on top
    # (one array each by now, so the drop frees them): engine_10m ~85 MB.
    # server_name_source: classify's alone (engine_10m ~9 MB).
    spent = ("_syn_first", "_syn_last", "_c_data_ts", "_s_data_ts", "_s_payload", "_c_fin_ts", "_s_fin_ts",
             "_c_rst_ts", "client_alert", "server_alpn", "server_hello_ts", "server_name_source")
    flows = flows.drop(columns=[name for name in spent if name in flows])
    _hand_back_both()
    return _tables(flows, dns_failures, activity, site, icmp, stats)


def per_flow(flows: pd.DataFrame, icmp: pd.DataFrame, site: Site | None, options: FlowOptions,
             capture_end: float | None = None) -> pd.DataFrame:
    """The stages whose answer for a flow depends on that flow alone (given the ICMP errors
    and the capture's end): classification and block reasons. scale/ runs them per file."""
    flows = classify(flows, site)
    # classify's output columns were made among its freed temporaries, given back here, not
    # kept under block_reasons' (engine_10m ~75-90 MB back; block_reasons' peak ~1,050 -> ~970 MB)
    _hand_back_both()
    return block_reasons(flows, icmp, options, capture_end)


def _tables(flows: pd.DataFrame, dns_failures: list, activity: ActivityCollector | None, site: Site | None,
            icmp: pd.DataFrame, stats: RunStats) -> Result:
    """The stages over all flows at once: timing's per-flow rows and the courier table, the blocked
    table, the sequences, timing. One after the other, each stage's freed memory handed back before
    the next: timing and courier ran in a thread beside the blocked table, and their temporaries
    (~80 MB on engine_10m, kept in the thread's own arena until it ended) came on top of the
    blocked table's (engine_10m _tables peak 1,032-1,064 -> 978-981 MB; _tables 1.21-1.61 s in a
    thread, 1.32-1.65 s in turn: 5 runs each, alternating, within noise on the shared 2 cores)."""
    flow_parts, courier = _timing_and_courier(flows)
    blocked = blocked_table(flows, dns_failures, site)
    _drop_spent(flows)
    # What the blocked table freed, handed back before the sequences come on top
    # (engine_10m _tables peak 1,161-1,165 -> 1,133-1,148 MB, 3 runs).
    hand_back_freed()
    found = (build_sequences(flows, blocked, activity.found, activity.options) if activity is not None
             else schema.to_frame(None, schema.SEQUENCES))
    timing = timing_table(flows, found, flow_parts)
    return Result(flows=_public(flows), stats=stats, icmp_errors=icmp, blocked=blocked, timing=timing,
                  courier=courier, sequences=found)


# Hidden columns only the courier table and the blocked table read (rst_origin, dns_failures,
# unacknowledged_synack): none of the later stages do.
SPENT_BY_TABLES = ("_c_ndata", "_s_rst_ts", "_s_ttl", "_s_rst_ttl", "_handshake", "_c_payload", "dns_query")


def _drop_spent(flows: pd.DataFrame) -> None:
    """Drop SPENT_BY_TABLES from `flows` in place, before the sequences: the frame is the one
    _result (or scale's merge) handed on, so a copy without them would free nothing while the
    caller holds it (engine_10m 32.5 MB: the sequences' peak 979-980 -> 940-968 MB, 6 runs)."""
    for name in SPENT_BY_TABLES:
        if name in flows:
            del flows[name]                  # drop(inplace=True) does the same, deprecated (PDEP-8)


def _timing_and_courier(flows: pd.DataFrame) -> tuple[list[pd.DataFrame], pd.DataFrame]:
    """flow_timing's rows and the courier table, first of _tables' stages. What they freed is
    handed back before the blocked table is made: it would stay on the heap (and in Arrow's pool)
    under the blocked table's peak otherwise."""
    parts, courier = flow_timing(flows), courier_table(flows)
    hand_back_freed()
    _hand_back_arrow_freed()
    return parts, courier


def _hand_back_freed() -> None:
    """Return the heap's free pages to the system before the last stages (heap.py keeps up to
    256 MiB free at the top for the chunks, and holes stay where they are): what reading and the
    per-flow stages freed was kept while _tables' large temporaries (mmapped, above 16 MiB) came
    on top. engine_10m peak ~2.4-2.7 -> ~2.0 GB, engine_2m ~834 -> ~754 MB; the trim ~10 ms, time
    within noise (alternating runs)."""
    hand_back_freed()


def _hand_back_arrow_freed() -> None:
    """Return what Arrow's pool (mimalloc) keeps of what it freed: reading, attach and the
    per-flow stages' Arrow text leave ~60-85 MB there on engine_10m, under _tables' peak
    (RSS entering _tables 970 -> 911 MB)."""
    pa.default_memory_pool().release_unused()


def _hand_back_both() -> None:
    """_hand_back_freed, and Arrow's pool's free pages too (mimalloc keeps what assemble's and
    attach's Arrow work freed, which the numpy columns after, served by glibc, cannot use):
    engine_10m ~57 MB after assemble, ~66 MB after attach."""
    _hand_back_freed()
    _hand_back_arrow_freed()


def _public(flows: pd.DataFrame) -> pd.DataFrame:
    """Exactly the schema's columns, in order (stages pass a few working columns along)."""
    return flows[schema.names(schema.FLOWS)].reset_index(drop=True)


def _nothing_read(stats: RunStats) -> CaptureError:
    first = stats.problems[0]
    err = CaptureError(first.path, "")
    err.args = (first.message,)
    return err


def _fast_flows(paths: Sequence[Path], session: Session, progress: Progress | None,
                after_chunk: Callable[[], None] | None = None) -> None:
    """after_chunk: called once each chunk is in (old_objects_aside's)."""
    done = 0
    for path in paths:
        try:
            for raw in iter_batches(path, session.stats, session.chunk_bytes,
                                    session.options.max_gzip_ratio):
                session.add(raw)
                if progress is not None:
                    progress(done + int(raw.offset[-1]) if len(raw) else done)
                # Let the chunk go before the next is read: its mapped window (64 MiB, resident)
                # would stay beside the next one while the reader walks it (engine_2m's peak).
                del raw
                if after_chunk is not None:
                    after_chunk()
        except CaptureError as exc:
            session.stats.problems.append(_problem_of(exc))
        done += _size(path)


def _problem_of(exc: CaptureError):
    from .stats import FileProblem
    return FileProblem(exc.path, str(exc), 0)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _icmp_frame(parts: list[IcmpErrors]) -> pd.DataFrame:
    from .flows.finalize import addresses_to_text
    names = ("ts", "v6", "icmp_type", "icmp_code", "sport", "dport", "proto")
    if not parts:
        return pd.DataFrame({name: [] for name in names + ("reporter", "src", "dst")})
    cols = {name: np.concatenate([getattr(p, name) for p in parts]) for name in names}
    frame = pd.DataFrame(cols)
    for who in ("reporter", "src", "dst"):
        hi = np.concatenate([getattr(p, f"{who}_hi") for p in parts])
        lo = np.concatenate([getattr(p, f"{who}_lo") for p in parts])
        frame[who] = addresses_to_text(hi, lo)
    return frame
