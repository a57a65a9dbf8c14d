"""timing_table from precomputed per-flow rows (flow_timing, which pipeline._tables runs in a
thread beside the sequences) equals the table computed in one go."""
from __future__ import annotations

import pandas as pd
import pytest

import apnstrace
from apnstrace import pipeline
from apnstrace.health import courier_table, flow_timing, timing_table
from conftest import SAMPLES

CAPTURES = [SAMPLES / "sequences_rot_a.pcap", SAMPLES / "sequences_rot_b.pcap"]


def _working_flows():
    """The flows frame with the hidden columns the stages read, and the activity collector."""
    got = {}

    def keep(flows, dns_failures, activity, site, icmp, stats):
        got.update(flows=flows, failures=dns_failures, activity=activity)
        return real(flows, dns_failures, activity, site, icmp, stats)

    real = pipeline._tables
    pipeline._tables = keep
    try:
        result = apnstrace.analyze(CAPTURES, workers=1)
    finally:
        pipeline._tables = real
    return got, result


def test_timing_from_flow_parts_equals_timing_in_one_go() -> None:
    got, result = _working_flows()
    flows = got["flows"]
    assert len(result.sequences) and result.sequences["push_ts"].notna().any()     # push rows are merged in
    expected = timing_table(flows, result.sequences)
    pd.testing.assert_frame_equal(timing_table(flows, result.sequences, flow_timing(flows)), expected)
    pd.testing.assert_frame_equal(result.timing, expected)
    assert (expected["scope"] == "device").any() and (expected["metric"] == "push_checkin_s").any()
    pd.testing.assert_frame_equal(result.courier, courier_table(flows))


def test_no_flows_no_parts_and_an_empty_table() -> None:
    got, _ = _working_flows()
    empty = got["flows"].iloc[:0]
    assert flow_timing(empty) == []
    pd.testing.assert_frame_equal(timing_table(empty, None, []), timing_table(empty))


def test_an_error_in_the_side_thread_reaches_the_caller(monkeypatch) -> None:
    def broken(flows):
        raise RuntimeError("courier broke")

    monkeypatch.setattr(pipeline, "courier_table", broken)
    with pytest.raises(RuntimeError, match="courier broke"):
        apnstrace.analyze(CAPTURES[0], workers=1)
