"""The post-read stages that build text column-wise or read only the rows they need
(health/reasons.py, blocked_table.py, timing.py, rst_origin.py, sequences/build.py) against
plain row-by-row references of the same rules, on varied inputs."""
from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from apnstrace.health.dns_failures import WATCHED
from apnstrace.health.rst_origin import RESET_REASONS, TTL_SLACK, rst_origin
from apnstrace.sequences.rows import rows_of as _rows_of

# The modules (apnstrace.health exports functions of the same names).
bt = importlib.import_module("apnstrace.health.blocked_table")
reasons = importlib.import_module("apnstrace.health.reasons")
timing = importlib.import_module("apnstrace.health.timing")
rows_module = importlib.import_module("apnstrace.sequences.rows")

TEXTS = st.one_of(st.none(), st.sampled_from(["", "apns-courier", "mdm", "Ünïcode ß", "a, b", "x" * 40]))
SMALL = st.sampled_from([0.0, -0.0, 0.04, 0.05, 0.15, 0.25, 0.35, 1.0, 2.95, 2.96, 3.0, 12.345, np.nan])


# --------------------------------------------------------------------------- reasons: distinct_texts

def per_row(rows, explain, says) -> list:
    """distinct_texts' answer as one text per row."""
    texts, codes = reasons.distinct_texts(rows, explain, says)
    return [texts[c] for c in codes.tolist()]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 4), SMALL, SMALL, st.booleans(), SMALL), min_size=1, max_size=40),
       st.sampled_from([10.0, 12.4, 13.0, 14.9]))
def test_no_response_texts_said_once_per_distinct_value_set(rows, capture_end) -> None:
    syns, first, spread, rstos0, back = map(np.array, zip(*rows))
    last = capture_end - back                        # near the capture's end, or not
    flows = pd.DataFrame({
        "transport": "tcp", "state": np.where(rstos0, "RSTOS0", "S0"), "_syns": syns.astype(np.int64),
        "_syn_first": np.where(syns > 1, last - spread, last + first * 0), "_syn_last": last,
        "pkts_c2s": syns + rstos0, "pkts_s2c": 0, "ts_end": last, "_c_payload": 0})
    f = reasons._Facts(flows)
    at = np.arange(len(flows))[::-1].copy()          # rows not in order
    expected = [f.describe_no_response(i, capture_end) for i in at.tolist()]
    assert per_row(at, lambda i: f.describe_no_response(i, capture_end),
                   lambda r: f.no_response_says(capture_end, r)) == expected


def test_distinct_texts_calls_once_per_group() -> None:
    calls = []
    values = np.array([1.0, 2.0, 1.0, 1.0, -0.0, 0.0])
    out = per_row(np.array([5, 4, 3, 2, 1, 0]), lambda i: calls.append(i) or f"{values[i]}", lambda r: [values[r]])
    assert out == ["0.0", "-0.0", "1.0", "1.0", "2.0", "1.0"]
    assert len(calls) == 4


# --------------------------------------------------------------------------- reasons: ICMP narrowing

@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.sampled_from(["tcp", "udp"]),
                          st.sampled_from(["10.0.0.1", "10.0.0.2"])), min_size=1, max_size=30),
       st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.sampled_from([6, 17]),
                          st.sampled_from(["10.0.0.1", "10.0.0.2"]), st.floats(0, 20)), min_size=1, max_size=20))
def test_icmp_matches_same_as_merging_every_flow(flows_rows, icmp_rows) -> None:
    cp, sp, tr, ip = zip(*flows_rows)
    flows = pd.DataFrame({"client_ip": pd.array(["192.168.1.2"] * len(cp), dtype="string"), "client_port": np.int32(cp),
                          "server_ip": pd.array(ip, dtype="string"), "server_port": np.int32(sp),
                          "transport": pd.array(tr, dtype="string"),
                          "ts_start": np.arange(len(cp), dtype=float), "ts_end": np.arange(len(cp), dtype=float) + 3})
    s, d, proto, dst, ts = zip(*icmp_rows)
    icmp = pd.DataFrame({"src": "192.168.1.2", "dst": list(dst), "sport": list(s), "dport": list(d), "proto": list(proto),
                         "ts": list(ts), "v6": False, "icmp_type": 3, "icmp_code": 1, "reporter": "10.9.9.9"})
    got = reasons._icmp_matches(flows, icmp)
    expected = _icmp_rows_reference(flows, icmp)
    assert got.rows.tolist() == expected


