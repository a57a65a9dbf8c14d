"""classify(): fill category, service and classified_by for every flow, one vectorized pass per rule.

Input columns (any may be missing or null): transport, server_ip, server_port, sni, alpn,
server_name, http_host, http_path, dns_query (a DNS flow's first question name; null for other
flows), and server_name_source ("sni", "http-host" or "dns": which evidence gave server_name;
when missing or null it is inferred: sni if sni is set, else http-host if http_host is set,
else dns). Empty strings count as null.

Cost: text and address conditions are evaluated on the distinct values (pd.factorize), only
for the values still present in rows no earlier rule has taken; everything per row is numpy.
"""
from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..metadata.column_codes import Codes, column_codes, let_go, one_array
from ..metadata.few_codes import COMPILED as FEW, few_codes
from ..metadata.gather import gather_text
from ..site import Site
from .labels import COMPILED as LABELS, label_columns
from .row_groups import COMPILED as ROW_GROUPS, row_groups
from .server_nets import COMPILED, MAX_CLASSES, MAX_RULES, colon_hex, dotted_quads, server_nets
from .rules import AUTO, NAME, STRONGEST, Category, Evidence, Rule, RuleSet, builtin_rules, compile_patterns, is_plain

INPUT_COLUMNS = ("transport", "server_ip", "server_port", "sni", "alpn", "server_name", "http_host",
                 "http_path", "dns_query", "server_name_source")
OUTPUT_COLUMNS = ("category", "service", "classified_by")
NAME_SOURCES = {"sni": Evidence.SNI, "http-host": Evidence.HTTP_HOST, "dns": Evidence.DNS}
EVIDENCE = tuple(Evidence)
_EV = {e: i for i, e in enumerate(EVIDENCE)}
_MAPPED_V4 = 0xFFFF << 32          # ::ffff:0:0/96, where IPv4 addresses live in the 128-bit space
NETS = COMPILED                    # server_nets' one pass (tests turn it off: the plain path)


def classify(flows: pd.DataFrame, site: Site | None = None, *, rules: RuleSet | None = None) -> pd.DataFrame:
    """Return `flows` with category, service and classified_by set on every row ("string" dtype).

    Site rules (evidence "site") come first, then `rules` (default: the built-in rules.toml);
    the first rule that matches a flow decides. The input frame is not modified.
    """
    ruleset = (rules or builtin_rules()).with_site(site)
    found = _match(flows, ruleset)
    let_go()                        # the columns' codes: read, not needed past here
    # No heap trim here: it took classify 13 -> 32 ms on engine_2m (issue 3's figure) for 16-20 MB
    # under engine_10m's peak, which attach sets now; pipeline.per_flow trims after classify.
    out = flows.copy(deep=False)
    if LABELS:
        for column, taken in zip(OUTPUT_COLUMNS, label_columns(found.group, found.labels(ruleset))):
            out[column] = pd.array(taken, dtype="string")
        return out
    for column, (labels, codes) in zip(OUTPUT_COLUMNS, found.outputs(ruleset)):
        out[column] = _strings(labels, codes)
    return out


def explain(row: Mapping[str, object] | pd.Series, site: Site | None = None, *,
            rules: RuleSet | None = None) -> str:
    """Which rule decides one flow, and why: for tests and debugging."""
    ruleset = (rules or builtin_rules()).with_site(site)
    frame = pd.DataFrame([{k: row.get(k) for k in INPUT_COLUMNS if k in row}])
    found = _match(frame, ruleset)
    (cat, ci), (svc, si), (ev, ei) = found.outputs(ruleset)
    index = int(found.rule[0])
    head = f"{cat[ci[0]]} / {svc[si[0]]}, classified_by {ev[ei[0]]}"
    if index < 0:
        return f"no rule matched: {head} (fallback)"
    rule = ruleset.rules[index]
    values = frame.iloc[0].to_dict()
    why = "; ".join(_why(rule, values, EVIDENCE[int(found.evidence[0])], int(found.named_by[0]))) or "matches every flow"
    return f"{rule.origin}: {head} [{why}]" + (f" -- {rule.note}" if rule.note else "")


