"""The metadata log resolves to exactly what writing into one FlowMeta per flow, in order, gives.

The reference below is the collector's former per-flow code (each write as it was done on a
FlowMeta); random write sequences, as rows and as column batches, must resolve to the same records.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import given, settings, strategies as st

from apnstrace.metadata.meta_log import FlowMeta, MetaLog, MetaTable

TEXT = st.sampled_from([None, "", "a", "b", "h2", "TLS 1.2", "x\\x00"])
TS = st.sampled_from([None, 0.0, 1.5, 2.25])
DIR = st.sampled_from([0, 1])
UID = st.integers(0, 4)

WRITES = st.one_of(
    st.tuples(st.just("hello"), UID, TEXT, TEXT, DIR, st.floats(0, 10)),
    st.tuples(st.just("flight"), UID, TS, TEXT, TEXT, TEXT, TEXT),
    st.tuples(st.just("request"), UID, TEXT, TEXT, TEXT, TEXT, DIR),
    st.tuples(st.just("response"), UID, st.sampled_from([None, 200, 404])),
    st.tuples(st.just("query"), UID, TEXT),
    st.tuples(st.just("touch"), UID),
    st.tuples(st.just("late_alert"), UID, DIR, st.sampled_from(["fatal/unknown_ca", "warning/close_notify"])),
)


def reference(writes) -> dict[int, FlowMeta]:
    flows: dict[int, FlowMeta] = {}
    for kind, uid, *v in writes:
        if kind == "late_alert":
            meta = flows.get(uid)
            if meta is not None and meta.client_dir == v[0] and meta.client_alert is None:
                meta.client_alert = v[1]
            continue
        meta = flows.setdefault(uid, FlowMeta())
        if kind == "hello":
            meta.sni, meta.alpn, meta.client_dir, meta.hello_ts = v
        elif kind == "flight":
            server_ts, version, alpn, alert, issuer = v
            if server_ts is not None and meta.server_ts is None:
                meta.server_ts = server_ts
            meta.tls_version = version or meta.tls_version
            meta.server_alpn = meta.server_alpn or alpn
            meta.tls_alert = meta.tls_alert or alert
            meta.cert_issuer = issuer or meta.cert_issuer
        elif kind == "request":
            meta.http_method, meta.http_host, meta.http_path, meta.http_user_agent = v[:4]
            meta.client_dir = v[4] if meta.client_dir is None else meta.client_dir
        elif kind == "response":
            meta.http_status = v[0]
        elif kind == "query":
            meta.dns_query = meta.dns_query or v[0]
    return flows


def logged(writes, batch_every: int) -> MetaLog:
    """The writes into a log: runs of one kind as column batches every `batch_every` writes."""
    log = MetaLog()
    run: list = []

    def flush():
        if run:
            kind = run[0][0]
            names = {"hello": ("sni", "alpn", "client_dir", "hello_ts"),
                     "flight": ("server_ts", "tls_version", "server_alpn", "tls_alert", "cert_issuer"),
                     "request": ("http_method", "http_host", "http_path", "http_user_agent", "client_dir"),
                     "response": ("http_status",), "query": ("dns_query",), "touch": (),
                     "late_alert": ("client_dir", "client_alert")}[kind]
            columns = {name: [w[2 + j] for w in run] for j, name in enumerate(names)}
            log.batch(kind, np.array([w[1] for w in run], np.int64), **columns)
            run.clear()

    for i, (kind, uid, *values) in enumerate(writes):
        if batch_every and i % batch_every == 0 and kind not in ("late_alert",):
            if run and run[0][0] != kind:
                flush()
            run.append((kind, uid, *values))
            continue
        flush()
        log.row(kind, uid, *values)
    flush()
    return log


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(WRITES, max_size=40), st.sampled_from([0, 1, 2, 3]))
def test_the_log_resolves_to_the_per_flow_records(writes, batch_every) -> None:
    expected = {u: dataclasses.asdict(m) for u, m in reference(writes).items()}
    table = logged(writes, batch_every).resolve()
    assert {u: dataclasses.asdict(m) for u, m in table.metas().items()} == expected
    assert list(table.uid) == sorted(expected)
    # and back: FlowMeta records (what a merge of several files hands over) give the same table
    again = MetaTable.from_metas(table.metas())
    assert again.metas() == table.metas()


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(WRITES, max_size=40), st.sampled_from([0, 1, 2]), st.sets(UID), st.lists(WRITES, max_size=10))
def test_forgotten_flows_leave_the_others_as_they_were(writes, batch_every, gone, later) -> None:
    """forget() (live windows) drops the flows asked for; the rest resolve as before, and writes
    after it (later chunks) still count in order."""
    log = logged(writes, batch_every)
    log.forget(np.array(sorted(gone), np.int64))
    for kind, uid, *values in later:
        log.row(kind, uid, *values)
    kept = [w for w in writes if w[1] not in gone] + later
    expected = {u: dataclasses.asdict(m) for u, m in reference(kept).items()}
    assert {u: dataclasses.asdict(m) for u, m in log.resolve().metas().items()} == expected


def test_hellos_since_a_mark_are_the_last_per_flow() -> None:
    log = MetaLog()
    log.row("hello", 1, "old", None, 0, 1.0)
    mark = log.seq
    log.batch("hello", np.array([2, 1], np.int64), sni=["b", "new"], alpn=[None, "h2"], client_dir=[0, 1],
              hello_ts=[2.0, 3.0])
    log.row("hello", 2, "b2", None, 0, 4.0)
    uid, cols = log.kind_since("hello", mark)
    assert dict(zip(uid.tolist(), zip(cols["sni"].to_pylist(), cols["alpn"].to_pylist()))) == \
        {1: ("new", "h2"), 2: ("b2", None)}
    log.resolve()                   # joins the writes so far into one batch
    mark = log.seq
    log.batch("hello", np.array([3], np.int64), sni=["c"], alpn=[None], client_dir=[1], hello_ts=[5.0])
    uid, cols = log.kind_since("hello", mark)
    assert uid.tolist() == [3] and cols["sni"].to_pylist() == ["c"]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(WRITES, max_size=40), st.sampled_from([0, 1, 2, 3]))
def test_padded_rows_are_each_fields_rows_and_a_last_minus_one(writes, batch_every) -> None:
    """What attach gathers through: every field's rows with a -1 appended, the rows themselves
    (fields picked alike share one array); and the same from a table without them."""
    table = logged(writes, batch_every).resolve()
    plain = MetaTable(table.uid, table.sources)
    for name, (_, rows) in table.sources.items():
        for got in (table.rows_padded(name), plain.rows_padded(name)):
            assert got.dtype == np.int64
            assert got.tolist() == rows.tolist() + [-1]
        assert np.shares_memory(table.rows_padded(name), rows) or not len(rows)
    assert table.rows_padded("sni") is table.rows_padded("alpn")