def _icmp_rows_reference(flows: pd.DataFrame, icmp: pd.DataFrame) -> list[int]:
    """Every flow's key as text, merged with every quoted packet; the earliest error per flow."""
    found: dict[int, float] = {}
    for i, f in enumerate(flows.itertuples(index=False)):
        for q in icmp.itertuples(index=False):
            if ((str(q.src), int(q.sport), str(q.dst), int(q.dport), "tcp" if q.proto == 6 else "udp")
                    == (str(f.client_ip), int(f.client_port), str(f.server_ip), int(f.server_port), str(f.transport))
                    and f.ts_start <= q.ts <= f.ts_end + reasons.ICMP_GRACE_S):
                found[i] = min(found.get(i, np.inf), q.ts)
    return sorted(found, key=lambda i: (found[i], i))


# --------------------------------------------------------------------------- blocked table sentences

def _sentences_reference(table: pd.DataFrame) -> list[str]:
    phrases = bt._phrases()
    out = []
    def said(v) -> str:
        return "" if pd.isna(v) else str(v)

    for r in table.to_dict("records"):
        meaning = bt._meaning(r["reason"] + r["_variant"], r["category"], phrases)
        service, name = said(r["service"]), said(r["server_name"])
        label = f"{service}, {name}" if service and name else service + name
        label = f" ({label})" if label else ""
        head = (f"DNS lookup via {said(r['server_ip'])}" if r["reason"].startswith("dns_")
                else f"{said(r['transport']).upper()} {said(r['server_port'])} to {said(r['server_ip'])}{label}")
        out.append(f"{head}: {said(r['evidence'])} - {meaning}")
    return out


ROW = st.tuples(st.sampled_from(["reset", "no_response", "tls_alert", "dns_nxdomain", "dns_weird", "reset_after_handshake"]),
                st.sampled_from(["", "_injected", "_unacknowledged"]),
                st.one_of(st.none(), st.sampled_from(["apns", "mdm", "dns", "other", "unknown-cat"])),
                TEXTS, TEXTS, st.one_of(st.none(), st.sampled_from(["17.1.2.3", "2001:db8::1", ""])),
                st.one_of(st.none(), st.sampled_from(["tcp", "udp", "ß"])), st.integers(0, 65535), TEXTS)


@settings(max_examples=80, deadline=None)
@given(st.lists(ROW, min_size=1, max_size=30), st.booleans())
def test_sentences_same_as_row_by_row(rows, arrow_text) -> None:
    names = ["reason", "_variant", "category", "service", "server_name", "server_ip", "transport", "server_port", "evidence"]
    table = pd.DataFrame(rows, columns=names)
    for name in ("category", "service", "server_name", "server_ip", "transport", "evidence"):
        table[name] = table[name].astype("string" if arrow_text else object)
    table.index = np.arange(len(table))[::-1]       # the blocked table is sorted first: any index
    assert list(bt._sentences(table)) == _sentences_reference(table)


@settings(max_examples=60, deadline=None)
@given(st.lists(ROW, min_size=1, max_size=30), st.sampled_from(["string[pyarrow]", "string", object]),
       st.integers(1, 8))
def test_sentences_in_slices_same_as_row_by_row(rows, text_dtype, rows_per_slice) -> None:
    """Made a slice of rows at a time (_SLICE): slice edges anywhere, the same sentences in order."""
    names = ["reason", "_variant", "category", "service", "server_name", "server_ip", "transport", "server_port", "evidence"]
    table = pd.DataFrame(rows, columns=names)
    for name in ("category", "service", "server_name", "server_ip", "transport", "evidence"):
        table[name] = table[name].astype(text_dtype)
    table.index = np.arange(len(table))[::-1]
    kept, bt._SLICE = bt._SLICE, rows_per_slice
    try:
        made = bt._sentences(table)
    finally:
        bt._SLICE = kept
    assert len(made) == len(table)
    assert list(made) == _sentences_reference(table)


