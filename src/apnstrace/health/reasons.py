"""Why a flow never got through: `blocked` and `block_reason` for every flow (docs/blocked.md).

Every rule is a mask over whole columns; the first rule that fires names the reason. Only
the blocked rows get an evidence text built in Python, once per distinct set of the values it says
(a scan's hundreds of thousands of unanswered SYNs share a handful of texts).
"""
from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa

from ..heap import hand_back_freed
from ..options import FlowOptions
from .expectations import tls_expectations

REASONS = ("icmp_unreachable", "reset", "no_response", "tls_alert", "tls_intercepted",
           "reset_after_handshake", "no_server_data")
EVIDENCE = "block_evidence"            # hidden column: the evidence text of a blocked flow
ENDED_SOON_S = 3.0                     # no_response notes a capture that ended this soon after the SYN
ICMP_GRACE_S = 5.0                     # an ICMP error may trail the flow's last frame by this much
LEGACY_TLS = ("SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2")    # certificates and ALPN in clear text

# ICMP destination-unreachable codes (RFC 792/1812, RFC 4443); v4 code 4 is path-MTU discovery.
ICMP4_UNREACHABLE = {0: "net unreachable", 1: "host unreachable", 2: "protocol unreachable",
                     3: "port unreachable", 5: "source route failed", 6: "destination network unknown",
                     7: "destination host unknown", 8: "source host isolated",
                     9: "network administratively prohibited", 10: "host administratively prohibited",
                     11: "network unreachable for TOS", 12: "host unreachable for TOS",
                     13: "communication administratively prohibited", 14: "host precedence violation",
                     15: "precedence cutoff in effect"}
ICMP6_UNREACHABLE = {0: "no route to destination", 1: "administratively prohibited",
                     2: "beyond scope of source address", 3: "address unreachable", 4: "port unreachable",
                     5: "source address failed ingress/egress policy", 6: "reject route to destination"}


def block_reasons(flows: pd.DataFrame, icmp: pd.DataFrame | None, options: FlowOptions,
                  capture_end: float | None = None) -> pd.DataFrame:
    """flows with `blocked`, `block_reason` and the hidden EVIDENCE column filled.

    Reads the hidden per-flow facts of flows/finalize.py EVIDENCE and, when present, the TLS
    facts metadata/attach.py adds (client_alert, server_alpn, server_hello_ts). Each row's
    answer depends only on that row, the ICMP errors and `capture_end` (the last frame of any
    flow; default: of these flows), so a subset of rows can be redone (scale/merge.py).
    """
    flows = flows.copy(deep=False)      # copy-on-write: only the columns set below are new
    n = len(flows)
    # The reason as a code into REASONS (-1: none) and each claim's rows with their texts' codes
    # into its distinct texts: no full-length object arrays (8 bytes a flow each) nor a Python
    # object per flow to convert. The rules' arrays (_Facts) are gone before the columns are made.
    reason = np.full(n, -1, np.int8)
    claims: list[tuple[np.ndarray, list, np.ndarray]] = []
    if n:
        _claim_all(flows, icmp, options, capture_end, reason, claims)
        # The rules' arrays, freed on the heap, given back before the columns are made
        # (engine_10m block_reasons' peak 999-1,004 -> 963-969 MB).
        hand_back_freed()
    flows["blocked"] = pd.arrays.BooleanArray(reason >= 0, np.zeros(n, bool))
    flows["block_reason"] = _string(_reason_column(reason))
    flows[EVIDENCE] = _string(_evidence(n, claims))
    return flows


