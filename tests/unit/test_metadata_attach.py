"""attach()'s building blocks agree with the plain operations they replaced: the compiled text
gather with Arrow's take, the DNS naming with pandas' merge_asof (ties included), the uid
lookup with Index.get_indexer, the codes handed to classify with encoding the column."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from apnstrace.metadata.attach import _codes, _dns_named, _names, _positions
from apnstrace.metadata.column_codes import Codes, hand_over
from apnstrace.metadata.column_codes import column_codes as codes_of
from apnstrace.metadata.dns_records import DnsRecords
from apnstrace.metadata.gather import flows_per_row, gather_text
from apnstrace.metadata.meta_log import take_or_null

texts = st.lists(st.one_of(st.none(), st.text(max_size=6)), max_size=30)


@settings(max_examples=200, deadline=None)
@given(texts, st.lists(st.integers(-3, 40), max_size=60))
def test_gather_is_take(values: list, rows: list) -> None:
    column = pa.array(values, pa.large_string())
    rows = np.array([r if r < len(values) else -1 for r in rows], np.int64)
    got = gather_text(column, rows)
    assert got.type == pa.large_string()
    assert got.to_pylist() == take_or_null(column, rows).to_pylist()


@settings(max_examples=200, deadline=None)
@given(texts, st.lists(st.integers(-3, 40), max_size=20), st.lists(st.integers(-3, 30), max_size=60))
def test_gather_through_records_is_take_of_the_composed_rows(values: list, rows: list, through: list) -> None:
    column = pa.array(values, pa.large_string())
    rows = np.array([r if r < len(values) else -1 for r in rows] + [-1], np.int64)   # a last slot -1
    through = np.array([t if t < len(rows) else -1 for t in through], np.int64)
    composed = np.array([rows[t] if t >= 0 else -1 for t in through.tolist()], np.int64)
    got = gather_text(column, rows, through)
    assert got.type == pa.large_string()
    assert got.to_pylist() == take_or_null(column, composed).to_pylist()
    # the same with the flows per record counted once for many columns (attach's way)
    counted = gather_text(column, rows, through, uses=flows_per_row(through, len(rows)))
    assert counted.type == pa.large_string() and counted.to_pylist() == got.to_pylist()
    assert counted.validate(full=True) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=90)), min_size=1, max_size=30), st.data())
def test_gather_of_long_values_is_take(values: list, data) -> None:
    """Values of any length (the byte copy runs per value, short or long), from a sliced column."""
    skip = data.draw(st.integers(0, len(values) - 1))
    column = pa.array(values, pa.large_string()).slice(skip)
    rows = np.array(data.draw(st.lists(st.integers(-1, len(column) - 1), max_size=60)), np.int64)
    assert gather_text(column, rows).to_pylist() == take_or_null(column, rows).to_pylist()


def test_gather_reads_a_sliced_column() -> None:
    column = pa.array(["a", "bb", None, "ccc", "d"], pa.large_string()).slice(1, 3)
    assert gather_text(column, np.array([2, -1, 0, 1])).to_pylist() == ["ccc", None, "bb", None]


def _merge_asof_names(flows: pd.DataFrame, dns: DnsRecords) -> dict[int, str]:
    """The rule as attach() wrote it before: merge_asof over every flow."""
    distinct = pd.unique(flows["server_ip"].dropna())
    index = {a: i for i, a in enumerate(distinct)}
    codes = np.array([index.get(a, -1) if a is not None else -1 for a in flows["server_ip"]], np.int64)
    answers = pd.DataFrame({"ts": dns.ts, "server_ip": [index.get(a, -2) for a in dns.address.to_pylist()],
                            "dns_name": dns.name.to_pylist()}).sort_values("ts")
    wanted = pd.DataFrame({"ts": flows["ts_start"].to_numpy(), "server_ip": codes, "row": np.arange(len(flows))})
    wanted = wanted.sort_values("ts")
    matched = pd.merge_asof(wanted, answers, on="ts", by="server_ip", direction="backward")
    ok = matched["dns_name"].notna().to_numpy()
    return dict(zip(matched["row"].to_numpy()[ok].tolist(), matched["dns_name"].to_numpy()[ok].tolist()))


addresses = st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3", "2001:db8::1", None])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 8), addresses), min_size=1, max_size=25),
       st.lists(st.tuples(st.integers(0, 8), addresses.filter(lambda a: a is not None), st.sampled_from("abcde")),
                min_size=1, max_size=25))
def test_dns_naming_is_merge_asof(flows: list, answers: list) -> None:
    frame = pd.DataFrame({"ts_start": [float(t) for t, _ in flows],
                          "server_ip": pd.array([a for _, a in flows], dtype="string")})
    dns = DnsRecords(ts=[float(t) for t, _, _ in answers], address=[a for _, a, _ in answers],
                     name=[f"{n}{i}.example" for i, (_, _, n) in enumerate(answers)])
    unnamed = _some_rows(flows)
    rows, picked = _dns_named(unnamed, frame["server_ip"], frame["ts_start"].to_numpy(), dns)
    names = dns.name.to_pylist()
    expected = {r: name for r, name in _merge_asof_names(frame, dns).items() if unnamed[r]}
    assert dict(zip(rows.tolist(), [names[i] for i in picked.tolist()])) == expected


def _some_rows(flows: list) -> np.ndarray:
    """The rows _dns_named is asked about (those no SNI or Host named): a varied mask."""
    return np.array([(7 * i + t) % 3 != 0 for i, (t, _) in enumerate(flows)], bool)


@settings(max_examples=200, deadline=None)
@given(st.sets(st.integers(0, 300), max_size=40), st.lists(st.integers(-2, 320), max_size=60))
def test_positions_is_get_indexer(uids: set, wanted: list) -> None:
    uid = np.array(sorted(uids), np.int64)
    wanted = np.array(wanted, np.int64)
    assert _positions(uid, wanted)[0].tolist() == pd.Index(uid).get_indexer(wanted).tolist()


@given(st.sets(st.integers(0, 300), max_size=40), st.lists(st.integers(-2, 320), max_size=60),
       st.booleans())
def test_positions_count_the_flows_per_row(uids: set, wanted: list, sparse: bool) -> None:
    """The counts made in the lookup's pass are flows_per_row of its positions (flows may share
    a uid; sparse: the search path)."""
    uid = np.array(sorted(uids), np.int64) * (10**9 if sparse else 1)
    wanted = np.array(wanted, np.int64) * (10**9 if sparse else 1)
    at, uses = _positions(uid, wanted)
    assert at.tolist() == pd.Index(uid).get_indexer(wanted).tolist()
    assert uses.dtype == np.int64
    assert uses.tolist() == flows_per_row(at, len(uid) + 1).tolist()


def test_positions_at_the_span_edges() -> None:
    """The table lookup reads the lowest and highest uid and nothing past them."""
    uid = np.array([5, 6, 9, 12], np.int64)
    wanted = np.array([4, 5, 6, 7, 9, 11, 12, 13, -1, 5, 12], np.int64)
    assert _positions(uid, wanted)[0].tolist() == pd.Index(uid).get_indexer(wanted).tolist()


def test_positions_of_sparse_uids_search() -> None:
    uid = np.array([3, 10**9, 10**12], np.int64)
    assert _positions(uid, np.array([10**12, 4, 3, -1]))[0].tolist() == [2, -1, 0, -1]


def _per_row(column) -> tuple[np.ndarray, pa.Array]:
    found = codes_of(pd.Series(column))
    return found.per_row(), found.distinct


def test_handed_codes_are_read_once_and_say_the_same() -> None:
    values = pa.array(["b", None, "a", "b", ""], pa.large_string())
    rows = np.array([0, 2, -1, 3, 1, 4, 2])
    column = pd.array(gather_text(values, rows), dtype="string")
    hand_over(column, _codes(values, rows))
    got_codes, got_distinct = _per_row(column)
    assert got_codes is not None and len(set(got_distinct.to_pylist())) == len(got_distinct)
    decoded = [got_distinct[c].as_py() if c >= 0 else None for c in got_codes.tolist()]
    assert decoded == ["b", "a", None, "b", None, "", "a"]
    # read again: the codes kept by column_codes, same values
    again_codes, again_distinct = _per_row(column)
    assert [again_distinct[c].as_py() if c >= 0 else None for c in again_codes.tolist()] == decoded


def test_handed_codes_go_with_their_column() -> None:
    from apnstrace.metadata import column_codes
    column = pd.array(pa.array(["x", "y"], pa.large_string()), dtype="string")
    hand_over(column, Codes(np.array([0, 1]), pa.array(["x", "y"], pa.large_string())))
    key = id(column._pa_array)
    assert key in column_codes._HANDED
    del column
    import gc
    gc.collect()
    assert key not in column_codes._HANDED


def _names_reference(sni: list, sni_rows: list, sni_at: list, host: list, host_rows: list, host_at: list):
    """Server names as attach() built them before: text work on every source value, the codes
    encoded from concat([sni values, stripped host values]) value by value."""
    def value(values, rows, at):
        k = at if at >= 0 else -1
        r = (rows + [-1])[k] if k >= 0 else -1
        return values[r] if r >= 0 else None
    stripped = [h.rsplit(":", 1)[0] if h is not None and h.count(":") == 1 else h for h in host]
    names, kinds = [], []
    for s_at, h_at in zip(sni_at, host_at):
        s = value(sni, sni_rows, s_at)
        h = value(host, host_rows, h_at)
        hs = value(stripped, host_rows, h_at)
        names.append(s if s else (hs if h else None))
        kinds.append("sni" if s else ("http-host" if h else None))
    distinct = pa.array(sni + stripped, pa.large_string()).dictionary_encode().dictionary.to_pylist()
    return names, kinds, distinct


texts_ports = st.lists(st.one_of(st.none(), st.sampled_from(["", "a", "b.c", "a:80", "b.c:8", "::1", "a:", ":x"])),
                       max_size=12)


@settings(max_examples=300, deadline=None)
@given(texts_ports, texts_ports, st.data())
def test_names_on_distinct_values_are_the_names_of_every_value(sni: list, host: list, data) -> None:
    """_names does its text work on the distinct source values: the same names and sources,
    and name codes numbered as when encoded from every source value."""
    def picked(values):
        rows = data.draw(st.lists(st.integers(-1, len(values) - 1), max_size=8))
        at = data.draw(st.lists(st.integers(-1, len(rows)), min_size=6, max_size=6))
        at = [a if a < len(rows) else -1 for a in at]
        return rows, at
    sni_rows, sni_at = picked(sni)
    host_rows, host_at = picked(host)
    arr = lambda v: np.array(v, np.int64)      # noqa: E731
    s_at, h_at = arr(sni_at), arr(host_at)
    if data.draw(st.booleans()):                # one record per flow for both, as attach() has it
        host_rows = host_rows + [-1] * (len(sni_rows) - len(host_rows))
        sni_rows = sni_rows + [-1] * (len(host_rows) - len(sni_rows))
        h_at = s_at = arr([a if a < len(sni_rows) else -1 for a in sni_at])
        sni_at = host_at = s_at.tolist()
    (name, codes), (source, kind) = _names(
        (pa.array(sni, pa.large_string()), arr(sni_rows + [-1]), s_at),
        (pa.array(host, pa.large_string()), arr(host_rows + [-1]), h_at),
        pd.Series(pd.array([None] * len(sni_at), dtype="string")), np.zeros(len(sni_at)), DnsRecords())
    names, kinds, distinct = _names_reference(sni, sni_rows, sni_at, host, host_rows, host_at)
    assert name.to_pylist() == names
    assert source.to_pylist() == kinds
    assert codes.distinct.to_pylist() == distinct
    per_row = codes.per_row()
    assert [distinct[c] if c >= 0 else None for c in per_row.tolist()] == names


@settings(max_examples=100, deadline=None)
@given(st.lists(texts, min_size=1, max_size=3), st.integers(0, 3))
def test_one_array_holds_the_chunks_values(chunks: list, skip: int) -> None:
    from apnstrace.metadata.column_codes import one_array
    arrays = [pa.array(c, pa.large_string()) for c in chunks]
    arrays[0] = arrays[0].slice(min(skip, len(arrays[0])))
    chunked = pa.chunked_array(arrays, pa.large_string())
    got = one_array(chunked)
    assert isinstance(got, pa.Array) and got.to_pylist() == chunked.to_pylist()
    assert one_array(arrays[0]) is arrays[0]
    codes, distinct = _per_row(pd.array(chunked, dtype="string"))
    assert [distinct[c].as_py() if c >= 0 else None for c in codes.tolist()] == chunked.to_pylist()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 8), addresses), min_size=1, max_size=25),
       st.lists(st.tuples(st.integers(0, 8), addresses.filter(lambda a: a is not None), st.sampled_from("abcde")),
                min_size=1, max_size=25), st.randoms(use_true_random=False))
def test_dns_naming_through_factored_codes_is_merge_asof(flows: list, answers: list, rng) -> None:
    """The server addresses' codes handed over factored (flows.finalize.ServerCodes): a row per
    flow into labels (some unused, an address under several), a lookup from labels to codes."""
    frame = pd.DataFrame({"ts_start": [float(t) for t, _ in flows],
                          "server_ip": pd.array([a for _, a in flows], dtype="string")})
    present = list(dict.fromkeys(a for _, a in flows if a is not None))
    rng.shuffle(present)
    labels = present + present[:2] + ["192.0.2.9"]          # duplicates and an unused label
    rng.shuffle(labels)
    lookup = np.array([present.index(a) if a in present else -1 for a in labels] + [-1], np.int64)
    label_of = {a: [i for i, b in enumerate(labels) if b == a] for a in present}
    rows = np.array([rng.choice(label_of[a]) if a is not None else -1 for _, a in flows], np.int64)
    hand_over(frame["server_ip"].array, Codes(rows, pa.array(present, pa.string()), lookup))
    dns = DnsRecords(ts=[float(t) for t, _, _ in answers], address=[a for _, a, _ in answers],
                     name=[f"{n}{i}.example" for i, (_, _, n) in enumerate(answers)])
    unnamed = _some_rows(flows)
    got_rows, picked = _dns_named(unnamed, frame["server_ip"], frame["ts_start"].to_numpy(), dns)
    names = dns.name.to_pylist()
    expected = {r: name for r, name in _merge_asof_names(frame, dns).items() if unnamed[r]}
    assert dict(zip(got_rows.tolist(), [names[i] for i in picked.tolist()])) == expected