# --------------------------------------------------------------------------- timing per category/device

def _flow_timing_reference(flows: pd.DataFrame) -> list[pd.DataFrame]:
    values = pd.DataFrame({m: pd.to_numeric(flows[m], errors="coerce").astype("float64") for m in timing.METRICS})
    values["courier_lifetime_s"] = flows["duration"].where(timing._courier_connections(flows)).astype("float64")
    category = flows["category"].astype(object).fillna("other").to_numpy()
    device = flows["client_ip"].astype(object).to_numpy()
    devices = pd.unique(device[np.isin(category, WATCHED)])
    parts = [timing._summary(values, category, "category")]
    mine = pd.Series(device).isin(devices).to_numpy()
    if mine.any():
        parts.append(timing._summary(values[mine], device[mine], "device"))
    return parts


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.sampled_from(["apns", "mdm", "other", "web", "Zed", "ß"])),
                          st.one_of(st.none(), st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.10", "10.0.0.9",
                                                                "2001:db8::1", "Ä"])),
                          st.one_of(st.none(), st.floats(0, 500)), st.one_of(st.none(), st.floats(0, 500)),
                          st.floats(0, 5000), st.sampled_from(["apns-courier", "web"]), st.integers(0, 2),
                          st.sampled_from(["SF", "S0", "REJ"])), min_size=1, max_size=30))
def test_flow_timing_same_as_melting_every_flow(rows) -> None:
    cat, ip, rtt, ttfb, dur, service, s2c, state = zip(*rows)
    flows = pd.DataFrame({"category": pd.array(cat, dtype="string"), "client_ip": pd.array(ip, dtype="string"),
                          "rtt_ms": pd.array(rtt, dtype="Float64"), "tls_handshake_ms": pd.array([None] * len(rows), dtype="Float64"),
                          "ttfb_ms": pd.array(ttfb, dtype="Float64"), "duration": list(dur),
                          "service": pd.array(service, dtype="string"), "transport": "tcp", "pkts_s2c": list(s2c),
                          "state": list(state), "blocked": pd.array([False] * len(rows), dtype="boolean")})
    got, expected = timing.flow_timing(flows), _flow_timing_reference(flows)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        a, b = a.astype({"key": object, "metric": object}), b.astype({"key": object, "metric": object})
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_exact=True)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.floats(0, 500)), st.one_of(st.none(), st.just(float("nan")), st.floats(0, 9)),
                          st.booleans()), min_size=1, max_size=20))
def test_rows_with_value_are_rows_with_any_metric_or_courier(rows) -> None:
    rtt, ttfb, courier = zip(*rows)
    flows = pd.DataFrame({"rtt_ms": pd.array(rtt, dtype="Float64"), "tls_handshake_ms": pd.array([None] * len(rows), dtype="Float64"),
                          "ttfb_ms": np.array([np.nan if v is None else v for v in ttfb], float)})
    want = [i for i, (r, t, c) in enumerate(rows) if c or r is not None or (t is not None and not np.isnan(t))]
    assert timing._rows_with_value(flows, np.array(courier, bool)).tolist() == want


# --------------------------------------------------------------------------- rst_origin, _rows_of

@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["17.1.1.1", "17.1.1.2", "17.1.1.3", "2001:db8::4"]), st.sampled_from([None, "reset", "reset_after_handshake", "no_response"]),
                          st.sampled_from([np.nan, 52.0, 53.0, 64.0]), st.sampled_from([np.nan, 52.0, 54.0, 64.0])),
                min_size=1, max_size=20), st.data())