def _claim_all(flows: pd.DataFrame, icmp: pd.DataFrame | None, options: FlowOptions, capture_end: float | None,
               reason: np.ndarray, claims: list) -> None:
    """Each rule's rows (those no earlier rule claimed): their code into REASONS written in
    `reason`, (rows, distinct texts, code per row) appended to `claims`."""
    n = len(flows)
    f = _Facts(flows)
    if capture_end is None:
        capture_end = float(np.nanmax(flows["ts_end"].to_numpy()))

    def claim(mask: np.ndarray, name: str, explain, says=None) -> None:
        rows = np.flatnonzero(mask & (reason < 0))
        reason[rows] = REASONS.index(name)
        claims.append((rows, *distinct_texts(rows, explain, says)))

    icmp_rows = _icmp_matches(flows, icmp)
    claim(f.started & (icmp_rows.index_mask(n)) & ~f.answered, "icmp_unreachable", icmp_rows.describe)
    claim(f.tcp_started & f.rej, "reset", f.describe_reset)
    claim(f.tcp_started & (f.s0 | f.rstos0) & f.only_syns, "no_response",
          lambda i: f.describe_no_response(i, capture_end), lambda rows: f.no_response_says(capture_end, rows))
    alert_rows = np.flatnonzero(f.tcp_started & f.fatal_alert)
    tls_alert = f.text_at("tls_alert", alert_rows)
    claim(f.tcp_started & f.fatal_alert, "tls_alert",
          lambda i: f"the server answered the ClientHello with alert {tls_alert[np.searchsorted(alert_rows, i)]}")
    intercepted, why = _interception(f)
    claim(f.tcp_started & intercepted, "tls_intercepted", lambda i: why[i])
    claim(f.tcp_started & f.handshake & np.isfinite(f.s_rst) & (f.s_payload == 0), "reset_after_handshake",
          f.describe_reset_after_handshake)
    waited = np.where(f.closed, f.ts_end, capture_end) - f.c_data
    claim(f.tcp_started & f.handshake & (f.c_payload > 0) & (f.s_payload == 0) & ~np.isfinite(f.s_rst)
          & (waited >= options.server_wait_s), "no_server_data",
          lambda i: f"the client sent {int(f.c_payload[i]):,} bytes; no data came back in {waited[i]:.1f} s")


def _string(values: pa.Array) -> pd.arrays.ArrowStringArray:
    """A large_string array as the "string" column pd.array(texts, dtype="string") makes."""
    return pd.arrays.ArrowStringArray(pa.chunked_array([values]))


def _reason_column(reason: np.ndarray) -> pa.Array:
    """REASONS[code] per row, null where the code is -1 (decoded by Arrow: no Python object a row)."""
    return pa.DictionaryArray.from_arrays(pa.array(reason, mask=reason < 0),
                                          pa.array(REASONS, pa.large_string())).cast(pa.large_string())


def _evidence(n: int, claims: list[tuple[np.ndarray, list, np.ndarray]]) -> pa.Array:
    """The evidence column: each claim's rows their text (its distinct texts, decoded by Arrow
    from an int32 code a row), null elsewhere."""
    texts: list = []
    at = np.full(n, -1, np.int32)
    for rows, distinct, codes in claims:
        at[rows] = codes + len(texts)
        texts.extend(distinct)
    return pa.DictionaryArray.from_arrays(pa.array(at, mask=at < 0),
                                          pa.array(texts, pa.large_string())).cast(pa.large_string())


def distinct_texts(rows: np.ndarray, explain, says) -> tuple[list, np.ndarray]:
    """[explain(i) for i in rows] as (its distinct texts, each row's code into them), calling
    explain once per distinct combination of the values `says(rows)` gives (arrays at those
    rows; bit for bit: -0.0 is not 0.0); rows of one combination share the text. The values
    must hold everything explain's text depends on; says None: every row its own."""
    if says is None or len(rows) < 2:
        return [explain(i) for i in rows.tolist()], np.arange(len(rows), dtype=np.int64)
    # Numbered one value at a time by hashing (pd.factorize): np.unique(axis=0) over a
    # rows x values matrix sorts several copies of it, the analysis' peak on a large scan.
    group = np.zeros(len(rows), np.int64)
    for values in says(rows):
        codes, uniques = pd.factorize(np.ascontiguousarray(values, dtype=np.float64).view(np.int64))
        group, _ = pd.factorize(group * len(uniques) + codes)      # < len(rows) ** 2: no overflow
    count = int(group.max()) + 1
    first = np.empty(count, np.int64)
    first[group[::-1]] = np.arange(len(rows) - 1, -1, -1)            # each group's first row
    return [explain(i) for i in rows[first].tolist()], group


