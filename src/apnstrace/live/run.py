"""The live loop: capture -> batches -> Session; the report rolled every N seconds; a clean
stop on the duration, Ctrl-C or SIGTERM (capture stopped, the last packets fed, the report
finished)."""
from __future__ import annotations

import re
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..options import FlowOptions, SequenceOptions
from ..pipeline import Result, Session
from ..site import Site
from .backends import BACKENDS, CaptureCounts
from .batch import Batcher, to_raw_batch
from .memory import release_unused
from .preflight import DEFAULT_BPF, LiveSetupError, preflight
from .rolling import Every, PcapRotator
from .view import PlainView, distill

TICK_S = 0.05              # how often the loop looks for packets and timers
VIEW_EVERY_S = 2.0         # screen refresh on a terminal (the report rolls on its own period)


@dataclass(frozen=True)
class LiveConfig:
    iface: str
    output: Path
    bpf: str = DEFAULT_BPF
    duration_s: float | None = None         # None: until Ctrl-C / SIGTERM
    rotate_s: float = 60.0                  # report update period, and pcap file length
    keep_s: float | None = 3600.0           # flows finished longer ago leave the report and memory (None: keep all)
    dataset: Path | None = None             # ... and are appended here first (scale/dataset.py)
    write_pcap: Path | None = None
    backend: str = "scapy"
    site: Site | None = None
    options: FlowOptions = field(default_factory=FlowOptions)
    sequence_options: SequenceOptions = field(default_factory=SequenceOptions)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise LiveSetupError(f"unknown backend {self.backend!r}: choose one of {', '.join(BACKENDS)}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise LiveSetupError("--duration must be positive")
        if not self.rotate_s > 0:
            raise LiveSetupError("--rotate-seconds must be positive")
        if self.keep_s is not None and not self.keep_s > 0:
            raise LiveSetupError("--keep-minutes must be positive (0 on the command line: keep every flow)")


@dataclass
class LiveOutcome:
    result: Result
    counts: CaptureCounts
    reports: int                       # times the report folder was written
    pcaps: list[Path]
    stopped_by: str                    # "duration", "SIGINT", "SIGTERM"
    error: str | None = None           # the capture failed part-way (what was read is reported)


class _StopOnSignals:
    """SIGINT/SIGTERM set an event instead of raising, so the loop can finish the report."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.by = "duration"
        self._old = {}

    def __enter__(self) -> _StopOnSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._stop)
        return self

    def _stop(self, signum, frame) -> None:
        self.by = signal.Signals(signum).name
        self.event.set()

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


class _Window:
    """--keep-minutes: the report shows the last N minutes; older finished flows go to the
    --dataset (when given) and leave memory with their metadata and activity. Without this a
    day on a busy span port would hold every flow, and each report rewrite would redo them all."""

    def __init__(self, config: LiveConfig, started_wall: float) -> None:
        self.keep_s, self.dataset = config.keep_s, config.dataset
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(started_wall))
        self.run = "live-" + re.sub(r"[^A-Za-z0-9._-]", "_", config.iface)[:40] + "-" + stamp
        self.retired = self.batches = 0
        self.cutoff: float | None = None

    def retire(self, session: Session) -> None:
        if self.keep_s is None or not np.isfinite(session.table.now):
            return
        self.cutoff = session.table.now - self.keep_s
        old = session.retire_before(self.cutoff)
        if len(old):
            self.retired += len(old)
            self._append(old, f"{self.run}-{self.batches}")
            self.batches += 1

    def close(self, result: Result) -> None:
        """The dataset gets the final window too, so it holds every flow of the run."""
        if len(result.flows):
            self._append(result.flows, f"{self.run}-final")

    def _append(self, flows, run: str) -> None:
        if self.dataset is not None:
            from ..scale.dataset import write_flows
            write_flows(flows, self.dataset, run=run)

    def describe(self) -> dict:
        return {"keep_s": self.keep_s, "flows_retired": self.retired, "window_start": self.cutoff,
                "dataset": str(self.dataset) if self.dataset is not None else None,
                "dataset_run": self.run if self.dataset is not None else None}


def run_live(config: LiveConfig, view=None, clock=time.monotonic) -> LiveOutcome:
    """Capture until the duration ends or a signal comes; return the final result (already
    written to config.output). Raises LiveSetupError when the capture cannot start."""
    from ..report.folder import write_report
    view = view or PlainView()
    linktype = preflight(config.iface, config.bpf)
    config.output.mkdir(parents=True, exist_ok=True)        # an unwritable -o fails before capturing
    backend = BACKENDS[config.backend](config.iface, config.bpf, linktype)
    session = Session(config.options, config.site, config.sequence_options)
    source = f"live:{config.iface}"
    session.stats.files.append(source)
    pcaps = PcapRotator(config.write_pcap, config.rotate_s, linktype) if config.write_pcap else None
    batcher = Batcher()
    started_wall = time.time()
    reports = 0
    window = _Window(config, started_wall)

    def feed() -> None:
        packets = batcher.take()
        if packets:
            session.add(to_raw_batch(packets, linktype, batcher.records - len(packets) + 1, source))
            if pcaps is not None:
                pcaps.write(packets)

    def describe(counts: CaptureCounts, stopped: str | None) -> None:
        session.stats.live = {"interface": config.iface, "backend": config.backend, "bpf": config.bpf,
                              "started": started_wall, "stopped": time.time() if stopped else None,
                              "stopped_by": stopped, **counts.as_dict(), **window.describe()}

    def publish(result: Result, counts: CaptureCounts, write: bool) -> None:
        nonlocal reports
        shown = None
        if write:
            write_report(result, config.output)
            reports += 1
            shown = str(config.output / "report.html")
            if pcaps is not None:
                pcaps.flush()
        view.update(distill(result, counts, config.options.tcp_timeout), shown)

    with _StopOnSignals() as stop:
        backend.start()
        view.started(config.iface, config.backend, config.bpf)
        start = clock()
        roll = Every(config.rotate_s, start)
        screen = Every(VIEW_EVERY_S, start)
        error = None
        try:
            while not stop.event.is_set():
                now = clock()
                if config.duration_s is not None and now - start >= config.duration_s:
                    break
                batcher.extend(backend.take(), now)
                if batcher.due(now):
                    feed()
                if backend.error:
                    error = backend.error
                    break
                write = roll.due(now)
                if write or (view.wants_frequent_updates and screen.due(now)):
                    feed()
                    if write:
                        window.retire(session)
                    counts = backend.counts()
                    describe(counts, None)
                    publish(session.snapshot(), counts, write)
                    if write:               # the rewrite's result is garbage now: its pages back to
                        release_unused()    # the OS, so RSS follows what the session holds (live/memory.py)
                stop.event.wait(TICK_S)
        finally:
            backend.stop()                      # the kernel's last packets come out in take()
        batcher.extend(backend.take(), clock())
        feed()
        counts = backend.counts()
        describe(counts, "error" if error else stop.by)
        if pcaps is not None:
            pcaps.close()
        result = session.finish()
        window.close(result)
        describe(counts, "error" if error else stop.by)     # with the final dataset figures
        publish(result, counts, True)
    return LiveOutcome(result, counts, reports, pcaps.written if pcaps else [], stop.by, error)