def _why(rule: Rule, row: dict, evidence: Evidence, named_by: int) -> list[str]:
    """The rule's conditions with the values of the row that met them."""
    out = []
    value = lambda key: row.get(key)          # noqa: E731
    if rule.transport:
        out.append(f"transport {value('transport')}")
    ports = [str(p) for p in rule.server_ports] + [f"{a}-{b}" for a, b in rule.port_ranges]
    if ports:
        out.append(f"server_port {value('server_port')} in {', '.join(ports)}")
    if rule.server_nets:
        out.append(f"server_ip {value('server_ip')} in {', '.join(rule.server_nets)}")
    if rule.names:
        column = ("sni", "http_host", "server_name")[named_by]
        source = f" (from {evidence})" if column == "server_name" else ""
        out.append(f"{column} {value(column)!r}{source} matches names {', '.join(rule.names)}")
    for key in ("http_host", "dns_query", "alpn", "http_path"):
        if getattr(rule, key):
            out.append(f"{key} {value(key)!r} matches {', '.join(getattr(rule, key))}")
    if rule.absent:
        out.append("no " + ", ".join(rule.absent))
    return out


# ---------------------------------------------------------------- columns as codes + distinct values

class _Text:
    """A column as codes (int64, -1 = null or empty) into its distinct normalized values, kept
    factored as attach() built it: row i's code is lookup[rows[i]] (rows[i] = -1: the lookup's
    last slot, -1), or rows[i] itself without a lookup. Normalizing maps the lookup (a slot per
    source value), not a code per flow."""

    def __init__(self, rows: np.ndarray, distinct: pa.Array, lookup: np.ndarray | None = None) -> None:
        self.rows = rows
        self.lookup = lookup
        self.distinct = distinct          # distinct normalized values (Arrow strings, or a list of str)
        self._values: list[str] | None = None
        self._codes: np.ndarray | None = None

    def at(self, rows: np.ndarray) -> np.ndarray:
        """The codes of the row numbers `rows`."""
        got = self.rows[rows]
        return got if self.lookup is None else self.lookup[got]

    @property
    def codes(self) -> np.ndarray:
        """The code of every row (spelled out on first use)."""
        if self._codes is None:
            self._codes = self.rows if self.lookup is None else self.lookup[self.rows]
        return self._codes

    def present(self) -> np.ndarray:
        """Per row: has a value."""
        if self.lookup is None:
            return self.rows >= 0
        return (self.lookup >= 0)[self.rows]

    def factored(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, lookup) with a lookup always (the identity one when the codes are plain)."""
        if self.lookup is not None:
            return self.rows, self.lookup
        return self.rows, np.append(np.arange(len(self.distinct), dtype=np.int64), -1)

    @property
    def values(self) -> list[str]:
        """The distinct values as Python strings (made on first use: the server addresses'
        tens of thousands are read as Arrow strings only)."""
        if self._values is None:
            self._values = self.distinct if isinstance(self.distinct, list) else self.distinct.to_pylist()
        return self._values

    def hits(self, pattern, rows: np.ndarray, split: bool = False, known: np.ndarray | None = None) -> np.ndarray:
        """For the row numbers `rows`: does the value match `pattern` (searched once per distinct
        value) or is it marked in `known` (per distinct value, last slot = null, False)?"""
        if pattern is None and (known is None or not known.any()):
            return np.zeros(len(rows), dtype=bool)       # no value can match
        ok = np.zeros(len(self.distinct) + 1, dtype=bool) if known is None else known.copy()
        codes = self.at(rows)
        if pattern is not None and len(codes):
            seen = np.zeros(len(self.distinct) + 1, dtype=bool)
            seen[codes] = True
            seen[-1] = False
            wanted = np.flatnonzero(seen & ~ok)
            if split:
                ok[wanted] = [any(pattern.search(p.strip()) for p in self.values[i].split(",")) for i in wanted]
            else:
                ok[wanted] = [pattern.search(self.values[i]) is not None for i in wanted]
        return ok[codes]


def _encoded(column: pd.Series) -> Codes:
    encoded = column_codes(column)
    if encoded is None:
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
        encoded = Codes(codes.astype(np.int64, copy=False), pa.array(np.asarray(uniques, dtype=object), type=pa.string()))
    return encoded


def _short(column: pd.Series) -> Codes | None:
    """A column of a few short values (transport) encoded by few_codes; None for others."""
    array = column.array
    if not FEW or not isinstance(array, pd.arrays.ArrowStringArray):
        return None
    found = few_codes(one_array(array._pa_array))
    return None if found is None else Codes(*found)


def _text(column: pd.Series | None, n: int, kind: str = "name", short: bool = False) -> _Text:
    if column is None:
        return _Text(np.full(n, -1, dtype=np.int64), pa.array([], pa.string()))
    encoded = _short(column) if short else None
    encoded = encoded or _encoded(column)
    rows, lookup = encoded.rows, encoded.lookup
    plain = _plain(encoded.distinct, kind)
    if plain is not None:
        values = plain
        empty = [i for i, v in enumerate(values) if not v]
    else:
        values = encoded.distinct.cast(pa.string())         # Arrow strings: encoded once per column
        values = pc.utf8_trim_whitespace(values)
        if kind in ("name", "host"):
            values = pc.utf8_rtrim(pc.utf8_lower(values), characters=".")
        if kind == "host":                                  # Host header: drop :port and [ ] around IPv6
            values = pc.replace_substring_regex(values, r"^\[([^\]]*)\](:\d*)?$", r"\1")
            values = pc.replace_substring_regex(values, r"^([^:]*):\d*$", r"\1")
            values = pc.utf8_rtrim(values, characters=".")
        elif kind == "path":
            values = pc.replace_substring_regex(values, r"[?#].*$", "")
        empty = np.flatnonzero(pc.equal(pc.binary_length(values), 0).to_numpy(zero_copy_only=False))
    if len(empty):                                      # empty values count as null
        lut = np.arange(len(values) + 1, dtype=np.int64)
        lut[empty] = -1
        lut[-1] = -1
        lookup = lut if lookup is None else lut[lookup]
    return _Text(rows, values, lookup)


_BRACKETED = re.compile(r"^\[([^\]]*)\](:\d*)?$")
_PORT = re.compile(r"^([^:]*):\d*$")


def _plain(distinct: pa.Array, kind: str) -> list[str] | None:
    """_text's normalizing in Python, for the few hundred distinct values of a column that are
    all printable ASCII (where it does exactly what Arrow's Unicode functions do: the only
    whitespace is " "); None otherwise. Arrow's calls cost ~0.2 ms a column with cold caches."""
    if kind == "address" or len(distinct) > 4096 or distinct.null_count:
        return None
    values = distinct.to_pylist()
    joined = "".join(values)
    if not (joined.isascii() and joined.isprintable()):
        return None
    if kind == "path":
        return [v.strip(" ").partition("?")[0].partition("#")[0] for v in values]    # cut at the first ? or #
    values = [v.strip(" ").lower().rstrip(".") for v in values]
    if kind == "host":
        values = [_host(v) if v[:1] == "[" or ":" in v else v for v in values]
    return values