def reads_capture_end(flows: pd.DataFrame, seen_until: np.ndarray, capture_end: float) -> np.ndarray:
    """Rows whose reason or evidence may differ between a `capture_end` of `seen_until` (per row,
    the end a worker saw: its file's) and the real one: unanswered TCP starts within
    ENDED_SOON_S of the earlier end (the no_response note) and unclosed connections still
    waiting for server data (no_server_data's wait, printed). scale/fixups.py redoes these."""
    def num(name: str) -> np.ndarray:
        return flows[name].to_numpy(dtype=np.float64, na_value=np.nan)

    tcp_started = (flows["transport"].to_numpy(dtype=object) == "tcp") & (num("_syns") > 0)
    unanswered = (flows["state"].isin(["S0", "RSTOS0"]).to_numpy(dtype=bool, na_value=False)
                  & (num("_syn_last") > seen_until - ENDED_SOON_S))
    closed = np.isfinite(num("_c_fin_ts")) | np.isfinite(num("_c_rst_ts")) | np.isfinite(num("_s_fin_ts"))
    waiting = (flows["_handshake"].to_numpy(dtype=bool) & (num("_c_payload") > 0) & (num("_s_payload") == 0)
               & ~np.isfinite(num("_s_rst_ts")) & ~closed)
    return (seen_until < capture_end) & tcp_started & (unanswered | waiting)


def unacknowledged_synack(flows: pd.DataFrame) -> np.ndarray:
    """TCP flows whose SYN the server answered with a SYN/ACK that the client never
    acknowledged: it sent nothing after its SYNs. Zeek still calls the server's closing RST a
    rejection (REJ), but the server accepted; its answer did not reach the client, or the
    client gave up on it (seen at a span port: lost between there and the device)."""
    n = len(flows)
    if not n or "_handshake" not in flows:
        return np.zeros(n, bool)
    syns = counts(flows["_syns"])
    sent = flows["pkts_c2s"]
    sent = sent.to_numpy() if _integers(sent) else sent.to_numpy(dtype=np.float64)
    payload = counts(flows["_c_payload"])
    return flows["_handshake"].to_numpy(dtype=bool) & (syns > 0) & (sent <= syns) & (payload == 0)


def counts(column: pd.Series) -> np.ndarray:
    """A count column as numbers, nulls as 0: an integer column's own array, else float64. Not
    a float64 copy of every flow's count (8 bytes a flow each, three of them at block_reasons'
    peak on engine_10m): integers compare as their floats would."""
    if _integers(column):
        return column.to_numpy()
    return pd.to_numeric(column, errors="coerce").fillna(0).to_numpy(np.float64)


def _integers(column: pd.Series) -> bool:
    """A numpy integer column (no nulls)."""
    return isinstance(column.dtype, np.dtype) and column.dtype.kind in "iu"


