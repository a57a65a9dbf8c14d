"""live --keep-minutes / --dataset: finished flows older than the window leave the session
(flows, metadata, activity, ICMP errors) after going to the dataset; what leaves plus what
stays is exactly what a file analysis gives."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLES

import apnstrace
from apnstrace.live import run as live_run
from apnstrace.live.backends import CaptureCounts
from apnstrace.live.batch import to_raw_batch
from apnstrace.live.run import LiveConfig, run_live
from apnstrace.live.view import PlainView
from apnstrace.options import FlowOptions
from apnstrace.pipeline import Session
from apnstrace.scale.dataset import read_flows
from apnstrace.site import Site

from test_live import captured_packets

CAPTURE = SAMPLES / "sequences_site.pcap"          # 263 frames over 589 s: flows end all along
SITE = Site.from_mdm_hosts(["mdm.example.com:8443"])
OPTIONS = FlowOptions()
KEY = ["transport", "client_ip", "client_port", "server_ip", "server_port", "ts_start"]


def _same_flows(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Equal flows but for flow_id (numbered per piece) and row order."""
    cols = [c for c in want.columns if c != "flow_id"]
    a = got[cols].sort_values(KEY, kind="stable").reset_index(drop=True)
    b = want[cols].sort_values(KEY, kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


def _fed(keep_s: float) -> tuple[Session, list[pd.DataFrame]]:
    packets, linktype = captured_packets(CAPTURE)
    session, retired = Session(OPTIONS, SITE), []
    for i in range(0, len(packets), 9):
        session.add(to_raw_batch(packets[i: i + 9], linktype, i + 1, "live:test"))
        retired.append(session.retire_before(session.table.now - keep_s))
    return session, retired


def test_retired_plus_final_flows_are_the_file_result() -> None:
    want = apnstrace.analyze(CAPTURE, site=SITE, options=OPTIONS)
    session, retired = _fed(keep_s=60.0)
    final = session.finish()
    old = pd.concat([r for r in retired if len(r)], ignore_index=True)
    assert 0 < len(old) < len(want.flows)
    assert (old["ts_end"] < final.flows["ts_end"].max() - 60.0).all()
    _same_flows(pd.concat([old, final.flows], ignore_index=True), want.flows)
    # Metadata came along: the retired flows kept their SNI, names and classification.
    assert old["sni"].notna().any() and old["server_name"].notna().any() and (old["category"] != "other").any()


def test_retiring_frees_what_the_session_held() -> None:
    kept, _ = _fed(keep_s=1e9)
    windowed, _ = _fed(keep_s=60.0)
    rows = lambda s: sum(len(p) for p in s.table.pieces)                       # noqa: E731
    assert rows(windowed) < rows(kept)
    meta = lambda s: len(s.collector.table())                                  # noqa: E731
    assert meta(windowed) < meta(kept)
    starts = lambda s: len(s.activity.found.starts())                          # noqa: E731
    assert starts(windowed) < starts(kept)


def test_nothing_old_enough_retires_nothing() -> None:
    session, retired = _fed(keep_s=1e9)
    assert all(len(r) == 0 for r in retired)
    assert list(retired[0].columns) == apnstrace.schema.names(apnstrace.schema.FLOWS)


class _Replay:
    """A backend that hands over a capture file's packets, a few per take()."""

    def __init__(self, iface: str, bpf: str, linktype: int | None = None) -> None:
        self.packets, _ = captured_packets(CAPTURE)
        self.at, self.error = 0, None

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def take(self):
        got = self.packets[self.at: self.at + 11]
        self.at += len(got)
        return got

    def counts(self) -> CaptureCounts:
        return CaptureCounts(self.at, 0, None, "test")


def test_live_run_keeps_a_window_and_the_dataset_gets_every_flow(tmp_path, monkeypatch) -> None:
    _, linktype = captured_packets(CAPTURE)
    monkeypatch.setitem(live_run.BACKENDS, "scapy", _Replay)
    monkeypatch.setattr(live_run, "preflight", lambda iface, bpf: linktype)
    ticks = itertools.count()
    clock = lambda: next(ticks) * 1.0                       # noqa: E731 (a second per loop turn: a report every 10)
    config = LiveConfig(iface="eth0", output=tmp_path / "report", duration_s=40.0, rotate_s=10.0,
                        keep_s=120.0, dataset=tmp_path / "flows", site=SITE, options=OPTIONS)
    outcome = run_live(config, PlainView(), clock=clock)
    want = apnstrace.analyze(CAPTURE, site=SITE, options=OPTIONS).flows
    # The report shows the window: fewer flows than the capture, none finished before it.
    live = outcome.result.stats.live
    assert 0 < live["flows_retired"] < len(want) and len(outcome.result.flows) == len(want) - live["flows_retired"]
    old = outcome.result.flows[outcome.result.flows["ts_end"] < live["window_start"]]
    # What ended before the window and is still shown is an open TCP connection (idle, not closed).
    closed = {"SF", "REJ", "RSTO", "RSTR", "RSTOS0", "RSTRH"}
    assert (old["transport"] == "tcp").all() and not old["state"].isin(closed).any()
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["live"]["flows_retired"] == live["flows_retired"] and summary["live"]["keep_s"] == 120.0
    html = (tmp_path / "report" / "report.html").read_text()
    assert f"{live['flows_retired']:,} older flows left it, in {tmp_path / 'flows'}" in html
    assert "live window: the last 2.0 min" in html
    # The dataset holds every flow once: the retired batches and the final window.
    stored = read_flows(tmp_path / "flows")
    assert stored["run"].str.startswith("live-eth0-").all() and stored["run"].nunique() >= 2
    _same_flows(stored.drop(columns=["run", "date"]), want)


def test_keep_minutes_zero_keeps_every_flow_and_negative_is_refused(runner, tmp_path) -> None:
    with pytest.raises(live_run.LiveSetupError, match="--keep-minutes must be positive"):
        LiveConfig(iface="eth0", output=tmp_path, keep_s=-60.0)
    result = runner.invoke(apnstrace.cli.cli, ["live", "-i", "nosuch0", "--keep-minutes", "-1", "-o", str(tmp_path)])
    assert result.exit_code != 0 and "--keep-minutes must be positive" in result.output + (result.stderr or "")
    assert LiveConfig(iface="eth0", output=tmp_path, keep_s=None).keep_s is None


def test_activity_before_the_window_leaves_even_for_open_flows() -> None:
    session, _ = _fed(keep_s=420.0)
    starts, pushes = session.activity.found.starts(), session.activity.found.apns_packets()
    cutoff = session.table.now - 420.0
    assert len(starts) and (starts["ts"] >= cutoff).all() and (pushes["ts"] >= cutoff).all()
    # The sequences of the window are those of the file, for pushes well inside it.
    want = apnstrace.analyze(CAPTURE, site=SITE, options=OPTIONS).sequences
    got = session.finish().sequences
    inside = lambda s: s[s["push_ts"] >= cutoff + 60.0].reset_index(drop=True)   # noqa: E731
    assert len(inside(want)) >= 3 and len(inside(want)) < len(want)
    pd.testing.assert_frame_equal(inside(got).drop(columns=["push_flow_id", "checkin_flow_id", "provider_flow_id"]),
                                  inside(want).drop(columns=["push_flow_id", "checkin_flow_id", "provider_flow_id"]))
