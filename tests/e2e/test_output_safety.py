"""Output safety (spec section 6): CSV cells a spreadsheet would run are neutralized on every
CSV-writing path, and JSON / JSON lines are valid UTF-8 whatever the strings hold."""
from __future__ import annotations

import csv
import io
import json
import re
import struct
from pathlib import Path

import pandas as pd
import pytest
from conftest import SAMPLES, T0_NS, TCP, UDP, ether, ip4, pcap, tcp, udp

import apnstrace
from apnstrace import cli as cli_module
from apnstrace.cli import cli
from apnstrace.report.export import FORMULA_STARTS

FORMULAS = ["=HYPERLINK(\"http://attacker.example\",\"x\")", "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0",
            "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1"]
FREE_TEXT = {"flows": ["sni", "alpn", "server_name", "http_host", "http_path", "http_user_agent", "cert_issuer"],
             "sequences": ["mdm_server", "followups", "detail"],
             "blocked": ["server_name", "evidence", "sentence"],
             "timing": []}
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


@pytest.fixture(scope="module")
def base() -> apnstrace.Result:
    return apnstrace.analyze(SAMPLES / "sequences_site.pcap")


def _inject(result: apnstrace.Result, values: list[str], columns: dict[str, list[str]] | None) -> apnstrace.Result:
    """A copy whose text cells (all, or the named columns) cycle through `values`."""
    frames = {}
    for name in ("flows", "sequences", "blocked", "timing", "courier"):
        frame = getattr(result, name).copy()
        names = [c for c in frame.columns if pd.api.types.is_string_dtype(frame[c])] if columns is None \
            else columns.get(name, [])
        for col in names:
            frame[col] = pd.Series([values[i % len(values)] for i in range(len(frame))], index=frame.index,
                                   dtype=object)
        frames[name] = frame
    return apnstrace.Result(stats=result.stats, icmp_errors=result.icmp_errors, **frames)


def _check_cells(text: str) -> int:
    """No cell runs as a formula; returns how many cells were neutralized (start with a quote)."""
    quoted = 0
    for row in csv.reader(io.StringIO(text, newline="")):
        for cell in row:
            if cell.startswith(FORMULA_STARTS):
                float(cell)            # only a number may start with - or + (numeric columns)
            quoted += cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS)
    return quoted


@pytest.mark.parametrize("command", ["flows", "sequences", "blocked", "timing"])
def test_every_command_neutralizes_formulas_in_csv(command, base, runner, monkeypatch, tmp_path):
    hostile = _inject(base, FORMULAS, None)
    monkeypatch.setattr(cli_module, "run_analysis", lambda *a, **k: hostile)
    out = tmp_path / f"{command}.csv"
    got = runner.invoke(cli, [command, "x.pcap", "--format", "csv", "-o", str(out)])
    assert got.exit_code == 0, got.output
    frame = getattr(hostile, command)
    assert len(frame)
    text_columns = sum(pd.api.types.is_object_dtype(frame[c]) for c in frame.columns)
    assert _check_cells(out.read_bytes().decode("utf-8")) == len(frame) * text_columns
    # standard output too
    got = runner.invoke(cli, [command, "x.pcap", "--format", "csv"])
    assert got.exit_code == 0 and _check_cells(got.output) == len(frame) * text_columns


def test_report_folder_csvs_neutralize_formulas(base, runner, monkeypatch, tmp_path):
    hostile = _inject(base, FORMULAS, FREE_TEXT)
    monkeypatch.setattr(cli_module, "run_analysis", lambda *a, **k: hostile)
    got = runner.invoke(cli, ["analyze", "x.pcap", "-o", str(tmp_path / "report")])
    assert got.exit_code == 0, got.output
    for name, columns in FREE_TEXT.items():
        text = (tmp_path / "report" / f"{name}.csv").read_bytes().decode("utf-8")
        assert _check_cells(text) == len(getattr(hostile, name)) * len(columns), name


# ---------------------------------------------------------------- real capture strings

def _dns_nxdomain(name: bytes) -> bytes:
    labels = b"".join(bytes([len(part)]) + part for part in name.split(b".")) + b"\x00"
    return struct.pack("!HHHHHH", 7, 0x8183, 1, 0, 0, 0) + labels + struct.pack("!HH", 1, 1)


def _formula_capture(path: Path) -> Path:
    """HTTP with formula-like Host, path and User-Agent, and an NXDOMAIN for a formula-like
    Apple name: the strings reach the flows and blocked tables as the decoders read them."""
    c, s, dns = "10.1.1.2", "17.253.27.205", "10.1.1.1"
    request = (b"GET =1+1 HTTP/1.1\r\nHost: =cmd|' /C calc'!A0.captive.apple.com\r\n"
               b"User-Agent: @SUM(1+1)\r\n\r\n")
    frames = [ether(ip4(c, s, TCP, tcp(50000, 80, "S", seq=0))),
              ether(ip4(s, c, TCP, tcp(80, 50000, "SA", seq=0, ack=1))),
              ether(ip4(c, s, TCP, tcp(50000, 80, "PA", seq=1, ack=1, payload=request))),
              ether(ip4(s, c, TCP, tcp(80, 50000, "PA", seq=1, ack=1 + len(request),
                                       payload=b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))),
              ether(ip4(dns, c, UDP, udp(53, 61000, _dns_nxdomain(b"=1+2.push.apple.com"))))]
    path.write_bytes(pcap([(T0_NS + i * 10**6, f) for i, f in enumerate(frames)]))
    return path