def _host(value: str) -> str:
    """A Host header's name (lower-cased, trimmed) without :port and [ ] around IPv6."""
    return _PORT.sub(r"\1", _BRACKETED.sub(r"\1", value)).rstrip(".")


class _Names:
    """Bare-name patterns of all rules, looked up once per distinct name: name -> rules."""

    def __init__(self, rules: tuple[Rule, ...], key: str) -> None:
        self.suffix: dict[str, list[int]] = {}
        self.exact: dict[str, list[int]] = {}
        self.regex: dict[int, re.Pattern] = {}      # rule -> its glob/regex patterns
        for index, rule in enumerate(rules):
            patterns = getattr(rule, key)
            for p in patterns:
                if is_plain(p):
                    table = self.exact if rule.exact_names else self.suffix
                    table.setdefault(p.lower().rstrip("."), []).append(index)
            other = tuple(p for p in patterns if not is_plain(p))
            if other:
                self.regex[index] = compile_patterns(other, key, exact=rule.exact_names)
        self.n_rules = len(rules)
        self._tables: dict[int, np.ndarray] = {}
        # The suffixes' last two labels: a value can end in a suffix of two or more labels only
        # when its own last two are among them (None: a one-label suffix, every value is tried).
        tails = {p[p.rfind(".", 0, p.rfind(".")) + 1:] for p in self.suffix}
        self.tails = tails if all("." in p for p in self.suffix) else None

    def table(self, text: _Text) -> np.ndarray:
        """bool [distinct value + 1, rule]: the value matches one of the rule's bare names."""
        found = self._tables.get(id(text))
        if found is None:
            found = np.zeros((len(text.values) + 1, self.n_rules), dtype=bool)
            suffix, exact = self.suffix, self.exact
            tails = self.tails
            at_i: list[int] = []
            at_r: list[int] = []
            for i, value in enumerate(text.values):
                hit = exact.get(value)
                if hit:
                    at_i.extend([i] * len(hit))
                    at_r.extend(hit)
                if tails is not None and value[value.rfind(".", 0, max(value.rfind("."), 0)) + 1:] not in tails:
                    continue                    # no suffix ends in the value's last two labels
                at = 0
                while at >= 0:
                    hit = suffix.get(value[at:])
                    if hit:
                        at_i.extend([i] * len(hit))
                        at_r.extend(hit)
                    at = value.find(".", at) + 1 or -1
            found[at_i, at_r] = True
            self._tables[id(text)] = found
        return found

    def hits(self, index: int, text: _Text, rows: np.ndarray) -> np.ndarray:
        known = self.table(text)[:, index] if self.suffix or self.exact else None
        return text.hits(self.regex.get(index), rows, known=known)


