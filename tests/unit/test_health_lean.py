"""The health stages reading the frame's own arrays (no full-length copies) answer exactly as
when every value is first converted, on varied inputs (health/reasons.py, dns_failures.py)."""
from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from apnstrace.health import block_reasons
from apnstrace.metadata.dns_records import DnsFailure
from apnstrace.options import FlowOptions

dns = importlib.import_module("apnstrace.health.dns_failures")

TIMES = st.one_of(st.just(np.nan), st.sampled_from([0.0, 0.5, 1.0, 2.5, 3.0, 9.75, 10.0]))
FLOW = st.fixed_dictionaries({
    "transport": st.sampled_from(["tcp", "tcp", "udp"]),
    "state": st.sampled_from(["S0", "REJ", "RSTOS0", "SF", "S1", "RSTR", None]),
    "_syns": st.integers(0, 3), "pkts_c2s": st.integers(0, 5), "pkts_s2c": st.integers(0, 3),
    "_c_payload": st.integers(0, 3000), "_s_payload": st.sampled_from([0, 0, 10]),
    "_handshake": st.booleans(), "ts_start": st.sampled_from([0.0, 1.0, 4.0]),
    "ts_end": st.sampled_from([1.0, 5.0, 9.0, 10.0]),
    "_syn_first": TIMES, "_syn_last": TIMES, "_c_data_ts": TIMES, "_s_rst_ts": TIMES, "_c_rst_ts": TIMES,
    "_c_fin_ts": TIMES, "_s_fin_ts": TIMES, "server_hello_ts": TIMES,
    "rtt_ms": st.one_of(st.none(), st.sampled_from([0.4, 12.0, 2500.0])),
    "tls_alert": st.sampled_from([None, "fatal/handshake_failure", "warning/close_notify"]),
})


def _frame(rows: list[dict]) -> pd.DataFrame:
    flows = pd.DataFrame(rows)
    for name in ("transport", "state", "tls_alert"):
        flows[name] = flows[name].astype("string")
    flows["rtt_ms"] = flows["rtt_ms"].astype("Float64")
    for name in ("client_ip", "server_ip"):
        flows[name] = pd.array(["10.0.0.1"] * len(flows), dtype="string")
    flows["client_port"], flows["server_port"] = np.arange(len(flows), dtype=np.int32), np.int32(443)
    return flows


def _converted(flows: pd.DataFrame) -> pd.DataFrame:
    """The same values with every number column nullable: read through the converting path."""
    out = flows.copy()
    for name, dtype in flows.dtypes.items():
        if isinstance(dtype, np.dtype) and dtype.kind in "if" and name not in ("client_port", "server_port"):
            out[name] = flows[name].astype("Float64" if dtype.kind == "f" else "Int64")
    return out


@settings(max_examples=80, deadline=None)
@given(st.lists(FLOW, min_size=1, max_size=25), st.sampled_from([None, 10.0, 11.5]))
def test_block_reasons_same_on_own_arrays_as_on_converted_values(rows, capture_end) -> None:
    flows = _frame(rows)
    got = block_reasons(flows, None, FlowOptions(), capture_end)
    expected = block_reasons(_converted(flows), None, FlowOptions(), capture_end)
    for name in ("blocked", "block_reason", "block_evidence"):
        pd.testing.assert_series_equal(got[name], expected[name])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.sampled_from(["udp", "tcp"]), st.sampled_from([53, 5353, 443]),
                          st.integers(0, 2), st.sampled_from([None, "gateway.push.apple.com", "example.org", ""])),
                min_size=1, max_size=20, unique_by=lambda r: r[0]),
       st.lists(st.tuples(st.integers(-2, 42), st.sampled_from(["mdm.example.com", "gateway.push.apple.com",
                                                                "swscan.apple.com", "example.org"]),
                          st.sampled_from(["NXDOMAIN", "SERVFAIL", "SINKHOLE"])), max_size=12),
       st.booleans())
def test_dns_failures_same_as_row_by_row(flows_rows, failure_rows, ordered) -> None:
    flows_rows = sorted(flows_rows) if ordered else flows_rows
    uid, transport, port, s2c, query = map(list, zip(*flows_rows))
    flows = pd.DataFrame({dns.UID: np.array(uid, np.int64), "transport": pd.array(transport, dtype="string"),
                          "server_port": np.array(port, np.int32), "pkts_s2c": np.array(s2c, np.int64),
                          "dns_query": pd.array(query, dtype="string"), "ts_start": np.arange(len(uid), dtype=float),
                          "ts_end": np.arange(len(uid), dtype=float) + 5.0})
    failures = [DnsFailure(float(k), u, q, "A", r) for k, (u, q, r) in enumerate(failure_rows)]
    pd.testing.assert_frame_equal(dns.dns_failures(flows, failures, None), _dns_failures_reference(flows, failures))


def _dns_failures_reference(flows: pd.DataFrame, failures: list) -> pd.DataFrame:
    """dns_failures row by row: every flow's uid in a hash table, each unanswered query read by .iat."""
    rows = []
    at = pd.Index(flows[dns.UID].to_numpy()).get_indexer([f.uid for f in failures]) if failures else []
    for failure, row in zip(failures, list(at)):
        if row >= 0:
            rows.append((int(row), failure.ts, failure.qname, failure.qtype, f"dns_{failure.rcode.lower()}"))
    capture_end = float(flows["ts_end"].max())
    query = flows["dns_query"]
    for i in range(len(flows)):
        if (flows["transport"].iat[i] == "udp" and flows["server_port"].iat[i] in dns.DNS_PORTS
                and not pd.isna(query.iat[i]) and flows["pkts_s2c"].iat[i] == 0
                and capture_end - flows["ts_start"].iat[i] >= dns.NO_ANSWER_WAIT_S):
            rows.append((i, float(flows["ts_start"].iat[i]), query.iat[i], "", "dns_no_answer"))
    if not rows:
        return pd.DataFrame(columns=["row", "ts", "qname", "qtype", "reason", "category", "service"])
    found = pd.DataFrame(rows, columns=["row", "ts", "qname", "qtype", "reason"])
    found = found[found["qname"].astype(bool)]
    found = found.join(dns._name_categories(found["qname"].unique().tolist(), None), on="qname")
    return found[found["category"].isin(dns.WATCHED)].sort_values("ts").reset_index(drop=True)
