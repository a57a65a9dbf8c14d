"""The command line: output formats, exit codes and the exact one-line messages for bad input."""
from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess

import pandas as pd
import pytest
from conftest import (BAD_INPUTS, C4, ETH_VLAN, REPO, S4, SAMPLES, T0_NS, UDP, VENV_PYTHON, conversation, ether,
                      ip4, pcap, pcapng, udp, write)

import apnstrace
from apnstrace import __version__, schema
from apnstrace.cli import cli
from apnstrace.report import export

NAMES = schema.names(schema.FLOWS)
DTYPES = {c.name: c.dtype for c in schema.FLOWS}


def two_flows(tmp_path):
    """A TCP conversation (handshake, so rtt_ms is set) and a tagged UDP exchange (no rtt: null)."""
    frames = conversation(5, payload=b"x" * 10) + [
        (T0_NS + 10**9, ether(ip4(C4, S4, UDP, udp(5353, 53, b"q")), tags=[(ETH_VLAN, 20)])),
        (T0_NS + 10**9 + 500_000, ether(ip4(S4, C4, UDP, udp(53, 5353, b"a")), tags=[(ETH_VLAN, 20)])),
    ]
    return write(tmp_path / "two.pcap", pcap(frames))


def run_module(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run([str(VENV_PYTHON), "-m", "apnstrace", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120)


# ---------------------------------------------------------------- bad input

def flows_title(count: int) -> str:
    return f"{count} flow{'' if count == 1 else 's'}"


def assert_one_error_line(stderr: str, expected: str) -> None:
    assert stderr.splitlines() == [f"apnstrace: error: {expected}"]
    assert "Traceback" not in stderr


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=lambda b: b.name)
def test_bad_input_on_the_command_line(tmp_path, runner, bad):
    path = bad.write(tmp_path)
    result = runner.invoke(cli, ["flows", str(path)])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert_one_error_line(result.stderr, bad.line(path))
    assert "Traceback" not in result.output
    if bad.records_kept:
        # What could be read is still printed: the table of the readable flows.
        assert re.search(rf"\b{flows_title(bad.flows_kept)}\b", result.stdout)
        assert re.search(rf"\b{bad.records_kept} frames? read\b", result.stdout)
    else:
        assert result.stdout == ""


@pytest.mark.parametrize("bad", [b for b in BAD_INPUTS if b.records_kept], ids=lambda b: b.name)
def test_partial_file_as_jsonl_still_writes_the_readable_flows(tmp_path, runner, bad):
    path = bad.write(tmp_path)
    result = runner.invoke(cli, ["flows", str(path), "--format", "jsonl"])
    assert result.exit_code == 2
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == bad.flows_kept
    assert sum(r["pkts_c2s"] + r["pkts_s2c"] for r in rows) == bad.records_kept
    assert_one_error_line(result.stderr, bad.line(path))


@pytest.mark.parametrize("name", ["not-a-capture", "cut-in-a-record", "gzip-corrupt-in-the-middle"])
def test_bad_input_in_a_real_process(tmp_path, name):
    bad = next(b for b in BAD_INPUTS if b.name == name)
    path = bad.write(tmp_path)
    done = run_module("flows", str(path))
    assert done.returncode == 2
    assert_one_error_line(done.stderr, bad.line(path))
    if bad.records_kept:
        assert re.search(rf"\b{flows_title(bad.flows_kept)}\b", done.stdout)
        assert re.search(rf"\b{bad.records_kept} frames? read\b", done.stdout)
    else:
        assert done.stdout == ""


def test_one_bad_file_among_good_ones_prints_the_good_flows_then_fails(tmp_path, runner):
    junk = write(tmp_path / "junk.pcap", b"hello, world\n")
    good = two_flows(tmp_path)
    result = runner.invoke(cli, ["flows", str(junk), str(good), "--format", "jsonl"])
    assert result.exit_code == 2
    assert len(result.stdout.splitlines()) == 2
    assert_one_error_line(result.stderr, f"{junk}: not a pcap or pcapng capture (starts with bytes 68 65 6c 6c)")


def test_bad_option_value_is_one_line(tmp_path, runner):
    result = runner.invoke(cli, ["flows", str(two_flows(tmp_path)), "--tcp-timeout", "0"])
    assert result.exit_code == 2
    assert_one_error_line(result.stderr, "tcp_timeout must be positive")


def test_unknown_engine_is_a_usage_error(tmp_path, runner):
    result = runner.invoke(cli, ["flows", str(two_flows(tmp_path)), "--engine", "nope"])
    assert result.exit_code == 2
    assert "Invalid value for '--engine': 'nope' is not one of 'fast', 'scapy'" in result.stderr
    assert result.stdout == ""


def test_no_capture_given_is_a_usage_error(runner):
    result = runner.invoke(cli, ["flows"])
    assert result.exit_code == 2
    assert "Missing argument 'CAPTURES...'" in result.stderr


# ---------------------------------------------------------------- formats

def test_jsonl_keys_are_the_schema_in_order(tmp_path, runner):
    result = runner.invoke(cli, ["flows", str(two_flows(tmp_path)), "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    rows = [json.loads(line) for line in lines]
    for row in rows:
        assert list(row) == NAMES
    tcp_row, udp_row = rows
    assert (tcp_row["transport"], tcp_row["client_ip"], tcp_row["client_port"], tcp_row["server_port"]) == \
        ("tcp", C4, 50000, 5223)
    assert (tcp_row["pkts_c2s"], tcp_row["pkts_s2c"], tcp_row["state"]) == (3, 2, "S1")
    assert tcp_row["vlan"] is None and udp_row["vlan"] == 20
    assert tcp_row["rtt_ms"] == pytest.approx(10.0, abs=1e-3) and udp_row["rtt_ms"] is None
    assert udp_row["sni"] is None and udp_row["blocked"] is False and udp_row["block_reason"] is None
    # nulls are JSON null, never NaN / <NA> / "None"
    assert '"vlan": null' in lines[0] and "NaN" not in result.stdout and "<NA>" not in result.stdout
    # ts_start keeps the microseconds of the capture (.123456, a microsecond pcap)
    assert round(tcp_row["ts_start"], 6) == 1_700_000_000.123456
    assert round(udp_row["ts_start"], 6) == 1_700_000_001.123456
    assert re.search(r'"ts_start": 1700000000\.123456\d*,', lines[0])
    assert udp_row["duration"] == pytest.approx(0.0005, abs=1e-6)


def test_jsonl_to_a_file_matches_the_library(tmp_path, runner):
    capture = two_flows(tmp_path)
    out = tmp_path / "flows.jsonl"
    result = runner.invoke(cli, ["flows", str(capture), "--format", "jsonl", "-o", str(out)])
    assert result.exit_code == 0 and result.stdout == ""
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    frame = apnstrace.analyze(capture).flows
    assert [r["bytes_c2s"] for r in rows] == frame["bytes_c2s"].tolist()
    assert [r["flow_id"] for r in rows] == [0, 1]


def test_csv_header_is_the_schema(tmp_path, runner):
    result = runner.invoke(cli, ["flows", str(two_flows(tmp_path)), "--format", "csv"])
    assert result.exit_code == 0
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == NAMES
    assert len(rows) == 3
    tcp_row = dict(zip(NAMES, rows[1]))
    assert (tcp_row["client_ip"], tcp_row["server_port"], tcp_row["vlan"], tcp_row["sni"]) == (C4, "5223", "", "")
    assert float(tcp_row["ts_start"]) == pytest.approx(1_700_000_000.123456, abs=1e-6)


def test_safe_for_csv_neutralizes_formulas():
    frame = pd.DataFrame({
        "sni": pd.array(["=cmd|' /C calc'!A0", "+1+1", "-2", "@SUM(A1)", "\tx", "\rx", "ok.example.com", None,
                         "a=b"], dtype="string"),
        "http_user_agent": pd.Series(["=1", "fine", "-", "@", "", None, "x", "y", "z"], dtype=object),
        "client_port": pd.array([-5, 1, 2, 3, 4, 5, 6, 7, 8], dtype="int32"),
        "rtt_ms": pd.array([-1.5, None, 0, 0, 0, 0, 0, 0, 0], dtype="Float64"),
    })
    safe = export.safe_for_csv(frame)
    assert safe["sni"].tolist()[:7] == ["'=cmd|' /C calc'!A0", "'+1+1", "'-2", "'@SUM(A1)", "'\tx", "'\rx",
                                        "ok.example.com"]
    assert safe["sni"].isna().tolist() == [False] * 7 + [True, False]
    assert safe["sni"].iloc[8] == "a=b"
    assert safe["http_user_agent"].tolist()[:5] == ["'=1", "fine", "'-", "'@", ""]
    assert pd.isna(safe["http_user_agent"].iloc[5])
    assert safe["client_port"].tolist() == [-5, 1, 2, 3, 4, 5, 6, 7, 8]        # numbers stay numbers
    assert safe["rtt_ms"].iloc[0] == -1.5
    for name in ("sni", "client_port", "rtt_ms"):
        assert safe[name].dtype == frame[name].dtype
    assert frame["sni"].iloc[0] == "=cmd|' /C calc'!A0"                       # the input is not changed
    out = io.StringIO()
    export.write_csv(frame, out)
    first = next(csv.DictReader(io.StringIO(out.getvalue())))
    assert first["sni"] == "'=cmd|' /C calc'!A0" and first["client_port"] == "-5"


def test_parquet_needs_an_output_file(tmp_path, runner):
    result = runner.invoke(cli, ["flows", str(two_flows(tmp_path)), "--format", "parquet"])
    assert result.exit_code == 2
    assert_one_error_line(result.stderr, "--format parquet writes a file: give it with -o FILE")
    assert result.stdout == ""


def test_parquet_round_trips_the_schema_dtypes(tmp_path, runner):
    capture = two_flows(tmp_path)
    out = tmp_path / "flows.parquet"
    result = runner.invoke(cli, ["flows", str(capture), "--format", "parquet", "-o", str(out)])
    assert result.exit_code == 0 and result.stdout == ""
    back = pd.read_parquet(out)
    assert list(back.columns) == NAMES
    assert {k: str(v) for k, v in back.dtypes.items()} == DTYPES
    pd.testing.assert_frame_equal(back, apnstrace.analyze(capture).flows)


# ---------------------------------------------------------------- empty capture

@pytest.mark.parametrize("maker", [pcap, pcapng], ids=["pcap", "pcapng"])
def test_empty_capture(tmp_path, runner, maker):
    empty = write(tmp_path / f"empty.{maker.__name__}", maker([]))
    table = runner.invoke(cli, ["flows", str(empty)])
    assert table.exit_code == 0 and table.stderr == ""
    assert "0 flows" in table.stdout and "0 frames read" in table.stdout
    jsonl = runner.invoke(cli, ["flows", str(empty), "--format", "jsonl"])
    assert jsonl.exit_code == 0 and jsonl.stdout == ""
    as_csv = runner.invoke(cli, ["flows", str(empty), "--format", "csv"])
    assert as_csv.exit_code == 0 and as_csv.stdout.splitlines() == [",".join(NAMES)]
    flows = apnstrace.analyze(empty).flows
    assert len(flows) == 0
    assert list(flows.columns) == NAMES
    assert {k: str(v) for k, v in flows.dtypes.items()} == DTYPES


def test_empty_capture_to_parquet(tmp_path, runner):
    empty = write(tmp_path / "empty.pcap", pcap([]))
    out = tmp_path / "empty.parquet"
    assert runner.invoke(cli, ["flows", str(empty), "--format", "parquet", "-o", str(out)]).exit_code == 0
    back = pd.read_parquet(out)
    assert len(back) == 0 and {k: str(v) for k, v in back.dtypes.items()} == DTYPES


# ---------------------------------------------------------------- table, version, help

def test_table_shows_the_flows_and_the_summary(tmp_path, runner):
    result = runner.invoke(cli, ["flows", str(two_flows(tmp_path))])
    assert result.exit_code == 0 and result.stderr == ""
    assert "2 flows" in result.stdout
    assert "7 frames read; 7 in flows" in result.stdout
    assert C4 in result.stdout and "5223" in result.stdout


def test_table_limit(tmp_path, runner):
    result = runner.invoke(cli, ["flows", str(two_flows(tmp_path)), "--limit", "1"])
    assert result.exit_code == 0
    assert "... 1 more flow: use --limit 0, or --format csv/jsonl/parquet." in result.stdout


def test_several_captures_and_gzip(tmp_path, runner):
    frames = conversation(6)
    a = write(tmp_path / "a.pcap.gz", pcap(frames[3:]), gz=True)
    b = write(tmp_path / "b.pcapng", pcapng(frames[:3]))
    result = runner.invoke(cli, ["flows", str(a), str(b), "--format", "jsonl"])
    assert result.exit_code == 0
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 1 and rows[0]["pkts_c2s"] + rows[0]["pkts_s2c"] == 6 and rows[0]["state"] == "S1"


def test_version(runner):
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"apnstrace, version {__version__}\n"


def test_python_dash_m_help_works():
    done = run_module("--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: apnstrace [OPTIONS] COMMAND [ARGS]...")
    assert re.search(r"^\s+flows\s", done.stdout, re.M)
    assert done.stderr == ""


def test_python_dash_m_on_a_sample(tmp_path):
    done = run_module("flows", str(SAMPLES / "courier_push.pcap"), "--format", "csv")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert len(rows) == 2 and rows[1]["server_port"] == "5223"


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_output_into_a_missing_folder_is_one_line(tmp_path, runner, fmt):
    out = tmp_path / "no-such-folder" / f"flows.{fmt}"
    result = runner.invoke(cli, ["flows", str(two_flows(tmp_path)), "--format", fmt, "-o", str(out)])
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("apnstrace: error: cannot write the output: ")
    assert str(out.parent) in result.stderr and "Traceback" not in result.output
    assert not out.exists()


def test_the_command_freezes_what_it_imported_before_running(monkeypatch):
    # Full garbage collections during a run would walk every imported object again (engine_2m:
    # 72-76 ms of them); the command line, owning its process, moves them out of the collector's reach.
    import gc

    import apnstrace.cli as cli_module
    calls = []
    monkeypatch.setattr(cli_module.signal, "signal", lambda *args: None)     # not pytest's own SIGPIPE
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(cli_module, "cli", lambda **kwargs: calls.append("run"))
    cli_module.main()
    assert calls == ["freeze", "run"]
