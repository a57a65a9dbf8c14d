"""Push -> check-in -> follow-up sequences on the generated site capture, every field against the
truth sample_pcaps/generate.py computed from the frames it built (docs/sequences.md); the same
capture cut in two rotated files gives the same answer."""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import apnstrace

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"
TRUTH = json.loads((SAMPLES / "sequences_site.pcap.truth.json").read_text())
SITE = apnstrace.Site(mdm_hosts=TRUTH["analyze_with"]["mdm_hosts"])
KEY = ("transport", "client_ip", "client_port", "server_ip", "server_port")


def _analyze(*names: str) -> apnstrace.Result:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return apnstrace.analyze([SAMPLES / n for n in names], site=SITE)


@pytest.fixture(scope="module")
def whole() -> apnstrace.Result:
    return _analyze("sequences_site.pcap")


def _ts(text: str | None) -> float | None:
    return None if text is None else float(text)


def _flow_id(flows: pd.DataFrame, key: dict | None) -> int | None:
    if key is None:
        return None
    hit = flows
    for name in KEY:
        hit = hit[hit[name] == key[name]]
    hit = hit[(hit["ts_start"] - float(key["first_ts"])).abs() < 1e-6]
    assert len(hit) == 1, key
    return int(hit["flow_id"].iloc[0])


def _null(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _row_for(got: pd.DataFrame, want: dict) -> pd.Series:
    if want["push_ts"] is not None:
        hit = got[(got["device_ip"] == want["device_ip"]) & ((got["push_ts"] - float(want["push_ts"])).abs() < 1e-6)]
    else:
        hit = got[(got["device_ip"] == want["device_ip"]) & got["push_ts"].isna()
                  & ((got["checkin_ts"] - float(want["checkin_ts"])).abs() < 1e-6)]
    assert len(hit) == 1, f"no row for {want['device']} {want['outcome']} at {want['push_ts'] or want['checkin_ts']}"
    return hit.iloc[0]


def test_every_sequence_row_matches_the_truth(whole) -> None:
    got = whole.sequences
    assert len(got) == len(TRUTH["sequences"])
    for want in TRUTH["sequences"]:
        row = _row_for(got, want)
        what = f"{want['device']} {want['outcome']}"
        assert row["outcome"] == want["outcome"], what
        for column in ("push_ts", "provider_ts", "checkin_ts"):
            if want[column] is None:
                assert _null(row[column]), (what, column)
            else:
                assert row[column] == pytest.approx(float(want[column]), abs=1e-6), (what, column)
        for column, key in (("push_flow_id", "push_flow"), ("provider_flow_id", "provider_flow"),
                            ("checkin_flow_id", "checkin_flow")):
            expected = _flow_id(whole.flows, want.get(key))
            assert (None if _null(row[column]) else int(row[column])) == expected, (what, column)
        assert (None if _null(row["push_bytes"]) else int(row["push_bytes"])) == want["push_bytes"], what
        if want["latency_s"] is None:
            assert _null(row["latency_s"]), what
        else:
            assert abs(row["latency_s"] - want["latency_s"]) < 1e-3, what          # within 1 ms
        for column in ("mdm_server", "followups"):
            assert (None if _null(row[column]) else row[column]) == want[column], (what, column)
        assert (None if _null(row["followups_blocked"]) else int(row["followups_blocked"])) == want["followups_blocked"], what
        assert bool(row["mdm_server_inferred"]) is want["mdm_server_inferred"], what
        if want.get("detail_reason"):
            assert row["detail"].startswith(want["detail_reason"] + ": "), what       # reason, then the sentence


def test_no_keepalive_answer_is_taken_for_a_push(whole) -> None:
    pushes = whole.sequences["push_ts"].dropna().to_numpy()
    for answer in TRUTH["keepalives"]:
        assert not np.any(np.abs(pushes - float(answer["answer_ts"])) < 1e-6), answer
    for answer in TRUTH.get("server_answers_not_pushes", []):
        ts = answer.get("ts") or answer.get("answer_ts")
        if ts is not None:
            assert not np.any(np.abs(pushes - float(ts)) < 1e-6), answer


def test_every_outcome_is_exercised(whole) -> None:
    assert set(whole.sequences["outcome"]) == {"checked_in", "no_checkin", "checkin_blocked", "unsolicited_checkin"}


def test_rotated_files_give_the_same_sequences(whole) -> None:
    files = TRUTH["rotation"]["files"]
    rotated = _analyze(*reversed(files))            # any order: files are read by their first frame
    pd.testing.assert_frame_equal(rotated.sequences, whole.sequences)
    pd.testing.assert_frame_equal(rotated.flows, whole.flows)


def test_per_device_push_summaries(whole) -> None:
    seq = whole.sequences[whole.sequences["push_ts"].notna()]
    timing = whole.timing.set_index(["scope", "key", "metric"])
    for device, group in seq.groupby("device_ip"):
        assert timing.loc[("device", device, "pushes"), "count"] == len(group)
        rate = (group["outcome"] == "checked_in").mean()
        assert timing.loc[("device", device, "checkin_rate"), "p50"] == pytest.approx(rate)
        latencies = group["latency_s"].dropna()
        if len(latencies):
            assert timing.loc[("device", device, "push_checkin_s"), "p50"] == pytest.approx(latencies.median())
    assert timing.loc[("category", "apns", "pushes"), "count"] == len(seq)


def test_sequences_command(runner, tmp_path) -> None:
    from apnstrace.cli import cli
    out = tmp_path / "seq.csv"
    result = runner.invoke(cli, ["sequences", str(SAMPLES / "sequences_site.pcap"), "--mdm-host",
                                 TRUTH["analyze_with"]["mdm_hosts"][0], "--format", "csv", "-o", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert list(frame.columns) == apnstrace.schema.names(apnstrace.schema.SEQUENCES)
    assert len(frame) == len(TRUTH["sequences"])
    table = runner.invoke(cli, ["sequences", str(SAMPLES / "sequences_site.pcap"), "--mdm-host",
                                TRUTH["analyze_with"]["mdm_hosts"][0]])
    assert "checked_in" in table.output and "checkin_blocked" in table.output
    scapy = runner.invoke(cli, ["sequences", str(SAMPLES / "sequences_site.pcap"), "--engine", "scapy"])
    assert scapy.exit_code == 2 and "fast engine" in scapy.output