class _Flows:
    """The input columns in the shapes the rules need."""

    def __init__(self, flows: pd.DataFrame, rules: tuple[Rule, ...]) -> None:
        n = self.n = len(flows)
        col = flows.get
        self.transport = _text(col("transport"), n, short=True)
        port = col("server_port")
        if port is None:
            self.port = np.full(n, -1, dtype=np.int64)
        elif isinstance(port.dtype, np.dtype) and port.dtype.kind in "iu":
            self.port = port.to_numpy(np.int64)          # the flows table's int32 column: no nulls
        else:
            self.port = pd.to_numeric(port, errors="coerce").astype("Float64").fillna(-1).to_numpy(np.int64)
        self.nets = _ServerNets(col("server_ip"), n, rules)
        self.text = {
            "sni": _text(col("sni"), n),
            "alpn": _text(col("alpn"), n),
            "server_name": _text(col("server_name"), n),
            "http_host": _text(col("http_host"), n, "host"),
            "http_path": _text(col("http_path"), n, "path"),
            "dns_query": _text(col("dns_query"), n),
        }
        self.given_rows, self.given_lookup = self._given_source(col("server_name_source"))

    def _given_source(self, given: pd.Series | None) -> tuple[np.ndarray, np.ndarray]:
        """server_name_source as written, factored: evidence code of row i is
        lookup[rows[i]], -1 where not given (inferred per row by source(), only for the rows
        that are looked at: rows alike in sni and http_host infer alike, so grouping by the
        given code groups as by the full one)."""
        if given is None:
            return np.full(self.n, -1, dtype=np.int64), np.array([-1], dtype=np.int64)
        src = _text(given, self.n)
        bad = [v for v in src.values if v and v not in NAME_SOURCES]
        if bad:
            raise ValueError(f"server_name_source {bad[0]!r} is not one of {', '.join(NAME_SOURCES)}")
        table = np.array([_EV[NAME_SOURCES[v]] if v else -1 for v in src.values] + [-1], dtype=np.int64)
        return src.rows, (table if src.lookup is None else table[src.lookup])

    def source(self, rows: np.ndarray) -> np.ndarray:
        """Evidence code of a server_name match for the row numbers `rows`: as given, else sni
        if sni is set, else http-host if http_host is, else dns."""
        code = self.given_lookup[self.given_rows[rows]]
        inferred = np.where(self.text["sni"].at(rows) >= 0, _EV[Evidence.SNI],
                            np.where(self.text["http_host"].at(rows) >= 0, _EV[Evidence.HTTP_HOST], _EV[Evidence.DNS]))
        return np.where(code >= 0, code, inferred)

    def strongest(self, rows: np.ndarray) -> np.ndarray:
        """Evidence code for rows no specific rule took: what showed the flow for what it is."""
        text = self.text
        http = (text["http_host"].at(rows) >= 0) | (text["http_path"].at(rows) >= 0)
        return np.where(text["sni"].at(rows) >= 0, _EV[Evidence.SNI],
                        np.where(http, _EV[Evidence.HTTP_HOST],
                                 np.where(text["server_name"].at(rows) >= 0, self.source(rows), _EV[Evidence.PORT])))

