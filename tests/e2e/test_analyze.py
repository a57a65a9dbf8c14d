"""`apnstrace analyze` as a user runs it: the report folder, summary.json, the terminal summary
with the verdicts first, exit codes; and the library's Result API behind it."""
from __future__ import annotations

import json
import os

import pandas as pd
import pytest
from conftest import SAMPLES

import apnstrace
from apnstrace import schema
from apnstrace.cli import cli

SITE_CAPTURE = str(SAMPLES / "sequences_site.pcap")
EXPECTED = {"report.html", "flows.parquet", "flows.csv", "sequences.csv", "blocked.csv", "timing.csv", "summary.json"}
CHARTS = {"timeline.png", "latency.png", "blocked.png", "traffic.png", "courier.png"}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from click.testing import CliRunner
    out = tmp_path_factory.mktemp("report") / "site"
    result = CliRunner().invoke(cli, ["analyze", SITE_CAPTURE, "--mdm-host", "mdm.example.com:8443", "-o", str(out)])
    return result, out


def test_the_folder_has_every_file(report) -> None:
    result, out = report
    assert result.exit_code == 0, result.output
    assert EXPECTED <= {p.name for p in out.iterdir()}
    assert {p.name for p in (out / "charts").iterdir()} == CHARTS
    for png in (out / "charts").iterdir():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in out.rglob("*.part")]                 # no temporary file left behind


def test_tables_follow_the_schemas(report) -> None:
    _, out = report
    assert list(pd.read_parquet(out / "flows.parquet").columns) == schema.names(schema.FLOWS)
    for name, columns in (("sequences", schema.SEQUENCES), ("blocked", schema.BLOCKED), ("timing", schema.TIMING)):
        assert list(pd.read_csv(out / f"{name}.csv").columns) == schema.names(columns), name
    library = apnstrace.analyze([SITE_CAPTURE], site=apnstrace.Site(mdm_hosts=["mdm.example.com:8443"]))
    assert len(pd.read_csv(out / "sequences.csv")) == len(library.sequences)
    assert len(pd.read_csv(out / "blocked.csv")) == len(library.blocked)


def test_summary_json_for_monitoring_scripts(report) -> None:
    _, out = report
    summary = json.loads((out / "summary.json").read_text())
    assert summary["worst"] == "fail" and summary["blocked_apns_or_mdm"] is True
    topics = [v["topic"] for v in summary["verdicts"]]
    assert topics[:2] == ["APNs", "MDM check-ins"]
    assert summary["counts"]["outcomes"] == {"checked_in": 6, "checkin_blocked": 2, "no_checkin": 3,
                                             "unsolicited_checkin": 2}
    assert summary["counts"]["pushes"] == 11
    assert summary["push_checkin_latency_s"]["count"] == 6


def test_terminal_summary_starts_with_the_verdicts(report) -> None:
    result, out = report
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[0].startswith("OK") and "APNs: OK - 10 devices connected on 5223" in lines[0]
    assert "MDM check-ins: 6/11 pushes answered" in lines[1]
    assert f"Report: {out / 'report.html'}" in result.output


@pytest.mark.parametrize("capture, code", [("blocked_syn.pcap", 1), ("courier_push.pcap", 0)])
def test_fail_on_blocked(runner, tmp_path, capture: str, code: int) -> None:
    result = runner.invoke(cli, ["analyze", str(SAMPLES / capture), "-o", str(tmp_path / "r"), "--fail-on-blocked"])
    assert result.exit_code == code, result.output


def test_default_folder_is_named_after_the_capture(runner, tmp_path) -> None:
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = runner.invoke(cli, ["analyze", str(SAMPLES / "courier_push.pcap.gz")])
    finally:
        os.chdir(here)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "courier_push-apnstrace" / "report.html").is_file()


def test_library_writes_the_same(tmp_path) -> None:
    result = apnstrace.analyze([SITE_CAPTURE], site=apnstrace.Site(mdm_hosts=["mdm.example.com:8443"]))
    html = result.to_html(tmp_path / "r.html")
    assert html.read_text().lstrip().lower().startswith("<!doctype html")
    written = result.to_parquet(tmp_path / "tables")
    assert pd.read_parquet(written["sequences.parquet"]).shape == result.sequences.shape
    assert result.summary["counts"]["pushes"] == 11
    figure = result.plot.latency()
    assert figure.axes and figure.axes[0].get_title()


def test_unreadable_capture_is_one_line(runner, tmp_path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("not a capture")
    result = runner.invoke(cli, ["analyze", str(bad), "-o", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("apnstrace: error:")
    assert "Traceback" not in result.output