def test_rst_origin_same_as_every_row_in_python(rows, data) -> None:
    flows = pd.DataFrame(rows, columns=["server_ip", "block_reason", "_s_ttl", "_s_rst_ttl"])
    flows["server_ip"] = flows["server_ip"].astype("string")
    picked = np.array(sorted(data.draw(st.sets(st.integers(0, len(rows) - 1), min_size=1))), np.int64)
    notes, injected = rst_origin(flows, picked)
    for j, i in enumerate(picked.tolist()):
        server, reason, own, rst = rows[i]
        others = [r[2] for r in rows if r[0] == server and np.isfinite(r[2])]
        ref = own if np.isfinite(own) else (min(set(others), key=lambda t: (-others.count(t), t)) if others else None)
        if reason not in RESET_REASONS or not np.isfinite(rst) or ref is None:
            assert (notes[j], injected[j]) == ("", False)
        else:
            assert injected[j] == (abs(int(rst) - int(ref)) > TTL_SLACK)
            assert f"TTL {int(rst)}" in notes[j] or f"({int(rst)})" in notes[j]
            if not np.isfinite(own):
                assert f"{server}'s packets in {len(others)} other flow" in notes[j]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-5, 40), max_size=30, unique=True), st.lists(st.integers(-8, 45), max_size=30), st.booleans())
def test_rows_of_same_as_index_lookup(uids, wanted, ordered) -> None:
    uids = np.array(sorted(uids) if ordered else uids, np.int64)
    wanted = np.array(wanted, np.int64)
    assert _rows_of(uids, wanted).tolist() == pd.Index(uids).get_indexer(wanted).tolist()


@settings(max_examples=60, deadline=None)
@given(st.permutations(list(range(30))), st.integers(0, 29), st.lists(st.integers(-8, 70), max_size=30))
def test_rows_of_dense_uids_by_table(order, gone, wanted) -> None:
    # Finished flows' uids: 0..n-1 (some missing) in an order of their own, read through the table.
    uids = np.array([u for u in order if u != gone], np.int64)
    wanted = np.array(wanted, np.int64)
    assert rows_module._dense(uids) and not rows_module._dense(uids * 3)
    assert rows_module._rows_by_table(uids, wanted).tolist() == pd.Index(uids).get_indexer(wanted).tolist()
    assert _rows_of(uids, wanted).tolist() == pd.Index(uids).get_indexer(wanted).tolist()


# --------------------------------------------------------------------------- reasons: columns without objects

PORTS = st.sampled_from([-1, 0, 1, 2, 443, 65535, 65536, 70000])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(PORTS, PORTS), max_size=30), st.lists(st.tuples(PORTS, PORTS), min_size=1, max_size=10),
       st.sampled_from([np.int32, np.int64, np.uint16, np.uint32]))
def test_quoted_pairs_same_as_a_set_of_pairs(flows_ports, quoted_ports, dtype) -> None:
    if np.dtype(dtype).kind == "u":                  # an unsigned column holds no negative port
        flows_ports = [(c % 65536, s % 65536) if dtype == np.uint16 else (abs(c), abs(s)) for c, s in flows_ports]
    client = pd.Series(np.array([c for c, _ in flows_ports], dtype=dtype))
    server = pd.Series(np.array([s for _, s in flows_ports], dtype=dtype))
    qc, qs = (np.array(v, np.int64) for v in zip(*quoted_ports))
    wanted = set(zip(qc.tolist(), qs.tolist()))
    expected = [i for i, pair in enumerate(flows_ports) if pair in wanted]
    assert reasons._quoted_pairs(client, server, qc, qs).tolist() == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.tuples(st.integers(0, 3), st.sampled_from(["", "a", "Ünïcode ß", "x" * 40, "b, c"]))),
                max_size=40))
def test_reason_and_evidence_columns_same_as_object_arrays(rows) -> None:
    n = len(rows)
    reason = np.full(n, -1, np.int8)
    expected_reason = np.full(n, None, dtype=object)
    expected_evidence = np.full(n, None, dtype=object)
    claims = []
    for k in range(4):                               # each claim's rows, its distinct texts and codes
        mine = np.array([i for i, r in enumerate(rows) if r is not None and r[0] == k], np.int64)
        texts = [rows[i][1] for i in mine.tolist()]
        codes, distinct = pd.factorize(pd.Series(texts, dtype=object))
        claims.append((mine, list(distinct), codes.astype(np.int64)))
        reason[mine] = k
        expected_reason[mine] = reasons.REASONS[k]
        expected_evidence[mine] = texts
    pd.testing.assert_extension_array_equal(reasons._string(reasons._reason_column(reason)),
                                            pd.array(expected_reason, dtype="string"))
    pd.testing.assert_extension_array_equal(reasons._string(reasons._evidence(n, claims)),
                                            pd.array(expected_evidence, dtype="string"))


