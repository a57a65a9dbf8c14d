"""`apnstrace blocked`, `timing` and `requirements` as a user runs them (docs/blocked.md)."""
from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from conftest import SAMPLES

from apnstrace import schema
from apnstrace.cli import cli

BLOCKED = str(SAMPLES / "blocked_reasons.pcap")
HEALTHY = str(SAMPLES / "courier_push.pcap")


def test_blocked_table_says_each_failure(runner) -> None:
    result = runner.invoke(cli, ["blocked", BLOCKED])
    assert result.exit_code == 0, result.output
    assert "15 blocked" in result.output
    for phrase in ("3 SYNs over 3.0 s", "administratively prohibited", "fatal/handshake_failure",
                   "Contoso SSL Inspection CA", "no data came back in 15.0 s", "NXDOMAIN"):
        assert phrase in result.output, phrase


@pytest.mark.parametrize("capture, code", [(BLOCKED, 1), (HEALTHY, 0)])
def test_fail_on_blocked_exit_code(runner, capture: str, code: int) -> None:
    result = runner.invoke(cli, ["blocked", capture, "--fail-on-blocked", "--format", "jsonl"])
    assert result.exit_code == code, result.output


def test_blocked_jsonl_is_the_schema(runner) -> None:
    result = runner.invoke(cli, ["blocked", BLOCKED, "--format", "jsonl"])
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert len(rows) == 15 and all(list(r) == schema.names(schema.BLOCKED) for r in rows)
    assert {r["reason"] for r in rows} >= {"no_response", "reset", "icmp_unreachable", "tls_alert", "tls_intercepted",
                                           "reset_after_handshake", "no_server_data", "dns_nxdomain",
                                           "dns_servfail", "dns_refused", "dns_sinkhole", "dns_no_answer"}


def test_healthy_capture_says_nothing_blocked(runner) -> None:
    result = runner.invoke(cli, ["blocked", HEALTHY])
    assert result.exit_code == 0 and "Nothing blocked" in result.output


def test_timing_csv_and_courier_table(runner) -> None:
    result = runner.invoke(cli, ["timing", str(SAMPLES / "courier_flapping.pcap"), "--format", "csv"])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(io.StringIO(result.output))
    assert list(frame.columns) == schema.names(schema.TIMING)
    assert {"category", "device"} == set(frame["scope"])
    table = runner.invoke(cli, ["timing", str(SAMPLES / "courier_flapping.pcap")])
    assert "flapping" in table.output and "keepalive" in table.output


def test_requirements_without_and_with_captures(runner, tmp_path) -> None:
    plain = runner.invoke(cli, ["requirements", "--format", "csv"])
    assert plain.exit_code == 0, plain.output
    listed = pd.read_csv(io.StringIO(plain.output))
    assert ((listed["host"] == "*-courier.push.apple.com") & (listed["port"] == 5223)).any()
    out = tmp_path / "req.parquet"
    checked = runner.invoke(cli, ["requirements", str(SAMPLES / "blocked_syn.pcap"), "--format", "parquet", "-o", str(out)])
    assert checked.exit_code == 0, checked.output
    frame = pd.read_parquet(out).set_index(["host", "port"])
    assert frame.loc[("*-courier.push.apple.com", 5223), "status"] == "blocked"
    assert frame.loc[("*-courier.push.apple.com", 443), "status"] == "reachable"


def test_parquet_needs_a_file(runner) -> None:
    result = runner.invoke(cli, ["blocked", BLOCKED, "--format", "parquet"])
    assert result.exit_code == 2 and "give it with -o FILE" in result.output
