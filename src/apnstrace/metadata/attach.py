"""Put what the parsers found into the flows frame: TLS, HTTP and DNS-derived names."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..flows.finalize import UID
from ..heap import hand_back_freed
from ..reader.walk import COMPILED, njit
from .collect import DnsRecords, MetadataCollector
from .column_codes import Codes, column_codes, hand_over, one_array
from .flow_numbers import flow_numbers
from .gather import flows_per_row, gather_text
from .meta_log import MetaTable

TEXT = ("sni", "alpn", "tls_version", "tls_alert", "cert_issuer", "http_method", "http_host", "http_path",
        "http_user_agent")
NAME_SOURCE = "server_name_source"      # sni, http-host or dns: which evidence named the server
DNS_QUERY = "dns_query"                  # a DNS flow's first question (for the classifier)
TLS_EVIDENCE = ("client_alert", "server_alpn")   # hidden: what block reasons read (docs/blocked.md)
CLASSIFIED = ("sni", "alpn", "http_host", "http_path", DNS_QUERY)   # text columns classify() reads
SOURCES = ("sni", "http-host", "dns")

# The text columns in the order they are made: those reading the same record rows (a
# ClientHello's, a server flight's, a request's) one after the other, so each rows array goes
# early; placed in the frame in the order of TEXT + (DNS_QUERY,) + TLS_EVIDENCE.
GATHERED = ("sni", "alpn", "tls_version", "tls_alert", "cert_issuer", "server_alpn", "http_method", "http_host",
            "http_path", "http_user_agent", DNS_QUERY, "client_alert")
NUMBERS = ("http_status", "hello_ts", "server_ts")      # flow_numbers' fields, in its order

# A column as it is built: its source values; the row of them per metadata record, with a last
# slot -1 (the row of a flow without a record); per flow, its record (-1: none). Flows reach
# their values through their record, so no row column per flow is spelled out for each field.
Picked = tuple[pa.Array, np.ndarray, np.ndarray]


def attach(flows: pd.DataFrame, collected: MetadataCollector, last: bool = False) -> pd.DataFrame:
    """Fill sni, alpn, server_name, http_*, tls_*, cert_issuer, tls_handshake_ms by flow uid.
    `last`: no one reads the collector's metadata after this (its finish() came before): its
    log is let go (MetadataCollector.table); its DNS records stay."""
    n = len(flows)
    out: dict[str, object] = {}             # the columns made, in the order they are placed
    # A collector resolves its metadata log; a merge of several hands over FlowMeta records.
    if not hasattr(collected, "table"):
        table = MetaTable.from_metas(collected.flows)
    else:
        table = collected.table(last=True) if last else collected.table()
        if last:    # the log's small arrays, freed: holes the flow-sized columns cannot use (~75 MB)
            hand_back_freed()
    memo: dict[int, tuple[np.ndarray, pa.Array]] = {}  # source values' encodings (sni, host: twice)
    named = None
    if len(table) and n:
        at, uses = _positions(table.uid, flows[UID].to_numpy())  # uses: flows per record
        # Each field's source values (a few thousand: kept) and record rows, out of the table,
        # which is let go: a rows array (one per record each) goes once the last column reading
        # it is made, not at the end beside them all (engine_10m's ~45 MB of them).
        values = {name: table.sources[name][0] for name in GATHERED + NUMBERS}
        rows = {name: table.rows_padded(name) for name in GATHERED + NUMBERS}
        del table

        def found(name: str, keep: bool = False) -> Picked:
            return values[name], rows[name] if keep else rows.pop(name), at

        # Server names first: their per-flow temporaries (picks, DNS lookups: ~45 MB on
        # engine_10m) are freed, and given back, before the dozen text columns are made.
        # With the trim above: attach's peak 1,130-1,136 -> ~1,012 MB (with pipeline's trims).
        named = _names(found("sni", keep=True), found("http_host", keep=True), flows["server_ip"],
                       flows["ts_start"].to_numpy(), collected.dns, memo)
        if last:
            hand_back_freed()       # those temporaries, else kept resident beside the columns
        code, code_missing, ms, ms_missing, server = flow_numbers(at, *(found(name)[:2] for name in NUMBERS))
        made: dict[str, pd.arrays.ArrowStringArray] = {}
        for name in GATHERED:
            picked = found(name)
            made[name] = column = _string(gather_text(*picked, uses=uses))
            if name in CLASSIFIED:
                hand_over(column, _codes(*picked, memo=memo))
        del picked
        out.update((name, made[name]) for name in TEXT + (DNS_QUERY,) + TLS_EVIDENCE)
        out["http_status"] = pd.arrays.IntegerArray(code, code_missing)
        out["tls_handshake_ms"] = pd.arrays.FloatingArray(ms, ms_missing)
        out["server_hello_ts"] = server
    for name in (DNS_QUERY,) + TLS_EVIDENCE:
        if name not in out and name not in flows:
            out[name] = pd.array([None] * n, dtype="string")
    if "server_hello_ts" not in out and "server_hello_ts" not in flows:
        out["server_hello_ts"] = np.full(n, np.nan)
    if named is None:
        sni, host = _each(_text(flows["sni"])), _each(_text(flows["http_host"]))
        named = _names(sni, host, flows["server_ip"], flows["ts_start"].to_numpy(), collected.dns, memo)
    (name, name_codes), (source, kind) = named
    out["server_name"] = column = _string(name)
    hand_over(column, name_codes)
    out[NAME_SOURCE] = column = _string(source)
    hand_over(column, Codes(kind, pa.array(SOURCES, pa.large_string())))
    return _placed(flows, out)


def _string(values: pa.Array) -> pd.arrays.ArrowStringArray:
    """A large_string array as the column pandas' "string" dtype makes of it (pd.array's dtype
    lookup and checks cost ~15-100 µs a column)."""
    return pd.arrays.ArrowStringArray(pa.chunked_array([values]))


def _placed(flows: pd.DataFrame, out: dict) -> pd.DataFrame:
    """flows with each column of `out` set as `flows[name] = column` would, in order, the
    caller's frame left as it is. A column already there is replaced by its position (a
    __setitem__ looks its name up and checks the value first)."""
    flows = flows.copy(deep=False)          # copy-on-write (pandas 3): the caller's frame stays as it is
    columns = flows.columns
    unique = columns.is_unique
    for name, column in out.items():
        if not isinstance(column, pd.arrays.ArrowStringArray):
            # made here, held by no one else: placed as a Series on the frame's index, which
            # pandas takes as it is (a bare array is copied: the numeric columns' 4.4 MB)
            column = pd.Series(column, index=flows.index, copy=False)
        if unique and name in columns:
            flows.isetitem(columns.get_loc(name), column)
        else:
            flows[name] = column
            columns = flows.columns
            unique = columns.is_unique
    return flows


def _server_names(flows: pd.DataFrame, dns: DnsRecords) -> tuple[pa.Array, pa.Array]:
    """SNI, else HTTP Host (port stripped), else the name a DNS answer gave the server address
    before the flow started (answers seen later do not count). Arrow columns. (scale/fixups.py
    names a merged capture's flows again with every file's answers.)"""
    (name, _), (source, _) = _names(_each(_text(flows["sni"])), _each(_text(flows["http_host"])),
                                    flows["server_ip"], flows["ts_start"].to_numpy(), dns)
    return name, source


def _each(values: pa.Array) -> Picked:
    """A column of values, one per flow, as Picked."""
    every = np.arange(len(values), dtype=np.int64)
    return values, np.append(every, -1), every


def _names(sni: Picked, host: Picked, server_ip: pd.Series, ts_start: np.ndarray, dns: DnsRecords,
           memo: dict | None = None):
    """_server_names from the columns as built: ((name, its codes and distinct values),
    (source, its code per row into SOURCES, -1: null)). Text work runs on the distinct source
    values (a few hundred), not on every flow or record; `memo`: encodings made already."""
    (sni_values, sni_rows, sni_at), (host_values, host_rows, host_at) = sni, host
    (s_code, s_dist), (h_code, h_dist) = _encoded(sni_values, memo), _encoded(host_values, memo)
    # Per source row (sni's and host's rows, each with a last slot -1): the name it gives, as a
    # row of concat([sni, stripped host]) (-1: none), and its source; sni first.
    s_pick = s_code[sni_rows]
    s_pick = np.where(np.append(_filled(s_dist), False)[s_pick], s_pick, -1)
    h_pick = h_code[host_rows]
    h_pick = np.where(np.append(_filled(h_dist), False)[h_pick], len(s_dist) + h_pick, -1)
    if sni_at is host_at:                           # one record per flow for both (attach's own)
        # composed on the records, then read once per flow (not a dozen passes over the flows)
        both = np.where(s_pick >= 0, s_pick, h_pick)
        pick = both[sni_at]
        kind = np.where(s_pick >= 0, 0, np.where(h_pick >= 0, 1, -1))[sni_at]
    else:
        s_at, h_at = s_pick[sni_at], h_pick[host_at]
        pick = np.where(s_at >= 0, s_at, h_at)
        kind = np.where(s_at >= 0, 0, np.where(h_at >= 0, 1, -1))
    # "host:port" loses its port; a name with several colons (an IPv6 literal) stays as it is
    port = pc.equal(pc.count_substring(h_dist, ":"), 1).fill_null(False)
    stripped = h_dist
    if port.true_count:                             # the regex runs on those values only
        with_port = port.to_numpy(zero_copy_only=False)
        cut = pc.replace_substring_regex(h_dist.filter(port), ":[^:]*$", "")
        stripped = pc.replace_with_mask(h_dist, pa.array(with_port), cut.cast(h_dist.type))
    # pick: row of concat([sni, stripped, dns names]), -1: null; kind: into SOURCES
    named = pa.array([], pa.large_string())
    unnamed = pick < 0
    if len(dns) and unnamed.any():
        rows, answers = _dns_named(unnamed, server_ip, ts_start, dns)
        named = dns.name.take(pa.array(answers))
        pick[rows] = len(s_dist) + len(h_dist) + np.arange(len(rows))
        kind[rows] = 2
    # Distinct values in the order they first show in concat([sni, stripped host, dns names])
    # value by value: the name codes come out numbered as if encoded from those.
    values = pa.concat_arrays([s_dist.cast(pa.large_string()), stripped.cast(pa.large_string()), named])
    name = gather_text(values, pick)
    source = gather_text(pa.array(SOURCES, pa.large_string()), kind)
    return (name, _codes(values, pick)), (source, kind)


def _dns_named(unnamed: np.ndarray, server_ip: pd.Series, ts_start: np.ndarray,
               dns: DnsRecords) -> tuple[np.ndarray, np.ndarray]:
    """Rows `unnamed` marks that a DNS answer names and the answer for each: the last answer, in time
    order, for the server address at or before the flow's start (an answer with the same
    timestamp as the SYN was seen first). Only flows to an answered address are looked at."""
    # Addresses as codes of the flows' distinct server addresses (no Python string per flow);
    # an answered address no flow went to matches nothing. (classify reads the same codes.)
    # Handed over factored (a row per flow into a lookup): read so, not spelled out per flow.
    found_codes = column_codes(server_ip)
    if found_codes is None:
        encoded = _text(server_ip).dictionary_encode()
        rows = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        distinct, lookup = encoded.dictionary, None
    else:
        rows, distinct, lookup = found_codes.rows, found_codes.distinct, found_codes.lookup
    # Each answer's address as a code of `distinct`: the answers' few distinct addresses are
    # looked up among the flows' (hashing those few, not the flows' tens of thousands).
    address = dns.address.dictionary_encode()
    found = pc.index_in(distinct, value_set=address.dictionary.cast(distinct.type))
    found = found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    code_of = np.full(len(address.dictionary) + 1, -1, np.int64)    # last slot: a null address
    code_of[found[found >= 0]] = np.flatnonzero(found >= 0)
    answered = code_of[address.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)]
    hit = np.zeros(len(distinct) + 1, bool)         # last slot: a flow without an address (-1)
    hit[answered[answered >= 0]] = True
    if lookup is not None:                          # through the lookup (its last slot: -1)
        hit = hit[lookup]
    # marked rows to an answered address, as a mask over the flows (not the unnamed rows'
    # numbers and codes: two int64 arrays of most flows)
    wanted = np.flatnonzero(unnamed & hit[rows])
    none = np.empty(0, np.int64)
    if not wanted.size:
        return none, none
    ts = dns.ts
    # Answers in time order, ties as pandas' sort_values("ts") + merge_asof left them (the
    # last of equal times wins): quicksort of the same values gives the same order.
    order = np.argsort(ts, kind="quicksort")
    order = order[answered[order] >= 0]
    by_address = order[np.argsort(answered[order], kind="stable")]    # per address, in time order
    a_code, a_ts = answered[by_address], ts[by_address]
    w_code = rows[wanted] if lookup is None else lookup[rows[wanted]]
    # (address, time) as one sortable integer: a time as how many distinct answer times are at
    # or before it (an answer's at or before a flow's start exactly when its count is too), so
    # the flows' times are not sorted with the answers' (copies of every named flow's)
    times = np.unique(a_ts)
    span = len(times) + 1
    a_key = a_code * span + np.searchsorted(times, a_ts, side="right")
    w_key = w_code * span
    w_key += np.searchsorted(times, ts_start[wanted], side="right")
    last = np.searchsorted(a_key, w_key, side="right") - 1
    del w_key
    ok = last >= 0
    ok[ok] = a_code[last[ok]] == w_code[ok]
    return wanted[ok], by_address[last[ok]]


def _positions(uid: np.ndarray, flow_uid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per flow, its row in `uid` (ascending, distinct), -1: none; and how many flows each row
    of `uid` has (with a last slot 0: the flows_per_row the text columns are gathered with,
    counted in the same pass). A lookup table over the uids' span when that is small next to
    their number (uids are dense), else a search."""
    if not len(uid) or not len(flow_uid):
        at = np.full(len(flow_uid), -1, np.int64)
        return at, flows_per_row(at, len(uid) + 1)
    low, high = int(uid[0]), int(uid[-1])
    if high - low <= 8 * (len(uid) + len(flow_uid)) + (1 << 16):
        if COMPILED:                                # one pass each way, no flow-sized temporaries
            return _looked_up(np.ascontiguousarray(uid, np.int64), np.ascontiguousarray(flow_uid, np.int64),
                              low, high)
        table = np.full(high - low + 2, -1, np.int64)      # last slot: out of the span
        table[uid - low] = np.arange(len(uid), dtype=np.int64)
        inside = (flow_uid >= low) & (flow_uid <= high)
        at = table[np.where(inside, flow_uid - low, high - low + 1)]
    else:
        at = np.searchsorted(uid, flow_uid)
        at = np.minimum(at, len(uid) - 1)
        at = np.where(uid[at] == flow_uid, at, -1)
    return at, flows_per_row(at, len(uid) + 1)