# --------------------------------------------------------------------------- blocked rows, worst first

@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.sampled_from(["apns", "mdm", "other", "web", "dns"])),
                          st.sampled_from([0.0, 1.0, 2.5, 7.0]), st.booleans()), min_size=1, max_size=25), st.randoms())
def test_flow_rows_come_in_the_blocked_tables_order(rows, rnd) -> None:
    # The blocked table's sort then moves nothing (so copies nothing).
    category, ts, blocked = zip(*rows)
    ids = list(range(len(rows)))
    rnd.shuffle(ids)
    text = pd.array(["x"] * len(rows), dtype="string")
    flows = pd.DataFrame({"flow_id": np.array(ids, np.int64), "transport": text, "client_ip": text, "client_port": 1,
                          "server_ip": text, "server_port": 443, "category": pd.array(category, dtype="string"),
                          "service": text, "server_name": text, "state": text, "ts_start": np.array(ts),
                          "block_reason": pd.array(["reset" if b else None for b in blocked], dtype="string"),
                          "blocked": pd.array(blocked, dtype="boolean")})
    part = bt._flow_rows(flows)
    if not any(blocked):
        assert part is None
        return
    expected = part.assign(_rank=bt._severity_ranks(part["category"])).sort_values(["_rank", "ts", "flow_id"], kind="stable")
    assert expected.index.tolist() == list(range(len(part)))
    assert sorted(part["flow_id"].tolist()) == sorted(i for i, b in zip(ids, blocked) if b)


def test_severity_ranks_put_unknown_and_missing_last() -> None:
    severity = bt._phrases()["severity"]
    known = next(iter(severity))
    got = bt._severity_ranks(pd.Series(pd.array([known, "no-such-category", None], dtype="string")))
    assert got.tolist() == [severity[known], len(severity), len(severity)]


# --------------------------------------------------------------------------- reasons: counts
COUNT_COLUMNS = st.sampled_from(["int64", "int32", "uint16", "float64", "Int64", "object"])


@given(st.lists(st.one_of(st.none(), st.integers(0, 2**31 - 1)), max_size=20), COUNT_COLUMNS)
@settings(max_examples=200, deadline=None)
def test_counts_compare_as_the_filled_floats(values, kind) -> None:
    """counts keeps an integer column's own array; every comparison the rules make on it gives
    what the float64 copy with nulls as 0 gave."""
    if kind in ("int64", "int32", "uint16"):
        values = [v or 0 for v in values]
        if kind == "uint16":
            values = [v % 65536 for v in values]
    column = pd.Series(values, dtype=kind if kind != "object" else object)
    plain = pd.to_numeric(column, errors="coerce").fillna(0).to_numpy(np.float64)
    got = reasons.counts(column)
    assert len(got) == len(plain)
    for other in (0, 1, plain[::-1] if len(plain) else plain):
        assert np.array_equal(got > other, plain > other) and np.array_equal(got <= other, plain <= other)
        assert np.array_equal(got == other, plain == other)


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 4), st.integers(0, 6), st.integers(0, 3)), max_size=20),
       st.booleans())
@settings(max_examples=100, deadline=None)
def test_unacknowledged_synack_is_the_float_rule(rows, narrow) -> None:
    """unacknowledged_synack on integer columns (int32 as assemble leaves _syns and _c_payload)
    is the rule on their float64 copies."""
    hand, syns, sent, payload = (list(c) for c in zip(*rows)) if rows else ([], [], [], [])
    small = np.int32 if narrow else np.int64
    flows = pd.DataFrame({"_handshake": np.array(hand, bool), "_syns": np.array(syns, small),
                          "pkts_c2s": np.array(sent, np.int64), "_c_payload": np.array(payload, small)})
    f = lambda name: flows[name].to_numpy(np.float64)        # noqa: E731
    want = flows["_handshake"].to_numpy(bool) & (f("_syns") > 0) & (f("pkts_c2s") <= f("_syns")) & (f("_c_payload") == 0)
    assert np.array_equal(reasons.unacknowledged_synack(flows), want)
