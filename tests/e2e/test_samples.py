"""Every sample capture's flows against the ground truth its generator wrote beside it."""
from __future__ import annotations

import json
import struct
import warnings
from pathlib import Path

import pandas as pd
import pytest

import apnstrace
from apnstrace import schema

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "sample_pcaps"
CAPTURES = sorted(p for p in SAMPLES.iterdir() if p.suffix in (".pcap", ".pcapng", ".gz"))
FIELDS = ["transport", "client_ip", "client_port", "server_ip", "server_port", "vlan", "pkts_c2s",
          "pkts_s2c", "bytes_c2s", "bytes_s2c", "syn_retries", "state"]


def truth_of(capture: Path) -> dict:
    return json.loads((capture.parent / (capture.name + ".truth.json")).read_text())


def test_there_are_samples_with_truth() -> None:
    assert len(CAPTURES) >= 9
    for capture in CAPTURES:
        assert (capture.parent / (capture.name + ".truth.json")).is_file(), capture


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_flows_match_truth(capture: Path) -> None:
    truth = truth_of(capture)
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # a sample must read cleanly
        result = apnstrace.analyze([capture])
    got = result.flows
    assert list(got.columns) == schema.names(schema.FLOWS)
    expected = pd.DataFrame(truth["flows"])
    key = ["transport", "client_ip", "client_port", "server_ip", "server_port"]
    got_cmp = got[FIELDS].astype(object).where(got[FIELDS].notna(), None).sort_values(key).reset_index(drop=True)
    exp_cmp = expected[FIELDS].astype(object).where(expected[FIELDS].notna(), None).sort_values(key).reset_index(drop=True)
    assert got_cmp.to_dict("records") == exp_cmp.to_dict("records")
    # Times to the microsecond (the truth keeps nanoseconds as text).
    by_key = got.set_index(key)
    for flow in truth["flows"]:
        row = by_key.loc[tuple(flow[k] for k in key)]
        assert abs(row["ts_start"] - float(flow["first_ts"])) < 1e-6
        assert abs(row["ts_end"] - float(flow["last_ts"])) < 1e-6
    assert result.stats.records == truth["frames"]
    assert result.problems == []


META = ["category", "classified_by", "sni", "alpn", "server_name", "http_method", "http_host", "http_path",
        "http_user_agent", "http_status", "tls_version", "tls_alert", "cert_issuer"]
KEY = ["transport", "client_ip", "client_port", "server_ip", "server_port"]


@pytest.mark.parametrize("capture", [c for c in CAPTURES if "category" in json.dumps(truth_of(c)["flows"][:1])],
                         ids=lambda p: p.name)
def test_metadata_and_category_match_truth(capture: Path) -> None:
    """Every flow's TLS/DNS/HTTP metadata and category as the generator meant them."""
    got = apnstrace.analyze([capture]).flows.set_index(KEY)
    mismatches = []
    for flow in truth_of(capture)["flows"]:
        row = got.loc[tuple(flow[k] for k in KEY)]
        for name in META:
            want, have = flow.get(name), row[name]
            have = None if pd.isna(have) else (int(have) if name == "http_status" else have)
            if want != have:
                mismatches.append((flow["server_ip"], flow["server_port"], name, want, have))
    assert mismatches == []


def test_gzip_sample_reads_like_the_plain_one() -> None:
    plain = apnstrace.analyze([SAMPLES / "courier_push.pcap"]).flows
    packed = apnstrace.analyze([SAMPLES / "courier_push.pcap.gz"]).flows
    pd.testing.assert_frame_equal(plain, packed)


def test_blocked_syn_sample_shows_the_failures() -> None:
    flows = apnstrace.analyze([SAMPLES / "blocked_syn.pcap"]).flows.set_index("server_port")
    assert flows.loc[5223, "state"] == "S0" and flows.loc[5223, "syn_retries"] == 3
    assert flows.loc[8443, "state"] == "REJ"
    assert flows.loc[443, "state"] == "S1" and flows.loc[443, "rtt_ms"] > 0


def test_icmp_error_is_evidence_not_a_flow_packet() -> None:
    result = apnstrace.analyze([SAMPLES / "site_mixed.pcapng"])
    assert result.stats.icmp_errors == 1
    quoted = result.icmp_errors.iloc[0]
    assert (quoted["icmp_type"], quoted["icmp_code"]) == (3, 13)
    assert (quoted["dst"], quoted["dport"], quoted["proto"]) == ("17.57.146.23", 5223, 6)
    blocked = result.flows[result.flows["server_port"] == 5223]
    assert (blocked["server_ip"] == "17.57.146.23").sum() == 1
    assert int(blocked.loc[blocked["server_ip"] == "17.57.146.23", "pkts_c2s"].iloc[0]) == 1


def _pcap_records(path: Path) -> tuple[bytes, list[bytes]]:
    """A classic pcap's header and its records, each with its 16-byte record header."""
    data = path.read_bytes()
    header, pos, records = data[:24], 24, []
    while pos < len(data):
        incl = struct.unpack_from("<I", data, pos + 8)[0]
        records.append(data[pos: pos + 16 + incl])
        pos += 16 + incl
    return header, records


def test_rotated_files_make_one_flow(tmp_path: Path) -> None:
    """A capture cut into pieces (given in any order) gives the same flows as the whole."""
    whole = SAMPLES / "courier_push.pcap"
    header, records = _pcap_records(whole)
    pieces = []
    for i, (lo, hi) in enumerate(((0, 9), (9, 19), (19, len(records)))):
        piece = tmp_path / f"part{i}.pcap"
        piece.write_bytes(header + b"".join(records[lo:hi]))
        pieces.append(piece)
    together = apnstrace.analyze(list(reversed(pieces))).flows
    pd.testing.assert_frame_equal(together, apnstrace.analyze([whole]).flows)
