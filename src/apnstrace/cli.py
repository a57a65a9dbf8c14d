"""Command line: a thin layer over apnstrace.analyze(). The only module that imports click."""
from __future__ import annotations

import gc
import shutil
import signal
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import pandas as pd

from . import __version__
from .errors import ApnstraceError
from .options import FlowOptions, SequenceOptions
from .classify import Category
from .pipeline import ENGINES, Result
from .pipeline import analyze as run_analysis
from .site import Site
from .report import export
from .report.verdicts import blocked_apns_or_mdm
from .report.terminal import (BLOCKED_COLUMNS, COURIER_COLUMNS, OUTCOME_STYLE, REQUIREMENT_COLUMNS, SEQUENCE_COLUMNS,
                              STATUS_STYLE, TIMING_COLUMNS, print_analysis, print_flows_table, print_run_summary,
                              print_table)


class InputFailure(click.ClickException):
    """A user's mistake or unreadable input: one line, exit code 2, never a traceback."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"apnstrace: error: {self.format_message()}", err=True)


@contextmanager
def user_errors() -> Iterator[None]:
    try:
        yield
    except ApnstraceError as exc:
        raise InputFailure(str(exc)) from None
    except ValueError as exc:        # option values checked by FlowOptions
        raise InputFailure(str(exc)) from None
    except BrokenPipeError:          # `apnstrace flows x | head`: main() handles it
        raise
    except OSError as exc:           # -o in a folder that does not exist, no permission, disk full
        where = f"{exc.filename}: " if exc.filename else ""
        raise InputFailure(f"cannot write the output: {where}{exc.strerror or exc}") from None


def _site(site_file: str | None, mdm_hosts: tuple[str, ...]) -> Site | None:
    site = Site.from_toml(Path(site_file)) if site_file else None
    if mdm_hosts:
        extra = Site.from_mdm_hosts(list(mdm_hosts))
        site = extra if site is None else site.merged(extra)
    return site


def _run(captures: tuple[str, ...], engine: str, tcp_timeout: float, udp_timeout: float,
         site_file: str | None = None, mdm_hosts: tuple[str, ...] = (), sequences: bool = True,
         **sequence_options: float) -> Result:
    with user_errors():
        limits = {name: value for name, value in click.get_current_context().meta.items() if name in LIMITS}
        options = FlowOptions(tcp_timeout=tcp_timeout, udp_timeout=udp_timeout, **limits)
        matching = SequenceOptions(**sequence_options)
        site = _site(site_file, mdm_hosts)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")     # problems are printed once, by _finish
            scale = {name: click.get_current_context().meta.get(name) for name in ("workers", "dask", "spill_dir")}
            result = _with_progress(captures, engine, options, site, matching, sequences, **scale)
        meta = click.get_current_context().meta
        if meta.get("anonymize") or meta.get("anonymize_key"):
            result = result.anonymized(key=meta.get("anonymize_key"), site=site)
        return result


def _with_progress(captures: tuple[str, ...], engine: str, options: FlowOptions, site: Site | None,
                   matching: SequenceOptions, sequences: bool, **scale) -> Result:
    paths = [Path(c) for c in captures]
    scale = {k: v for k, v in scale.items() if v is not None}
    if not sys.stderr.isatty():
        return run_analysis(paths, site=site, engine=engine, options=options, sequence_options=matching,
                            sequences=sequences, **scale)
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
    total = sum(p.stat().st_size for p in paths if p.is_file())
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task("reading captures", total=total or None)
        return run_analysis(paths, site=site, engine=engine, options=options, sequence_options=matching,
                            sequences=sequences, progress=lambda done: bar.update(task, completed=done), **scale)


def _finish(result: Result) -> None:
    """Files read only in part: say so, one line each, and exit 2 (the output above stands)."""
    if result.problems:
        for line in result.problems:
            click.echo(f"apnstrace: error: {line}", err=True)
        sys.exit(2)


LIMITS = ("max_open_flows", "max_reassembly_bytes", "max_gzip_ratio")


def _to_meta(ctx: click.Context, param: click.Parameter, value):
    """Options every command shares but none reads itself: _run takes them from the context."""
    ctx.meta[param.name] = value
    return value


def limit_options(fn):
    defaults = FlowOptions()
    fn = click.option("--max-gzip-ratio", type=click.FloatRange(min=1), default=defaults.max_gzip_ratio,
                      show_default=True, expose_value=False, callback=_to_meta,
                      help="Refuse gzip captures expanding more than this many times (compression bombs).")(fn)
    fn = click.option("--max-reassembly-bytes", type=click.IntRange(min=4096), default=defaults.max_reassembly_bytes,
                      show_default=True, expose_value=False, callback=_to_meta,
                      help="Payload bytes held per flow direction to read TLS and HTTP messages.")(fn)
    fn = click.option("--max-open-flows", type=click.IntRange(min=1), default=defaults.max_open_flows,
                      show_default=True, expose_value=False, callback=_to_meta,
                      help="Open flows kept in memory; past it the longest-idle ones are finished (counted).")(fn)
    return fn


def anonymize_options(fn):
    fn = click.option("--anonymize-key", metavar="KEY", envvar="APNSTRACE_ANONYMIZE_KEY", expose_value=False,
                      callback=_to_meta, help="Key for --anonymize (implies it): the same key gives the same "
                      "pseudonyms in every run. Also read from APNSTRACE_ANONYMIZE_KEY.")(fn)
    fn = click.option("--anonymize", is_flag=True, expose_value=False, callback=_to_meta,
                      help="Replace internal addresses, MAC-derived IPv6 addresses and device names by keyed "
                      "pseudonyms in every output (Apple and public addresses kept), to share a report.")(fn)
    return fn


def scale_options(fn):
    """docs/scale.md: files in parallel processes or on a Dask cluster; the result is the same."""
    fn = click.option("--spill-dir", type=click.Path(file_okay=False), default=None, expose_value=False,
                      callback=_to_meta, help="Where workers leave packet columns for the merge "
                      "(default: a temporary folder; with --dask ADDRESS: storage all workers share).")(fn)
    fn = click.option("--dask", metavar="ADDRESS", default=None, expose_value=False, callback=_to_meta,
                      help="Run the per-file work on a Dask scheduler (tcp://host:8786), or 'local'.")(fn)
    fn = click.option("--workers", type=click.IntRange(min=0), default=0, expose_value=False, callback=_to_meta,
                      help="Processes reading files in parallel (default 0: one per core for 4 GiB of "
                      "captures or more, else one; 1: one process). A single file is read by one process.")(fn)
    return fn


def common_options(fn):
    fn = scale_options(fn)
    fn = anonymize_options(fn)
    fn = limit_options(fn)
    fn = click.option("--site", "site_file", type=click.Path(dir_okay=False),
                      help="Site profile (TOML): MDM hosts, distribution points, SUS hosts, internal subnets.")(fn)
    fn = click.option("--mdm-host", "mdm_hosts", multiple=True, metavar="HOST[:PORT]",
                      help="Your MDM server (repeatable); a shortcut for a site profile's mdm_hosts.")(fn)
    fn = click.option("--engine", type=click.Choice(ENGINES), default="fast", show_default=True,
                      help="fast: the vectorized engine; scapy: the slow reference engine.")(fn)
    fn = click.option("--tcp-timeout", type=float, default=FlowOptions().tcp_timeout, show_default=True,
                      help="Seconds of silence that end a TCP flow (FIN/RST end it too).")(fn)
    fn = click.option("--udp-timeout", type=float, default=FlowOptions().udp_timeout, show_default=True,
                      help="Seconds of silence that end a UDP flow.")(fn)
    return fn


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="apnstrace")
def cli() -> None:
    """Find Apple device-management traffic (APNs, MDM, software update, package
    downloads) in packet captures and show where it stopped."""


@cli.command()
@click.argument("captures", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "jsonl", "parquet"]), default="table",
              show_default=True, help="Output format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write to this file instead of standard output (required for parquet).")
@click.option("--limit", type=int, default=200, show_default=True,
              help="Rows shown by the table format (0: all). Other formats write every row.")
@click.option("--category", "categories", multiple=True, type=click.Choice([c.value for c in Category]),
              help="Only flows of this category (repeatable).")
@common_options
def flows(captures, fmt, output, limit, categories, engine, tcp_timeout, udp_timeout, site_file, mdm_hosts) -> None:
    """The classified flow table of one or more captures (rotated files are read as one capture)."""
    _check_parquet(fmt, output)
    result = _run(captures, engine, tcp_timeout, udp_timeout, site_file, mdm_hosts, sequences=False)
    frame = result.flows
    if categories:
        frame = frame[frame["category"].isin(categories)].reset_index(drop=True)
    with user_errors():
        _write(frame, fmt, output, limit, result)
    _finish(result)


FORMATS = click.Choice(["table", "csv", "jsonl", "parquet"])


def output_options(fn):
    fn = click.option("--format", "fmt", type=FORMATS, default="table", show_default=True, help="Output format.")(fn)
    fn = click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
                      help="Write to this file instead of standard output (required for parquet).")(fn)
    fn = click.option("--limit", type=int, default=200, show_default=True,
                      help="Rows shown by the table format (0: all). Other formats write every row.")(fn)
    return fn


def sequence_options(fn):
    defaults = SequenceOptions()
    fn = click.option("--window", "window_s", type=float, default=defaults.window_s, show_default=True,
                      help="Seconds after a push in which a check-in answers it (and after a check-in, its follow-ups).")(fn)
    fn = click.option("--keepalive-window", "keepalive_window_s", type=float, default=defaults.keepalive_window_s,
                      show_default=True,
                      help="Server data this many seconds after the device's own is an answer (keepalive), not a push.")(fn)
    return fn


@cli.command()
@click.argument("captures", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--output", "folder", type=click.Path(file_okay=False, writable=True),
              help="Report folder (default: <capture name>-apnstrace beside where you run it).")
@click.option("--fail-on-blocked", is_flag=True,
              help="Exit 1 when APNs or MDM traffic was blocked (for scripted health checks).")
@click.option("--limit", type=int, default=10, show_default=True, help="Rows of each table printed (0: all).")
@click.option("--dataset", type=click.Path(file_okay=False), default=None,
              help="Also append the flows to this Parquet dataset, partitioned by date (docs/scale.md); "
                   "with --dask: <report folder>/flows-dataset unless given.")
@click.option("--run", "run_label", default=None, metavar="LABEL",
              help="Label of this result in the dataset (default: a random one).")
@sequence_options
@common_options
def analyze(captures, folder, fail_on_blocked, limit, dataset, run_label, window_s, keepalive_window_s, engine,
            tcp_timeout, udp_timeout, site_file, mdm_hosts) -> None:
    """The main job: verdicts, blocked traffic, push -> check-in sequences, timing and charts,
    written as a report folder (report.html, CSV/Parquet tables, summary.json, charts/)."""
    if engine != "fast":
        raise InputFailure("analyze needs the fast engine: the scapy reference engine keeps no packet timing")
    out = Path(folder) if folder else Path(_default_folder(captures[0]))
    result = _run(captures, engine, tcp_timeout, udp_timeout, site_file, mdm_hosts,
                  window_s=window_s, keepalive_window_s=keepalive_window_s)
    with user_errors():
        from .report.folder import write_report
        written = write_report(result, out)
        print_analysis(result, limit)
        click.echo(f"Report: {written['report.html']}  ({len(written)} files in {out})")
        if dataset is None and click.get_current_context().meta.get("dask"):
            dataset = str(out / "flows-dataset")
        if dataset is not None:
            from .scale.dataset import write_flows
            label = write_flows(result.flows, dataset, run=run_label)
            click.echo(f"Flows dataset: {dataset} (run {label})")
    _finish(result)
    if fail_on_blocked and blocked_apns_or_mdm(result):
        sys.exit(1)


def _default_folder(capture: str) -> str:
    name = Path(capture).name
    for suffix in (".gz", ".pcapng", ".pcap", ".cap"):
        name = name.removesuffix(suffix)
    return f"{name}-apnstrace"


@cli.command()
@click.argument("captures", nargs=-1, required=True, type=click.Path(dir_okay=False))
@output_options
@sequence_options
@common_options
def sequences(captures, fmt, output, limit, window_s, keepalive_window_s, engine, tcp_timeout, udp_timeout,
              site_file, mdm_hosts) -> None:
    """Push -> check-in -> follow-up sequences: for every push a device received, whether and
    when it checked in with its MDM server, and what it fetched after (docs/sequences.md)."""
    _check_parquet(fmt, output)
    if engine != "fast":
        raise InputFailure("sequences need the fast engine: the scapy reference engine keeps no packet timing")
    result = _run(captures, engine, tcp_timeout, udp_timeout, site_file, mdm_hosts,
                  window_s=window_s, keepalive_window_s=keepalive_window_s)
    frame = result.sequences
    with user_errors():
        if fmt == "table" and not output:
            if frame.empty:
                click.echo("No pushes or MDM check-ins found (no APNs courier traffic with a push in the capture).")
            else:
                counts = frame["outcome"].value_counts()
                title = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items())
                print_table(frame, SEQUENCE_COLUMNS, title, limit, style_by="outcome", styles=OUTCOME_STYLE)
            print_run_summary(result)
        else:
            _write(frame, fmt, output, limit, result)
    _finish(result)


@cli.command()
@click.argument("captures", nargs=-1, required=True, type=click.Path(dir_okay=False))
@output_options
@click.option("--fail-on-blocked", is_flag=True,
              help="Exit 1 when APNs or MDM traffic was blocked (for scripted health checks).")
@common_options
def blocked(captures, fmt, output, limit, fail_on_blocked, engine, tcp_timeout, udp_timeout, site_file, mdm_hosts) -> None:
    """Blocked and failed flows, and failed lookups of Apple and site names, worst first,
    each with its evidence and one sentence."""
    _check_parquet(fmt, output)
    result = _run(captures, engine, tcp_timeout, udp_timeout, site_file, mdm_hosts, sequences=False)
    frame = result.blocked
    with user_errors():
        if fmt == "table" and not output:
            if frame.empty:
                click.echo("Nothing blocked: every flow whose start was captured got through.")
            else:
                print_table(frame, BLOCKED_COLUMNS, f"{len(frame)} blocked", limit)
            flapping = result.courier[result.courier["flapping"].fillna(False).to_numpy(bool)]
            if len(flapping):
                print_table(flapping, COURIER_COLUMNS, "flapping APNs courier connections", style_by=None)
            print_run_summary(result)
        else:
            _write(frame, fmt, output, limit, result)
    _finish(result)
    if fail_on_blocked and blocked_apns_or_mdm(result):
        sys.exit(1)


@cli.command()
@click.argument("captures", nargs=-1, required=True, type=click.Path(dir_okay=False))
@output_options
@common_options
def timing(captures, fmt, output, limit, engine, tcp_timeout, udp_timeout, site_file, mdm_hosts) -> None:
    """How long each step took: rtt, TLS handshake, time to first byte and courier lifetimes
    (count, p50, p95, max) per category and per device; courier steadiness per device."""
    _check_parquet(fmt, output)
    result = _run(captures, engine, tcp_timeout, udp_timeout, site_file, mdm_hosts)
    with user_errors():
        if fmt == "table" and not output:
            print_table(result.timing, TIMING_COLUMNS, "timing (ms; courier lifetimes in s)", limit)
            if len(result.courier):
                print_table(result.courier, COURIER_COLUMNS, "APNs courier connections per device", limit)
            print_run_summary(result)
        else:
            _write(result.timing, fmt, output, limit, result)
    _finish(result)


@cli.command()
@click.argument("captures", nargs=-1, type=click.Path(dir_okay=False))
@output_options
@common_options
def requirements(captures, fmt, output, limit, engine, tcp_timeout, udp_timeout, site_file, mdm_hosts) -> None:
    """Apple's required hosts and ports for device management, as a checklist; with captures,
    each row marked reachable (with evidence), blocked (with the reason) or not seen."""
    from .requirements import check_requirements, checklist
    _check_parquet(fmt, output)
    result = _run(captures, engine, tcp_timeout, udp_timeout, site_file, mdm_hosts, sequences=False) if captures else None
    with user_errors():
        frame = checklist() if result is None else check_requirements(result.flows, result.blocked)
        if fmt == "table" and not output:
            if result is None:
                columns = tuple(c for c in REQUIREMENT_COLUMNS if c[0] in frame) + (("purpose", "purpose"),)
                print_table(frame, columns, f"{len(frame)} required host/port pairs", limit=0)
            else:
                frame = frame.sort_values("status", key=lambda s: s.map({"blocked": 0, "reachable": 1, "not_seen": 2}),
                                          kind="stable")
                counts = frame["status"].value_counts()
                title = ", ".join(f"{counts.get(k, 0)} {k.replace('_', ' ')}" for k in ("blocked", "reachable", "not_seen"))
                print_table(frame, REQUIREMENT_COLUMNS, title, limit=0, style_by="status", styles=STATUS_STYLE)
                print_run_summary(result)
        else:
            _write(frame, fmt, output, limit, result)
    if result is not None:
        _finish(result)


@cli.command()
@click.option("-i", "--interface", "iface", required=True, help="Interface to capture on (a span/mirror port).")
@click.option("--bpf", default=None, metavar="FILTER",
              help="Capture filter (libpcap syntax). Default: TCP, UDP and ICMP errors, tagged or not (docs/live.md).")
@click.option("--duration", type=float, default=None, metavar="S", help="Stop after S seconds (default: Ctrl-C or SIGTERM).")
@click.option("--rotate-seconds", type=float, default=60.0, show_default=True, metavar="N",
              help="Bring the report up to date every N seconds; --write-pcap starts a new file as often.")
@click.option("--write-pcap", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Keep what was captured as rotated pcap files in DIR.")
@click.option("-o", "--output", "folder", type=click.Path(file_okay=False), default=None,
              help="Report folder, rewritten every --rotate-seconds (default: live-<interface>-apnstrace).")
@click.option("--backend", type=click.Choice(["scapy", "dumpcap", "tshark"]), default="scapy", show_default=True,
              help="scapy: a packet socket in this process; dumpcap: Wireshark's capture engine, its pcap "
                   "stream read here (the fastest); tshark: dumpcap + tshark through pyshark.")
@click.option("--quiet", is_flag=True, help="Plain progress lines even on a terminal (always so when piped).")
@click.option("--keep-minutes", type=float, default=60.0, show_default=True, metavar="M",
              help="The report covers flows of the last M minutes (and every open one); older finished flows "
                   "leave memory, appended to --dataset first when given. 0: keep every flow.")
@click.option("--dataset", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Append flows to this Parquet dataset as they leave the window, and the rest at the end "
                   "(docs/scale.md): the whole run, queryable by date.")
@click.option("--site", "site_file", type=click.Path(dir_okay=False),
              help="Site profile (TOML): MDM hosts, distribution points, SUS hosts, internal subnets.")
@click.option("--mdm-host", "mdm_hosts", multiple=True, metavar="HOST[:PORT]",
              help="Your MDM server (repeatable); a shortcut for a site profile's mdm_hosts.")
@click.option("--tcp-timeout", type=float, default=FlowOptions().tcp_timeout, show_default=True,
              help="Seconds of silence that end a TCP flow (FIN/RST end it too).")
@click.option("--udp-timeout", type=float, default=FlowOptions().udp_timeout, show_default=True,
              help="Seconds of silence that end a UDP flow.")
@sequence_options
def live(iface, bpf, duration, rotate_seconds, write_pcap, folder, backend, quiet, keep_minutes, dataset, site_file,
         mdm_hosts, tcp_timeout, udp_timeout, window_s, keepalive_window_s) -> None:
    """Capture on an interface and watch pushes, check-ins and blocked attempts as they happen;
    the report folder (as `analyze -o`) is brought up to date every --rotate-seconds and at the end."""
    from .live import DEFAULT_BPF, LiveConfig, run_live
    from .live.view import make_view
    with user_errors():
        config = LiveConfig(iface=iface, output=Path(folder or f"live-{iface}-apnstrace"), bpf=bpf or DEFAULT_BPF,
                            duration_s=duration, rotate_s=rotate_seconds,
                            keep_s=keep_minutes * 60.0 if keep_minutes else None,
                            dataset=Path(dataset) if dataset else None,
                            write_pcap=Path(write_pcap) if write_pcap else None, backend=backend,
                            site=_site(site_file, mdm_hosts),
                            options=FlowOptions(tcp_timeout=tcp_timeout, udp_timeout=udp_timeout),
                            sequence_options=SequenceOptions(window_s=window_s, keepalive_window_s=keepalive_window_s))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with make_view(quiet or None) as view:
                outcome = run_live(config, view)
        counts = outcome.counts
        dropped = "unknown" if counts.dropped is None else counts.dropped
        click.echo(f"Stopped ({outcome.stopped_by}): {counts.received} packets captured, {dropped} dropped "
                   f"({counts.counted_by}); report: {config.output / 'report.html'}")
        if counts.dropped and backend == "scapy" and shutil.which("dumpcap"):
            click.echo("Packets were dropped: --backend dumpcap takes about three times the rate without loss "
                       "(docs/live.md)")
        for path in outcome.pcaps:
            click.echo(f"Capture file: {path}")
    if outcome.error:
        raise InputFailure(outcome.error)


def _check_parquet(fmt: str, output: str | None) -> None:
    if fmt == "parquet" and not output:
        raise InputFailure("--format parquet writes a file: give it with -o FILE")


def _write(frame: pd.DataFrame, fmt: str, output: str | None, limit: int, result: Result | None) -> None:
    if fmt == "parquet":
        export.write_parquet(frame, Path(output))
        return
    if fmt == "table" and not output:
        print_flows_table(frame, limit)
        print_run_summary(result)
        return
    handle = open(output, "w", newline="", encoding="utf-8") if output else sys.stdout
    try:
        if fmt == "csv":
            export.write_csv(frame, handle)
        elif fmt == "jsonl":
            export.write_jsonl(frame, handle)
        else:
            handle.write(frame.to_string(index=False) + "\n")
    finally:
        if output:
            handle.close()


def main() -> None:
    # `apnstrace flows x | head`: end quietly when the reader goes away, as other tools do.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    # What is imported by now lives as long as the process: full collections during the run
    # need not walk it again (engine_2m: their time 72-76 -> 12 ms).
    gc.freeze()
    cli(prog_name="apnstrace")