class _Facts:
    """The columns the rules read, as numpy arrays (hidden columns default to 'never happened').

    Each array is made when a rule first reads it, not all at once: about twenty full-length
    arrays (8 bytes a row each) would otherwise sit beside _icmp_matches' scratch at the
    analysis' peak, and some (rtt_ms, syn_first, server_hello) are read only to explain a few rows.
    """

    def __init__(self, flows: pd.DataFrame) -> None:
        self._flows = flows
        self._n = len(flows)

    def _num(self, name: str, default: float = np.nan) -> np.ndarray:
        if name not in self._flows:
            return np.full(self._n, default)
        column = self._flows[name]
        if isinstance(column.dtype, np.dtype) and (column.dtype == np.float64 or column.dtype.kind == "i"):
            # The frame's own numbers, not a float64 copy (8 bytes a flow each, a dozen of them
            # at the analysis' peak): integers compare and print as their floats would.
            return column.to_numpy()
        return pd.to_numeric(column, errors="coerce").astype("float64").to_numpy(na_value=np.nan)

    def _equals(self, name: str, value: str) -> np.ndarray:
        # Compared as Arrow strings: every row's text as a Python string costs ~60 bytes a row.
        return (self._flows[name] == value).fillna(False).to_numpy(dtype=bool)

    tcp = cached_property(lambda self: self._equals("transport", "tcp"))
    s0 = cached_property(lambda self: self._equals("state", "S0"))
    rej = cached_property(lambda self: self._equals("state", "REJ"))
    rstos0 = cached_property(lambda self: self._equals("state", "RSTOS0"))
    syns = cached_property(lambda self: self._num("_syns", 0.0))
    tcp_started = cached_property(lambda self: self.tcp & (self.syns > 0))
    started = cached_property(lambda self: self.tcp_started | ~self.tcp)   # a UDP flow's first frame is its start
    handshake = cached_property(lambda self: self._flows["_handshake"].to_numpy(dtype=bool)
                                if "_handshake" in self._flows else np.zeros(self._n, bool))
    pkts_s2c = cached_property(lambda self: self._flows["pkts_s2c"].to_numpy())
    unacknowledged = cached_property(lambda self: unacknowledged_synack(self._flows))
    rtt_ms = cached_property(lambda self: self._num("rtt_ms"))
    answered = cached_property(lambda self: np.where(self.tcp, self.handshake, self.pkts_s2c > 0))
    ts_end = cached_property(lambda self: self._flows["ts_end"].to_numpy())
    syn_first = cached_property(lambda self: self._num("_syn_first"))
    syn_last = cached_property(lambda self: self._num("_syn_last"))
    c_data = cached_property(lambda self: self._num("_c_data_ts"))
    c_payload = cached_property(lambda self: self._num("_c_payload", 0))
    s_payload = cached_property(lambda self: self._num("_s_payload", 0))
    s_rst = cached_property(lambda self: self._num("_s_rst_ts"))
    c_rst = cached_property(lambda self: self._num("_c_rst_ts"))
    c_fin = cached_property(lambda self: self._num("_c_fin_ts"))
    s_fin = cached_property(lambda self: self._num("_s_fin_ts"))
    closed = cached_property(lambda self: np.isfinite(self.c_fin) | np.isfinite(self.c_rst) | np.isfinite(self.s_fin))
    server_hello = cached_property(lambda self: self._num("server_hello_ts"))

    @cached_property
    def only_syns(self) -> np.ndarray:
        # A client that sent data or ACKs after its SYN was answered: the capture missed the
        # answer (a one-way capture, health/one_way.py), the network did not drop it.
        extra = self._num("pkts_c2s") - self.syns - self.rstos0
        return (extra <= 0) & (self.c_payload == 0)

    @cached_property
    def fatal_alert(self) -> np.ndarray:
        if "tls_alert" not in self._flows:
            return np.zeros(self._n, bool)
        return self._flows["tls_alert"].astype("string").str.startswith("fatal/").fillna(False).to_numpy(dtype=bool)

    def isin(self, name: str, values: list[str]) -> np.ndarray:
        if name not in self._flows:
            return np.zeros(len(self._flows), bool)
        return self._flows[name].isin(values).to_numpy(dtype=bool)

    def text_at(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Column `name` as Python strings (None when missing) at `rows`, in their order: the few
        rows a rule explains, not every flow's text (nor a full-length array of Nones)."""
        if name not in self._flows or not len(rows):
            return np.full(len(rows), None, dtype=object)
        values = self._flows[name].iloc[rows]
        return values.astype(object).where(values.notna(), None).to_numpy()

    def no_response_says(self, capture_end: float, rows: np.ndarray) -> list[np.ndarray]:
        """What describe_no_response's text depends on, at `rows` (its spread only with several
        SYNs, the capture's end only when near)."""
        syns, first, last = self.syns[rows], self.syn_first[rows], self.syn_last[rows]
        left = capture_end - last
        return [syns, np.where(syns >= 2, last - first, 0.0), self.rstos0[rows],   # syns >= 2: int(syns) > 1
                np.where(left < ENDED_SOON_S, left, np.inf)]

    def describe_reset(self, i: int) -> str:
        if self.unacknowledged[i]:
            rtt = self.rtt_ms[i]
            answered = "" if not np.isfinite(rtt) else f" in {rtt:.1f} ms" if rtt < 1000 else f" {rtt / 1000:.1f} s after it"
            after = self.s_rst[i] - self.syn_first[i]
            gave_up = f" {after:.1f} s after the SYN" if np.isfinite(after) else ""
            return (f"the server answered the SYN with a SYN/ACK{answered}, but the client never acknowledged it; "
                    f"the server gave up with a RST{gave_up}")
        syn = self.syn_last[i] if self.syn_last[i] <= self.s_rst[i] else self.syn_first[i]
        took = (self.s_rst[i] - syn) * 1000.0
        return f"the SYN was answered by a RST in {took:.1f} ms" if np.isfinite(took) else "the SYN was answered by a RST"

    def describe_no_response(self, i: int, capture_end: float) -> str:
        count = int(self.syns[i])
        spread = self.syn_last[i] - self.syn_first[i]
        text = f"{count} SYN{'s' if count > 1 else ''}"
        text += f" over {spread:.1f} s, no answer" if count > 1 else ", no answer"
        if self.rstos0[i]:
            text += ", then the client gave up (RST)"
        left = capture_end - self.syn_last[i]
        if left < ENDED_SOON_S:
            text += f" (the capture ended {left:.1f} s after the last SYN)"
        return text

    def describe_reset_after_handshake(self, i: int) -> str:
        sent = int(self.c_payload[i])
        if sent and np.isfinite(self.c_data[i]):
            return (f"handshake completed; the client sent {sent:,} bytes, then a RST came from the server side "
                    f"{self.s_rst[i] - self.c_data[i]:.3f} s later, before any server data")
        return "handshake completed, then a RST from the server side before any data"


def _interception(f: _Facts) -> tuple[np.ndarray, dict[int, str]]:
    """Flows of a service with known TLS whose server is evidently not that service's."""
    expect = tls_expectations()
    hits = np.zeros(len(f.tcp), bool)
    why: dict[int, str] = {}
    rows = np.flatnonzero(f.tcp_started & f.isin("service", list(expect.services)))
    service, issuers, alpns = f.text_at("service", rows), f.text_at("cert_issuer", rows), f.text_at("alpn", rows)
    versions, server_alpns = f.text_at("tls_version", rows), f.text_at("server_alpn", rows)
    client_alerts = f.text_at("client_alert", rows)
    for k, i in enumerate(rows.tolist()):       # Apple TLS flows of known services only: few
        rule = expect.services[service[k]]
        found = []
        issuer = issuers[k]
        if issuer and rule.issuer_contains and not rule.issuer_is_expected(issuer):
            found.append(f"the certificate issuer {issuer!r} is not one {rule.service} uses")
        if (rule.client_alpn is not None and alpns[k] and rule.client_alpn.search(alpns[k])
                and versions[k] in LEGACY_TLS and np.isfinite(f.server_hello[i])
                and not (server_alpns[k] and rule.server_alpn.search(server_alpns[k]))):
            gone = np.nanmin([f.c_fin[i], f.c_rst[i]]) - f.server_hello[i] if (
                np.isfinite(f.c_fin[i]) or np.isfinite(f.c_rst[i])) else np.inf
            if client_alerts[k] or gone <= expect.teardown_s:
                selected = f"selected {server_alpns[k]!r}" if server_alpns[k] else "selected no ALPN"
                after = (f"the client answered with alert {client_alerts[k]}" if client_alerts[k]
                         else f"the client closed {gone:.2f} s after the server's first flight")
                found.append(f"the {versions[k]} server {selected} for {alpns[k]}; {after}")
        elif found and client_alerts[k]:
            found.append(f"the client answered with alert {client_alerts[k]}")
        if found:
            hits[i] = True
            why[i] = "; ".join(found)
    return hits, why


class _IcmpMatches:
    """The earliest destination-unreachable quoting each flow, by flow row."""

    def __init__(self, rows: np.ndarray, icmp: pd.DataFrame) -> None:
        self.rows = rows
        self.by_row = {int(r): rec for r, rec in zip(rows, icmp.itertuples(index=False))}

    def index_mask(self, n: int) -> np.ndarray:
        mask = np.zeros(n, bool)
        mask[self.rows] = True
        return mask

    def describe(self, i: int) -> str:
        rec = self.by_row[i]
        names = ICMP6_UNREACHABLE if rec.v6 else ICMP4_UNREACHABLE
        what = names.get(int(rec.icmp_code), f"code {int(rec.icmp_code)}")
        kind = "ICMPv6" if rec.v6 else "ICMP"
        return f"{kind} destination unreachable ({what}, type {int(rec.icmp_type)} code {int(rec.icmp_code)}) from {rec.reporter}"


def _icmp_matches(flows: pd.DataFrame, icmp: pd.DataFrame | None) -> _IcmpMatches:
    empty = _IcmpMatches(np.empty(0, np.int64), pd.DataFrame())
    if icmp is None or icmp.empty:
        return empty
    unreachable = icmp[(icmp["v6"] & (icmp["icmp_type"] == 1))
                       | (~icmp["v6"] & (icmp["icmp_type"] == 3) & (icmp["icmp_code"] != 4))]
    if unreachable.empty:
        return empty
    quoted = pd.DataFrame({
        "client_ip": unreachable["src"].astype(str).to_numpy(), "server_ip": unreachable["dst"].astype(str).to_numpy(),
        "client_port": unreachable["sport"].astype(np.int64).to_numpy(),
        "server_port": unreachable["dport"].astype(np.int64).to_numpy(),
        "transport": np.where(unreachable["proto"].to_numpy() == 6, "tcp", "udp"),
        "icmp_ts": unreachable["ts"].to_numpy(), "v6": unreachable["v6"].to_numpy(),
        "icmp_type": unreachable["icmp_type"].to_numpy(), "icmp_code": unreachable["icmp_code"].to_numpy(),
        "reporter": unreachable["reporter"].astype(str).to_numpy()})
    keys = ["client_ip", "client_port", "server_ip", "server_port", "transport"]
    # Only flows with a quoted port pair can match: narrowed on the integers first, as every
    # flow's addresses as Python strings would cost hundreds of MB on a large capture.
    rows = _quoted_pairs(flows["client_port"], flows["server_port"],
                         quoted["client_port"].to_numpy(), quoted["server_port"].to_numpy())
    near = pd.DataFrame({k: flows[k].iloc[rows] for k in (*keys, "ts_start", "ts_end")})
    side = pd.DataFrame({k: near[k].astype(str if k in ("client_ip", "server_ip", "transport") else np.int64).to_numpy()
                         for k in keys})
    side["row"] = rows
    side["ts_start"], side["ts_end"] = near["ts_start"].to_numpy(), near["ts_end"].to_numpy()
    pairs = side.merge(quoted, on=keys)
    pairs = pairs[(pairs["icmp_ts"] >= pairs["ts_start"]) & (pairs["icmp_ts"] <= pairs["ts_end"] + ICMP_GRACE_S)]
    if pairs.empty:
        return empty
    first = pairs.sort_values("icmp_ts").drop_duplicates("row")
    return _IcmpMatches(first["row"].to_numpy(), first[["v6", "icmp_type", "icmp_code", "reporter"]])


def _quoted_pairs(client: pd.Series, server: pd.Series, q_client: np.ndarray, q_server: np.ndarray) -> np.ndarray:
    """Rows whose (client, server) port pair is one of the quoted ones. With every port in
    0..65535, each side is first looked up in a table of the quoted ports (a byte a flow, where
    every flow's ports paired as int64, their temporaries and np.isin's sort of them cost 8-24
    bytes a flow each), and only the rows passing both are paired."""
    client, server = client.to_numpy(), server.to_numpy()      # the frame's own integers
    if not (len(client) and _ports(client) and _ports(server)):
        return np.flatnonzero(np.isin(_port_pairs(client, server), _port_pairs(q_client, q_server)))
    near = np.flatnonzero(_port_table(q_server)[server] & _port_table(q_client)[client])
    return near[np.isin(_port_pairs(client[near], server[near]), _port_pairs(q_client, q_server))]


def _ports(values: np.ndarray) -> bool:
    """Integers all within 0..65535 (a table's indices)."""
    return isinstance(values.dtype, np.dtype) and values.dtype.kind in "iu" and int(values.min()) >= 0 and int(values.max()) <= 0xFFFF


def _port_table(ports: np.ndarray) -> np.ndarray:
    """Per port 0..65535: is it one of `ports`?"""
    table = np.zeros(0x10000, bool)
    ports = ports.astype(np.int64)
    table[ports[(ports >= 0) & (ports <= 0xFFFF)]] = True
    return table


def _port_pairs(client: np.ndarray, server: np.ndarray) -> np.ndarray:
    """A port pair as one integer (ports fit in 32 bits; a wider value may collide, which only
    lets a flow through to the exact merge)."""
    return (client.astype(np.int64) << 32) | (server.astype(np.int64) & 0xFFFFFFFF)