class _ServerNets:
    """The server address as the rules read it: per distinct address, which rules' networks
    hold it (`code`: one number per such set of rules, last slot: null)."""

    def __init__(self, column: pd.Series | None, n: int, rules: tuple[Rule, ...]) -> None:
        self.bit = {index: j for j, index in enumerate(i for i, rule in enumerate(rules) if rule.networks)}
        self.rules = rules
        self._networks: dict = {}
        self.mask: np.ndarray | None = None
        if column is None:
            self.ip = _Text(np.full(n, -1, dtype=np.int64), pa.array([], pa.string()))
        elif NETS and len(self.bit) <= MAX_RULES:
            encoded = _encoded(column)       # raw values: only those that may need trimming are trimmed (odd)
            self.ip = _Text(encoded.rows, encoded.distinct, encoded.lookup)
            if not encoded.distinct.null_count:
                self._compiled()
                return
            self.ip = _text(column, n, "address")
        else:
            self.ip = _text(column, n, "address")
        self.hi, self.lo, self.ok = _addresses(self.ip.distinct)
        self.code, self.count = self._table()

    def _compiled(self) -> None:
        held: dict = {}                      # network -> the bits of the rules it belongs to (rules share Apple's)
        for index, j in self.bit.items():
            for net in self.rules[index].networks:
                held[net] = held.get(net, 0) | (1 << j)
        spans = [sum(_span(net), ()) for net in held]
        distinct = self.ip.distinct
        mask, odd, klass, count = server_nets(distinct, np.array(spans, np.uint64).reshape(-1, 4),
                                              np.array(list(held.values()), np.int64))
        if odd.any():                        # trimmed, then read as before
            at = np.flatnonzero(odd)
            values = pc.utf8_trim_whitespace(distinct.take(pa.array(at)).cast(pa.string()))
            hi, lo, ok = _addresses(values)
            for index, j in self.bit.items():
                inside = ok & self._inside(self.rules[index], hi, lo, {})
                mask[at[inside]] |= np.int64(1) << j
            count = -1
        self.mask = np.append(mask, 0)
        if 0 <= count <= MAX_CLASSES:
            zero = np.flatnonzero(mask == 0)
            last = klass[zero[0]] if zero.size else count
            self.code, self.count = np.append(klass, last), count + (not zero.size)
        else:
            code, classes = pd.factorize(self.mask)
            self.code, self.count = code.astype(np.int64, copy=False), len(classes)

    def holds(self, index: int, rows: np.ndarray | None) -> np.ndarray:
        """Per row of `rows` (None: per distinct address): is the server address in rule
        `index`'s networks?"""
        if self.mask is not None:
            ok = (self.mask >> self.bit[index]) & 1 == 1
        else:
            ok = np.zeros(len(self.ip.distinct) + 1, dtype=bool)
            ok[:-1] = self.ok & self._inside(self.rules[index], self.hi, self.lo, self._networks)
        return ok[:-1] if rows is None else ok[self.ip.at(rows)]

    @staticmethod
    def _inside(rule: Rule, hi: np.ndarray, lo: np.ndarray, known: dict) -> np.ndarray:
        """Per address (hi, lo): inside one of the rule's networks? (each network's answer kept
        in `known`: rules share Apple's ranges)"""
        ok = np.zeros(len(hi), dtype=bool)
        for net in rule.networks:
            found = known.get(net)
            if found is None:
                first, last = _span(net)
                found = known[net] = _ge(hi, lo, first) & _le(hi, lo, last)
            ok |= found
        return ok

    def _table(self) -> tuple[np.ndarray, int]:
        """Per distinct address (last slot: null), a code for the set of rules whose server
        networks hold it; how many such sets there are."""
        if not self.bit or not len(self.ip.distinct):
            return np.zeros(len(self.ip.distinct) + 1, np.int64), 1
        inside = np.zeros((len(self.ip.distinct) + 1, len(self.bit)), dtype=bool)   # last row: null
        for index, j in self.bit.items():
            inside[:-1, j] = self.holds(index, None)
        if len(self.bit) < 63:                   # each address's set of rules as the bits of one number
            bits = inside.astype(np.int64) @ (np.int64(1) << np.arange(len(self.bit), dtype=np.int64))
            code, classes = pd.factorize(bits)
        else:
            classes, code = np.unique(inside, axis=0, return_inverse=True)
        return np.asarray(code).reshape(-1).astype(np.int64), len(classes)