@njit(cache=True)
def _looked_up(uid, flow_uid, low, high):
    """_positions by a table over the uids' span."""
    table = np.full(high - low + 1, -1, np.int64)
    for r in range(len(uid)):
        table[uid[r] - low] = r
    out = np.empty(len(flow_uid), np.int64)
    uses = np.zeros(len(uid) + 1, np.int64)
    for i in range(len(flow_uid)):
        u = flow_uid[i]
        r = table[u - low] if low <= u <= high else -1
        out[i] = r
        if r >= 0:
            uses[r] += 1
    return out, uses


def _codes(values: pa.Array, rows: np.ndarray, through: np.ndarray | None = None,
           memo: dict | None = None) -> Codes:
    """Codes of values[rows] (with `through`: values[rows[through]], rows with a last slot -1)
    into their distinct values (-1: null), encoded on the source values and left factored: a
    code per row of `rows`, and per flow `through` (or a code per value, and `rows`)."""
    codes, distinct = _encoded(values, memo)
    if through is None:
        return Codes(rows, distinct, codes)
    return Codes(through, distinct, codes[rows])


def _encoded(values: pa.Array, memo: dict | None = None) -> tuple[np.ndarray, pa.Array]:
    """(code per value with a last slot -1, for a row -1; the distinct values) as Arrow's
    dictionary_encode numbers them; once per array with a `memo` (by id: its arrays stay held)."""
    got = None if memo is None else memo.get(id(values))
    if got is None:
        encoded = values.dictionary_encode()
        got = (np.append(encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64), -1),
               encoded.dictionary)
        if memo is not None:
            memo[id(values)] = got
    return got


def _text(column: pd.Series) -> pa.Array:
    """A text column as one Arrow large_string array."""
    got = pa.array(column.array) if isinstance(column.array, pd.arrays.ArrowStringArray) else \
        pa.array(column.astype(object).to_numpy(), type=pa.large_string(), from_pandas=True)
    got = one_array(got)
    return got.cast(pa.large_string()) if got.type != pa.large_string() else got


def _filled(text: pa.Array) -> np.ndarray:
    """Not null and not empty."""
    return pc.greater(pc.binary_length(text), 0).fill_null(False).to_numpy(zero_copy_only=False)
