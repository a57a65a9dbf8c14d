"""Block reasons, DNS failures, timing and courier steadiness on the generated samples, checked
against the truth sample_pcaps/generate.py wrote from the frames it built (docs/blocked.md)."""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import apnstrace
from apnstrace.decode import decode_chunk
from apnstrace.engines.scapy_engine import build_flows
from apnstrace.flows import FlowTable
from apnstrace.options import FlowOptions
from apnstrace.reader import iter_batches
from apnstrace.stats import RunStats

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "ndpi" / "pcap"
KEY = ["transport", "client_ip", "client_port", "server_ip", "server_port"]


def _analyze(name: str, engine: str = "fast") -> tuple[apnstrace.Result, dict]:
    truth = json.loads((SAMPLES / f"{name}.truth.json").read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # the samples are clean: no problems expected
        result = apnstrace.analyze([SAMPLES / name], engine=engine)
    return result, truth


@pytest.fixture(scope="module")
def blocked_sample():
    return _analyze("blocked_reasons.pcap")


def _by_key(flows: pd.DataFrame) -> dict[tuple, pd.Series]:
    return {tuple(row[k] for k in KEY): row for _, row in flows.iterrows()}


def _null(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def test_every_flow_has_the_reason_the_generator_built(blocked_sample) -> None:
    result, truth = blocked_sample
    flows = _by_key(result.flows)
    assert len(flows) == len(truth["flows"])
    reasons = set()
    for want in truth["flows"]:
        got = flows[tuple(want[k] for k in KEY)]
        assert bool(got["blocked"]) is want["blocked"], want["what"]
        assert (None if _null(got["block_reason"]) else got["block_reason"]) == want["block_reason"], want["what"]
        assert got["state"] == want["state"], want["what"]
        reasons.add(want["block_reason"])
    assert reasons - {None} == set(apnstrace.health.REASONS)        # every reason is exercised


@pytest.mark.parametrize("column", ["rtt_ms", "tls_handshake_ms", "ttfb_ms"])
def test_timing_per_flow_matches_the_frames(blocked_sample, column: str) -> None:
    result, truth = blocked_sample
    flows = _by_key(result.flows)
    for want in truth["flows"]:
        got = flows[tuple(want[k] for k in KEY)][column]
        if want[column] is None:
            assert _null(got), (column, want["what"])
        else:
            assert got == pytest.approx(want[column], abs=1e-3), (column, want["what"])


def test_blocked_rows_say_the_evidence(blocked_sample) -> None:
    result, truth = blocked_sample
    rows = {tuple(r[k] for k in KEY): r for _, r in result.blocked.iterrows() if not r["reason"].startswith("dns_")}
    for want in truth["flows"]:
        if not want["blocked"]:
            assert tuple(want[k] for k in KEY) not in rows, want["what"]
            continue
        row = rows[tuple(want[k] for k in KEY)]
        ev, text = want["evidence"], row["evidence"]
        assert row["reason"] == want["block_reason"]
        assert str(want["server_port"]) in row["sentence"] and want["server_ip"] in row["sentence"]
        match want["block_reason"]:
            case "no_response":
                assert f"{ev['syn_count']} SYNs over {ev['syn_spread_s']:.1f} s" in text
            case "reset":
                assert f"{ev['rst_after_syn_ms']:.1f} ms" in text
            case "icmp_unreachable":
                assert f"type {ev['icmp_type']} code {ev['icmp_code']}" in text and ev["reporter"] in text
                assert ev["icmp_name"] in text
            case "tls_alert":
                assert ev["alert"] in text
            case "tls_intercepted":
                if ev["evidence"] == "issuer":
                    assert ev["cert_issuer"] in text and ev["client_alert"] in text
                else:
                    assert "selected no ALPN" in text and f"{ev['client_close_after_s']:.2f} s" in text
            case "reset_after_handshake":
                assert f"{ev['client_payload_bytes']:,} bytes" in text
                assert f"{ev['rst_after_client_payload_ms'] / 1000:.3f} s" in text
            case "no_server_data":
                assert f"{ev['client_payload_bytes']:,} bytes" in text and f"{ev['waited_s']:.1f} s" in text


def test_reset_rows_say_who_sent_the_rst(blocked_sample) -> None:
    """A RST whose TTL differs from the server's own packets (same connection, else other flows
    to that address) was sent by a box on the path; the generator set the TTLs."""
    result, truth = blocked_sample
    rows = {tuple(r[k] for k in KEY): r for _, r in result.blocked.iterrows()}
    checked = 0
    for want in truth["flows"]:
        if want["block_reason"] not in ("reset", "reset_after_handshake"):
            continue
        ev, row = want["evidence"], rows[tuple(want[k] for k in KEY)]
        if ev["rst_injected"] is None:
            assert "TTL" not in row["evidence"]
            continue
        checked += 1
        assert f"TTL {ev['rst_ttl']}" in row["evidence"] and f"TTL {ev['server_ttl']}" in row["evidence"]
        assert ("a device on the path sent it" in row["evidence"]) is ev["rst_injected"]
        assert ("on the path" in row["sentence"].split(" - ")[-1]) is ev["rst_injected"]
    assert checked == 2


def _engine_flows(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both engines' flows with the hidden evidence columns (the public result drops them)."""
    stats = RunStats()
    table = FlowTable(FlowOptions())
    for raw in iter_batches(path, stats):
        table.add(decode_chunk(raw, stats)[0])
    return table.finish(), build_flows([path], FlowOptions(), RunStats())


@pytest.mark.parametrize("path", [SAMPLES / "blocked_reasons.pcap", CORPUS / "tls_alert.pcap",
                                  CORPUS / "synscan.pcap", CORPUS / "http_ipv6.pcap"], ids=lambda p: p.name)
def test_scapy_engine_reads_the_same_ttls(path: Path) -> None:
    fast, scapy = _engine_flows(path)
    cols = KEY + ["_s_ttl", "_s_rst_ttl"]
    both = fast[cols].merge(scapy[cols], on=KEY, suffixes=("_fast", "_scapy"), validate="one_to_one")
    assert len(both) == len(fast) == len(scapy)
    for name in ("_s_ttl", "_s_rst_ttl"):
        a, b = both[f"{name}_fast"].to_numpy(float), both[f"{name}_scapy"].to_numpy(float)
        assert ((a == b) | (np.isnan(a) & np.isnan(b))).all(), name
    assert np.isfinite(both["_s_ttl_fast"].to_numpy(float)).any()
    if path.name == "blocked_reasons.pcap":
        assert np.isfinite(both["_s_rst_ttl_fast"].to_numpy(float)).sum() >= 3


def test_dns_failures_of_apple_names_only(blocked_sample) -> None:
    result, truth = blocked_sample
    dns = result.blocked[result.blocked["reason"].str.startswith("dns_")]
    got = {(r.server_name, r.reason, r.client_ip, r.client_port, r.server_ip) for r in dns.itertuples()}
    want = {(f["qname"], f["reason"], f["client"], f["client_port"], f["server"]) for f in truth["dns_failures"]}
    assert got == want
    for f in truth["dns_failures"]:
        row = dns[(dns["server_name"] == f["qname"])].iloc[0]
        assert row["ts"] == pytest.approx(float(f["ts"]), abs=1e-6)
    quiet = {f["qname"] for f in truth["dns_not_failures"]}
    assert not quiet & set(result.blocked["server_name"].dropna())


def test_blocked_table_is_worst_first(blocked_sample) -> None:
    result, _ = blocked_sample
    order = {"apns": 0, "mdm": 1, "enrollment": 1}
    ranks = [order.get(c, 2) for c in result.blocked["category"]]
    assert ranks == sorted(ranks)
    assert result.blocked["sentence"].str.contains(" - ").all()
    assert list(result.blocked.columns) == apnstrace.schema.names(apnstrace.schema.BLOCKED)


def test_courier_flapping_stands_out() -> None:
    result, truth = _analyze("courier_flapping.pcap")
    got = result.courier.set_index("device_ip")
    assert set(got.index) == {c["device"] for c in truth["courier"]}
    for want in truth["courier"]:
        row = got.loc[want["device"]]
        assert row["connections"] == want["connections"]
        assert row["closed_by_network"] == want["closed_by_network"]
        assert bool(row["flapping"]) is want["flapping"]
        for column in ("lifetime_p50_s", "lifetime_max_s", "reconnects_per_hour"):
            assert row[column] == pytest.approx(want[column], rel=1e-6), column
        if want["keepalive_s"] is None:
            assert _null(row["keepalive_s"])
        else:
            assert row["keepalive_s"] == pytest.approx(want["keepalive_s"], rel=1e-6)
        assert ("flapping" in row["verdict"]) is want["flapping"]


def test_timing_summaries_match_the_flows() -> None:
    result, _ = _analyze("courier_flapping.pcap")
    timing = result.timing
    lifetimes = result.flows.loc[result.flows["service"] == "apns-courier", "duration"]
    row = timing[(timing["scope"] == "category") & (timing["key"] == "apns")
                 & (timing["metric"] == "courier_lifetime_s")].iloc[0]
    assert row["count"] == len(lifetimes)
    assert row["p50"] == pytest.approx(lifetimes.median()) and row["max"] == pytest.approx(lifetimes.max())
    assert row["p95"] == pytest.approx(lifetimes.quantile(0.95))
    devices = set(timing.loc[timing["scope"] == "device", "key"])
    assert devices == set(result.courier["device_ip"])


def test_scapy_engine_gives_the_same_transport_reasons(blocked_sample) -> None:
    """The reference engine has no TLS/DNS parsing and no ICMP matching: the reasons read from
    TCP alone must agree."""
    fast, _ = blocked_sample
    scapy, _ = _analyze("blocked_reasons.pcap", engine="scapy")
    transport_only = {"reset", "no_response", "reset_after_handshake", "no_server_data"}
    unseen_by_scapy = {"icmp_unreachable", "tls_alert", "tls_intercepted"}
    both = fast.flows[KEY + ["block_reason"]].merge(scapy.flows[KEY + ["block_reason"]], on=KEY,
                                                    suffixes=("_fast", "_scapy"), validate="one_to_one")
    assert len(both) == len(fast.flows) == len(scapy.flows)
    mine = both[both["block_reason_fast"].isin(transport_only)]
    assert len(mine) == 4 and (mine["block_reason_fast"] == mine["block_reason_scapy"]).all()
    theirs = both[both["block_reason_scapy"].isin(transport_only)]
    # Where scapy sees only TCP, the fast engine may know more (an ICMP error, a TLS alert).
    assert (theirs["block_reason_fast"].isin(unseen_by_scapy) | (theirs["block_reason_fast"] == theirs["block_reason_scapy"])).all()