def _addresses(text: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct addresses as 128-bit (hi, lo) uint64 pairs, IPv4 mapped into ::ffff:0:0/96."""
    n = len(text)
    hi = np.zeros(n, dtype=np.uint64)
    lo = np.zeros(n, dtype=np.uint64)
    ok = np.zeros(n, dtype=bool)
    if not n:
        return hi, lo, ok
    if COMPILED and not text.null_count:          # dotted quads in one compiled pass
        v4, word, good = dotted_quads(text)
        lo[v4] = np.uint64(_MAPPED_V4) | word[v4]
        ok[v4] = good[v4]
        return _others(text, v4, hi, lo, ok)
    v4 = pc.match_substring_regex(text, r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$").to_numpy(zero_copy_only=False)
    if v4.any():                                  # dotted quads, all at once
        octets = pc.list_flatten(pc.split_pattern(text.filter(pa.array(v4)), ".")).cast(pa.uint64())
        octets = octets.to_numpy().reshape(-1, 4)
        good = (octets <= 255).all(axis=1)
        word = (octets[:, 0] << 24) | (octets[:, 1] << 16) | (octets[:, 2] << 8) | octets[:, 3]
        where = np.flatnonzero(v4)
        hi[where] = 0
        lo[where] = np.uint64(_MAPPED_V4) | word
        ok[where] = good
    return _others(text, v4, hi, lo, ok)


def _others(text: pa.Array, v4: np.ndarray, hi: np.ndarray, lo: np.ndarray,
            ok: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The values that are not dotted quads: IPv6 in colon-hex form in one compiled pass, the
    rest (a dotted tail, a zone, anything odd) one by one."""
    rest = ~v4
    if COMPILED and not text.null_count and rest.any():
        read, r_hi, r_lo = colon_hex(text, rest)
        hi[read], lo[read], ok[read] = r_hi[read], r_lo[read], True
        rest &= ~read
    others = np.flatnonzero(rest)
    for i, value in zip(others.tolist(), text.filter(pa.array(rest)).to_pylist()):
        try:
            packed = socket.inet_pton(socket.AF_INET6, value.split("%", 1)[0])
        except (OSError, ValueError):
            continue
        hi[i] = int.from_bytes(packed[:8], "big")
        lo[i] = int.from_bytes(packed[8:], "big")
        ok[i] = True
    return hi, lo, ok


def _span(net) -> tuple[tuple[int, int], tuple[int, int]]:
    first, last = int(net.network_address), int(net.broadcast_address)
    if net.version == 4:
        first, last = first | _MAPPED_V4, last | _MAPPED_V4
    mask = (1 << 64) - 1
    return (first >> 64, first & mask), (last >> 64, last & mask)


def _ge(hi: np.ndarray, lo: np.ndarray, bound: tuple[int, int]) -> np.ndarray:
    b_hi, b_lo = np.uint64(bound[0]), np.uint64(bound[1])
    return (hi > b_hi) | ((hi == b_hi) & (lo >= b_lo))


def _le(hi: np.ndarray, lo: np.ndarray, bound: tuple[int, int]) -> np.ndarray:
    b_hi, b_lo = np.uint64(bound[0]), np.uint64(bound[1])
    return (hi < b_hi) | ((hi == b_hi) & (lo <= b_lo))


# ---------------------------------------------------------------- matching

@dataclass
class _Found:
    flows: _Flows
    rows: np.ndarray           # the row each distinct evidence tuple was evaluated on (its first)
    group: np.ndarray          # per row: which of `rows` stands for it
    rule: np.ndarray           # per entry of `rows`: rule index, -1 = none matched
    evidence: np.ndarray       # per entry of `rows`: index into EVIDENCE
    named_by: np.ndarray       # per entry of `rows`: name column that matched: 0 sni, 1 http_host, 2 server_name, -1 none

    def outputs(self, ruleset: RuleSet):
        """(labels, codes per row) for category, service, classified_by."""
        return [(_listed(labels), codes[self.group]) for labels, codes in self.labels(ruleset)]

    def labels(self, ruleset: RuleSet):
        """(labels, codes per entry of `rows`) for category, service, classified_by; the
        service labels as Arrow strings (the transport/port ones are made there)."""
        rules = ruleset.rules
        fallback = len(rules)
        idx = np.where(self.rule >= 0, self.rule, fallback)
        categories = [r.category for r in rules] + [Category.OTHER]
        services = [r.service for r in rules] + [AUTO]
        auto_rows = np.array([s == AUTO for s in services])[idx]
        service_codes = idx.copy()
        service_labels = pa.array([str(s) for s in services], pa.large_string())
        if auto_rows.any():
            labels, codes = self._auto_services(ruleset, auto_rows)
            service_codes[auto_rows] = len(services) + codes
            service_labels = pa.concat_arrays([service_labels, labels])
        return [(categories, idx), (service_labels, service_codes), (list(EVIDENCE), self.evidence)]

    def _auto_services(self, ruleset: RuleSet, auto: np.ndarray) -> tuple[pa.Array, np.ndarray]:
        """Labels of the transport/port pairs of the `auto` entries ("http" for HTTP flows, a
        [services] label, "<transport>/<port>", else the transport or "unknown"), made in a few
        Arrow calls (a Python string per pair cost ~1 ms for the engine benchmark's 1.7K ports);
        the label code of each entry."""
        f = self.flows
        rows = self.rows[auto]
        http = (f.text["http_host"].at(rows) >= 0) | (f.text["http_path"].at(rows) >= 0)
        span = max(65537, int(f.port.max()) + 2) if f.n else 65537    # ports past 65535 (not from a capture) too
        key = np.where(http, -1, (f.transport.at(rows) + 1) * span + f.port[rows] + 1)
        codes, uniq = pd.factorize(key)            # hashing: no sort of every flow's key
        uniq = np.asarray(uniq, np.int64)
        t, port = np.divmod(uniq, span)
        t -= 1
        port -= 1
        names = list(f.transport.values)
        t = np.where((t >= 0) & (uniq >= 0), t, len(names))          # the last slot: no transport
        transport = pa.array(names + [""], pa.large_string()).take(pa.array(t))
        named = np.array([bool(v) for v in names] + [False])[t]
        with_port = pc.binary_join_element_wise(transport, pa.array(port).cast(pa.large_string()),
                                                  pa.scalar("/", pa.large_string()))
        labels = pc.if_else(pa.array(named & (port >= 0)), with_port,
                            pc.if_else(pa.array(named), transport, pa.scalar("unknown", pa.large_string())))
        # [services] pairs and HTTP: a few entries, picked out by key (a pair's key decodes back
        # to it when its port lies in the key's range; no key decodes to a pair out of it)
        special, texts = np.full(len(uniq), -1, np.int64), ["http"]
        special[uniq < 0] = 0
        keys, at = [], []
        for (name, p), label in ruleset.services.items():
            if -1 <= p <= span - 2:
                for j, v in enumerate(names):
                    if v == name:
                        keys.append((j + 1) * span + p + 1)
                        at.append(len(texts))
                if name == "":
                    keys.append(p + 1)
                    at.append(len(texts))
                texts.append(label)
        if keys:
            keys, at = np.array(keys, np.int64), np.array(at, np.int64)
            order = np.argsort(keys, kind="stable")
            keys, at = keys[order], at[order]
            where = np.minimum(np.searchsorted(keys, uniq), len(keys) - 1)
            hit = (keys[where] == uniq) & (uniq >= 0)
            special[hit] = at[where[hit]]
        if (special >= 0).any():
            pick = np.where(special >= 0, len(uniq) + special, np.arange(len(uniq)))
            labels = pa.concat_arrays([labels, pa.array(texts, pa.large_string())]).take(pa.array(pick))
        return labels, codes


def _listed(labels) -> list[str]:
    return labels.to_pylist() if isinstance(labels, pa.Array) else labels


def _groups(f: _Flows, rules: tuple[Rule, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Rows that show the rules the same evidence, grouped: (group per row, first row of each
    group). The evidence is every input a rule or an output label reads: transport, server
    port, which rules' networks hold the server address (not the address itself), the six
    text columns (as normalized codes) and server_name_source as given (what is inferred
    follows from sni and http_host)."""
    n = f.n
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    port = f.port
    nets, n_nets = f.nets.code, f.nets.count
    if ROW_GROUPS:                            # one hashing pass over the columns (row_groups.py)
        ip_rows, ip_lookup = f.nets.ip.factored()
        mapped = [f.transport.factored(), (ip_rows, nets[ip_lookup])] + [t.factored() for t in f.text.values()]
        mapped.append((f.given_rows, f.given_lookup))
        # each column's range of values (a port past them, from no capture, is checked for)
        ranges = ((-1, 65535), (-1, len(f.transport.distinct) - 1), (0, max(n_nets, 1) - 1))
        ranges += tuple((-1, len(t.distinct) - 1) for t in f.text.values()) + ((-1, len(EVIDENCE) - 1),)
        return row_groups((port,), tuple(r for r, _ in mapped), tuple(lk for _, lk in mapped), ranges)
    if port.min() >= -1 and port.max() <= 65535:
        parts = [(port + 1, 65537)]
    else:
        codes, uniq = pd.factorize(port)
        parts = [(codes.astype(np.int64), len(uniq))]
    parts.append((f.transport.codes + 1, len(f.transport.distinct) + 1))
    parts.append((nets[f.nets.ip.codes], n_nets))
    for text in f.text.values():
        parts.append((text.codes + 1, len(text.distinct) + 1))
    parts.append((f.given_lookup[f.given_rows] + 1, len(EVIDENCE) + 1))
    key = np.zeros(n, np.int64)
    size = 1                                  # Python int: how many key values there can be
    for codes, card in parts:
        if card <= 1:
            continue
        if size * card >= 1 << 62:            # renumber densely before the key would overflow
            key, uniq = pd.factorize(key)
            key = key.astype(np.int64, copy=False)
            size = len(uniq)
        key = key * card + codes
        size *= card
    group, uniq = pd.factorize(key)
    group = group.astype(np.int64, copy=False)
    first = np.empty(len(uniq), np.int64)
    first[group[::-1]] = np.arange(n - 1, -1, -1)
    return group, first


def _match(flows: pd.DataFrame, ruleset: RuleSet, *, distinct: bool = True) -> _Found:
    """Rule index and evidence for each distinct evidence tuple (`distinct=False`: for every
    row). Each rule looks only at the rows no earlier rule took."""
    f = _Flows(flows, ruleset.rules)
    n = f.n
    rules = ruleset.rules
    if distinct:
        group, first = _groups(f, rules)
    else:
        group = first = np.arange(n, dtype=np.int64)
    # Per group (entry of `first`): nothing per flow is spelled out.
    rule_of = np.full(len(first), -1, dtype=np.int64)
    evidence = np.full(len(first), _EV[Evidence.PORT], dtype=np.int64)
    named_by = np.full(len(first), -1, dtype=np.int8)      # 0 sni, 1 http_host, 2 server_name
    taken = np.zeros(len(first), dtype=bool)
    open_at = np.arange(len(first), dtype=np.int64)        # the groups no rule has taken yet
    names = _Names(rules, "names")
    hosts = _Names(rules, "http_host")
    queries = _Names(rules, "dns_query")
    port_index = np.clip(f.port[first], -1, 65535) + 1
    for index, rule in enumerate(rules):
        if not len(open_at):
            break
        at = open_at
        rows = first[at]
        if rule.transport:
            lut = np.array([v in rule.transport for v in f.transport.values] + [False])
            ok = lut[f.transport.at(rows)]
            at, rows = at[ok], rows[ok]
        if rule.server_ports or rule.port_ranges:
            lut = np.zeros(65537, dtype=bool)
            lut[np.asarray(rule.server_ports, dtype=np.int64) + 1] = True
            for lo, hi in rule.port_ranges:
                lut[lo + 1:hi + 2] = True
            ok = lut[port_index[at]]
            at, rows = at[ok], rows[ok]
        for column in rule.absent:
            ok = f.text[column].at(rows) < 0
            at, rows = at[ok], rows[ok]
        if rule.networks:
            ok = f.nets.holds(index, rows)
            at, rows = at[ok], rows[ok]
        if rule.alpn_re is not None:
            ok = f.text["alpn"].hits(rule.alpn_re, rows, split=True)
            at, rows = at[ok], rows[ok]
        if rule.http_path_re is not None:
            ok = f.text["http_path"].hits(rule.http_path_re, rows)
            at, rows = at[ok], rows[ok]
        if rule.http_host:
            ok = hosts.hits(index, f.text["http_host"], rows)
            at, rows = at[ok], rows[ok]
        if rule.dns_query:
            ok = queries.hits(index, f.text["dns_query"], rows)
            at, rows = at[ok], rows[ok]
        if rule.names and len(rows):
            which = np.full(len(rows), -1, dtype=np.int8)
            for code, column in enumerate(("sni", "http_host", "server_name")):
                left = np.flatnonzero(which < 0)
                which[left[names.hits(index, f.text[column], rows[left])]] = code
            ok = which >= 0
            at, rows, which = at[ok], rows[ok], which[ok]
            named_by[at] = which
            by_name = np.where(which == 0, _EV[Evidence.SNI],
                               np.where(which == 1, _EV[Evidence.HTTP_HOST], f.source(rows)))
        if not len(rows):
            continue
        rule_of[at] = index
        if rule.classified_by == NAME:
            evidence[at] = by_name
        elif rule.classified_by == STRONGEST:
            evidence[at] = f.strongest(rows)
        else:
            evidence[at] = _EV[Evidence(rule.classified_by)]
        taken[at] = True
        open_at = open_at[~taken[open_at]]
    return _Found(f, first, group, rule_of, evidence, named_by)


def _strings(labels: list[str], codes: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """labels[codes] as a "string" column (codes >= 0), gathered in one compiled pass (the three
    output columns on the engine benchmark: 3.0-3.2 ms with Arrow's take, 2.5-2.8 ms so)."""
    if not isinstance(labels, pa.Array):
        labels = pa.array([str(x) for x in labels], type=pa.large_string())
    taken = gather_text(labels, np.asarray(codes, np.int64))
    return pd.array(taken, dtype="string")