def test_capture_strings_are_neutralized(tmp_path, runner):
    capture = _formula_capture(tmp_path / "formulas.pcap")
    got = runner.invoke(cli, ["flows", str(capture), "--format", "csv", "-o", str(tmp_path / "flows.csv")])
    assert got.exit_code == 0, got.output
    rows = list(csv.DictReader(open(tmp_path / "flows.csv", newline="", encoding="utf-8")))
    http = next(r for r in rows if r["server_port"] == "80")
    assert http["http_path"] == "'=1+1"
    assert http["http_host"] == "'=cmd|' /C calc'!A0.captive.apple.com"
    assert http["http_user_agent"] == "'@SUM(1+1)"
    assert _check_cells((tmp_path / "flows.csv").read_text()) >= 3
    got = runner.invoke(cli, ["blocked", str(capture), "--format", "csv", "-o", str(tmp_path / "blocked.csv")])
    assert got.exit_code == 0, got.output
    text = (tmp_path / "blocked.csv").read_text()
    assert "=1+2.push.apple.com" in text
    _check_cells(text)


# ---------------------------------------------------------------- JSON is valid UTF-8

def test_hostile_capture_jsonl_is_valid_utf8_and_complete(runner, tmp_path):
    out = tmp_path / "flows.jsonl"
    got = runner.invoke(cli, ["flows", str(SAMPLES / "hostile_strings.pcap"), "--format", "jsonl", "-o", str(out)])
    assert got.exit_code == 0, got.output
    raw = out.read_bytes()
    text = raw.decode("utf-8")                        # strict: raises on any invalid byte
    assert not UNSAFE.search(text.replace("\n", ""))
    rows = [json.loads(line) for line in text.splitlines()]
    truth = json.loads((SAMPLES / "hostile_strings.pcap.truth.json").read_text())["names"]
    values = {v for row in rows for v in row.values() if isinstance(v, str)}
    for key in ("sni_script", "sni_attribute", "sni_bidi_control", "http_host", "http_path", "http_user_agent",
                "long_path"):
        assert truth[key]["as_decoded"] in values, key     # whole, not cut (the long path is 2,000 characters)


EVIL = ["bad \ud800 surrogate", "\u202egpj.exe\u2066", "ctl \x00\x07\x1b[2J\x7f\x85 end", "line\u2028sep",
        "x" * 100_000, "<script>alert(1)</script>"]


@pytest.mark.parametrize("command", ["flows", "blocked", "sequences", "timing"])
def test_jsonl_escapes_what_cannot_be_shown(command, base, runner, monkeypatch, tmp_path):
    """Strings a library user can put in a Result: lone surrogates (not encodable), controls,
    bidi overrides, line separators, very long strings. Output is valid UTF-8 without any of
    them raw, and reads back to the same values."""
    hostile = _inject(base, EVIL, None)
    monkeypatch.setattr(cli_module, "run_analysis", lambda *a, **k: hostile)
    out = tmp_path / "rows.jsonl"
    got = runner.invoke(cli, [command, "x.pcap", "--format", "jsonl", "-o", str(out)])
    assert got.exit_code == 0, got.output
    text = out.read_bytes().decode("utf-8")
    assert not UNSAFE.search(text.replace("\n", ""))
    frame = getattr(hostile, command)
    rows = [json.loads(line) for line in text.splitlines()]
    assert len(rows) == len(frame)
    for row, (_, want) in zip(rows, frame.iterrows()):
        for col in frame.columns:
            if isinstance(want[col], str):
                assert row[col] == want[col], col
    csv_out = tmp_path / "rows.csv"
    got = runner.invoke(cli, [command, "x.pcap", "--format", "csv", "-o", str(csv_out)])
    assert got.exit_code == 0, got.output
    assert "\\ud800" in csv_out.read_bytes().decode("utf-8")


def test_report_folder_is_valid_utf8(base, tmp_path):
    """The library's report writer (a library user's strings: the CLI's come from the decoders)."""
    from apnstrace.report.folder import write_report
    write_report(_inject(base, EVIL, FREE_TEXT), tmp_path / "report")
    for name in ("summary.json", "report.html", "flows.csv", "blocked.csv", "sequences.csv"):
        (tmp_path / "report" / name).read_bytes().decode("utf-8")
    summary = (tmp_path / "report" / "summary.json").read_text(encoding="utf-8")
    assert not UNSAFE.search(summary.replace("\n", ""))
    json.loads(summary)


def test_hostile_capture_csvs_hold_every_string_safely(runner, tmp_path):
    """The hostile-strings sample through analyze: every CSV in the folder parses, runs no
    formula, and holds each hostile name whole (as the decoders print it)."""
    got = runner.invoke(cli, ["analyze", str(SAMPLES / "hostile_strings.pcap"), "-o", str(tmp_path / "r")])
    assert got.exit_code == 0, got.output
    truth = json.loads((SAMPLES / "hostile_strings.pcap.truth.json").read_text())["names"]
    cells = set()
    for name in ("flows", "blocked", "sequences", "timing"):
        text = (tmp_path / "r" / f"{name}.csv").read_bytes().decode("utf-8")
        _check_cells(text)
        cells |= {cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row}
    for key in ("sni_script", "sni_attribute", "sni_bidi_control", "http_host", "http_path", "http_user_agent",
                "long_path"):
        assert truth[key]["as_decoded"] in cells, key
    assert any(truth["dns_nxdomain"]["as_decoded"] in cell for cell in cells)     # in the blocked sentence
