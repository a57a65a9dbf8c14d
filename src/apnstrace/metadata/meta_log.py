"""Flow metadata as a log of writes kept in columns, resolved per flow once at the end.

The collector's parsers write a few fields per flow (a ClientHello's SNI, a server flight's
version, an HTTP request's host, ...). The compiled fast paths write whole chunks at once as
columns; the Python paths append rows. Each write carries a sequence number, so resolving the
log gives exactly what writing into one record per flow, in that order, would have given:

- a ClientHello, an HTTP request head, an HTTP status: the flow's last one wins, all its fields;
- `old or new` fields (server_alpn, tls_alert, dns_query): the first truthy value, else the last write;
- `new or old` fields (tls_version, cert_issuer): the last truthy value, else null;
- server_ts: the first value written;
- client_dir: the last ClientHello's direction, else the first HTTP request's;
- client_alert: the first late alert sent in the direction that was client_dir at that moment.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import pyarrow as pa

from ..reader.walk import njit
from .text_columns import string_buffers

__all__ = ["FlowMeta", "MetaLog", "MetaTable", "take_or_null"]


@dataclass
class FlowMeta:
    """What the parsers found in one flow (keys: the flow table's uid)."""

    sni: str | None = None
    alpn: str | None = None
    client_dir: int | None = None          # canonical direction of the ClientHello / request
    hello_ts: float | None = None
    server_ts: float | None = None         # first server handshake record
    tls_version: str | None = None
    tls_alert: str | None = None           # first alert in the server's flight
    client_alert: str | None = None        # first alert the client sent after its ClientHello
    server_alpn: str | None = None         # protocol the ServerHello selected (TLS <= 1.2: visible)
    cert_issuer: str | None = None
    http_method: str | None = None
    http_host: str | None = None
    http_path: str | None = None
    http_user_agent: str | None = None
    http_status: int | None = None
    dns_query: str | None = None           # first question of a DNS flow


# Text as large_string: what pandas' "string" dtype holds, so the flows frame takes it as is.
STR, DIR, TS, STATUS = pa.large_string(), pa.int8(), pa.float64(), pa.int32()
TYPES = {"sni": STR, "alpn": STR, "client_dir": DIR, "hello_ts": TS, "server_ts": TS, "tls_version": STR,
         "tls_alert": STR, "client_alert": STR, "server_alpn": STR, "cert_issuer": STR, "http_method": STR,
         "http_host": STR, "http_path": STR, "http_user_agent": STR, "http_status": STATUS, "dns_query": STR}
# What each kind of write carries (touch: a flow the parsers looked at, nothing found).
KINDS = {
    "hello": ("sni", "alpn", "client_dir", "hello_ts"),
    "flight": ("server_ts", "tls_version", "server_alpn", "tls_alert", "cert_issuer"),
    "request": ("http_method", "http_host", "http_path", "http_user_agent", "client_dir"),
    "response": ("http_status",),
    "query": ("dns_query",),
    "touch": (),
    "late_alert": ("client_dir", "client_alert"),     # client_dir: the direction that sent it
}
OLD_OR_NEW = ("server_alpn", "tls_alert", "dns_query")
NEW_OR_OLD = ("tls_version", "cert_issuer")
FIRST = ("server_ts",)


@dataclass(frozen=True, slots=True)
class MetaTable:
    """Resolved metadata: one row per flow that has any, uid ascending. Each of FlowMeta's fields
    is a source column and, per uid, the row of it that holds the value (-1: null), so a join
    takes each value once, straight from where a parser wrote it."""

    uid: np.ndarray
    sources: dict[str, tuple[pa.Array, np.ndarray]]
    # Per field, its rows with a last slot -1 (a flow without a record reads it), where resolve()
    # made them so: sources' rows are views of these (attach gathers through the padded ones,
    # no copy of each rows array with a -1 appended).
    padded: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.uid)

    def rows_padded(self, name: str) -> np.ndarray:
        """Field `name`'s rows with a last slot -1 (the same object for fields that share rows)."""
        got = self.padded.get(name)
        if got is None:
            rows = self.sources[name][1]
            got = np.append(rows, -1) if len(rows) else np.full(len(self.uid) + 1, -1, np.int64)
        return got

    def column(self, name: str, at: np.ndarray | None = None) -> pa.Array:
        """Field `name` per uid, or per row of `at` (positions in uid, -1: null)."""
        values, rows = self.sources[name]
        if at is not None:
            rows = np.where(at >= 0, rows[np.maximum(at, 0)], -1) if len(rows) else np.full(len(at), -1)
        return take_or_null(values, rows)

    def metas(self) -> dict[int, FlowMeta]:
        """The same as FlowMeta records (for readers that merge them by uid)."""
        names = [f.name for f in fields(FlowMeta)]
        values = [self.column(name).to_pylist() for name in names]
        return {u: FlowMeta(*row) for u, row in zip(self.uid.tolist(), zip(*values))}

    @staticmethod
    def from_metas(metas: dict[int, FlowMeta]) -> "MetaTable":
        uid = np.fromiter(metas.keys(), np.int64, len(metas))
        order = np.argsort(uid, kind="stable")
        rows = [metas[u] for u in uid[order].tolist()]
        every = np.arange(len(rows), dtype=np.int64)
        return MetaTable(uid[order], {name: (pa.array([getattr(m, name) for m in rows], type=kind), every)
                                      for name, kind in TYPES.items()})


class MetaLog:
    def __init__(self) -> None:
        self.seq = 0
        self.batches: dict[str, list[tuple[np.ndarray, np.ndarray, dict[str, pa.Array]]]] = \
            {kind: [] for kind in KINDS}
        self.rows: dict[str, list[tuple]] = {kind: [] for kind in KINDS}     # (uid, seq, *values)

    def emptied(self) -> "MetaLog":
        """A log with no writes that numbers on from this one's sequence."""
        fresh = MetaLog()
        fresh.seq = self.seq
        return fresh

    def row(self, kind: str, uid: int, *values, seq: int | None = None) -> None:
        """One write from a Python parser (seq: one reserved() before, else the next one)."""
        if seq is None:
            seq = self.seq
            self.seq += 1
        self.rows[kind].append((uid, seq, *values))

    def reserve(self, n: int) -> int:
        """n sequence numbers for writes that a caller interleaves itself; the first one."""
        first = self.seq
        self.seq += n
        return first

    def forget(self, uids: np.ndarray) -> None:
        """Drop every write for these flows (finished and reported elsewhere: live/run.py)."""
        for kind, names in KINDS.items():
            if self.rows[kind]:
                self.batches[kind].append(_rows_batch(self.rows[kind], names))
                self.rows[kind] = []
            kept = []
            for uid, seq, cols in self.batches[kind]:
                keep = ~np.isin(uid, uids)
                if keep.all():
                    kept.append((uid, seq, cols))
                elif keep.any():
                    mask = pa.array(keep)
                    kept.append((uid[keep], seq[keep], {n: c.filter(mask) for n, c in cols.items()}))
            self.batches[kind] = [_joined(kept, names)] if len(kept) > 1 else kept

    def batch(self, kind: str, uid: np.ndarray, seq: np.ndarray | None = None, **columns) -> None:
        """Writes from a compiled scan, one per uid, in order (or at reserved `seq` numbers);
        columns: arrays (numpy or Arrow)."""
        n = len(uid)
        if n == 0:
            return
        if seq is None:
            seq = np.arange(self.seq, self.seq + n, dtype=np.int64)
            self.seq += n
        cols = {name: _arrow(columns[name], TYPES[name]) for name in KINDS[kind]}
        self.batches[kind].append((np.asarray(uid, np.int64), seq, cols))

    def kind_since(self, kind: str, seq: int) -> tuple[np.ndarray, dict[str, pa.Array]]:
        """The writes of one kind from sequence number `seq` on, the last per uid, for a kind
        written in sequence order (hello). Reads back from the newest writes only, not the whole
        log: a live run asks after every chunk."""
        names = KINDS[kind]
        parts = []
        for u, s, cols in reversed(self.batches[kind]):
            if s.max() < seq:
                break                       # older batches hold older writes
            parts.append((u[s >= seq], s[s >= seq], {n: c.filter(pa.array(s >= seq)) for n, c in cols.items()}))
        parts.reverse()
        rows = []
        for r in reversed(self.rows[kind]):
            if r[1] < seq:
                break
            rows.append(r)
        rows.reverse()
        if rows:
            parts.append(_rows_batch(rows, names))
        if not parts:
            return np.empty(0, np.int64), {n: pa.array([], TYPES[n]) for n in names}
        uid, seqs, cols = _joined(parts, names)
        order = np.lexsort((seqs, uid))
        last = order[_ends(uid[order], np.arange(len(order)), last=True)]
        return uid[last], {name: col.take(pa.array(last)) for name, col in cols.items()}

    def _writes(self, kind: str) -> tuple[np.ndarray, np.ndarray, dict[str, pa.Array]]:
        """Every write of one kind: uid and seq per row of the columns, as written (kept joined
        for the next call)."""
        names = KINDS[kind]
        parts = self.batches[kind]
        rows = self.rows[kind]
        if rows:
            parts.append(_rows_batch(rows, names))
            self.rows[kind] = []
        if not parts:
            empty = np.empty(0, np.int64)
            return empty, empty, {n: pa.array([], TYPES[n]) for n in names}
        if len(parts) > 1:
            self.batches[kind] = parts = [_joined(parts, names)]
        return parts[0]

    def resolve(self) -> MetaTable:
        writes = {kind: self._writes(kind) for kind in KINDS}
        flowing = [k for k in KINDS if k != "late_alert"]
        uid, places = _places(np.concatenate([writes[k][0] for k in flowing]))
        ends = np.cumsum([len(writes[k][0]) for k in flowing]).tolist()
        where = {k: places[end - len(writes[k][0]):end] for k, end in zip(flowing, ends)}
        n = len(uid)
        out: dict[str, tuple[pa.Array, np.ndarray]] = {}
        padded: dict[str, np.ndarray] = {}
        for kind, wanted in _WANTED.items():
            k_uid, k_seq, cols = writes[kind]
            # One pass over the kind's writes in sequence order does what writing into one
            # record per flow did: each wanted pick (a field's rule, or the last / first write,
            # shared by the fields that take it) is a column row per uid.
            names = [name for name, _ in wanted]
            flags = np.ones((len(wanted), len(k_uid)), np.bool_)
            for f, (name, mode) in enumerate(wanted):
                if mode == _FIRST:
                    flags[f] = _valid(cols[name])
                elif mode in (_OLD_OR_NEW, _NEW_OR_OLD):
                    flags[f] = _truthy(cols[name])
            # a last slot per pick, left -1: the padded rows attach reads (no place is n)
            picked = np.full((len(wanted), n + 1), -1, np.int64)
            if len(k_uid):
                ordered = len(k_seq) < 2 or bool((k_seq[1:] > k_seq[:-1]).all())
                order = k_seq[:0] if ordered else np.argsort(k_seq, kind="stable")
                _pick(where[kind], order, ordered, flags, np.array([m for _, m in wanted], np.int64), picked)
            ends = list(picked)             # one rows array per pick: attach reads shared ones once
            picks = [end[:n] for end in ends]
            for name in KINDS[kind]:
                if name != "client_dir":
                    f = names.index(name) if name in names else 0
                    out[name] = cols[name], picks[f]
                    padded[name] = ends[f]
            if kind == "hello":
                hello_at = picks[0]
            elif kind == "request":
                request_at = picks[-1]
        h_cols, r_cols = writes["hello"][2], writes["request"][2]
        padded["client_dir"] = padded["client_alert"] = every_end = np.arange(n + 1, dtype=np.int64)
        every_end[n] = -1
        every = every_end[:n]
        out["client_dir"] = _directions(hello_at, h_cols["client_dir"], request_at, r_cols["client_dir"]), every
        out["client_alert"] = self._client_alerts(uid, writes), every
        return MetaTable(uid, {name: out[name] for name in TYPES}, padded)

    def _client_alerts(self, uid: np.ndarray, writes) -> pa.Array:
        """Late alerts (a handful per capture): the first sent by the flow's client at that moment."""
        if not len(writes["late_alert"][0]):
            return pa.nulls(len(uid), STR)
        tables = {kind: _sorted(*writes[kind]) for kind in ("late_alert", "hello", "request")}
        a_uid, a_seq, a_cols, a_order = tables["late_alert"]
        found: dict[int, str] = {}
        wanted = np.unique(a_uid)
        writers = {}
        for kind in ("hello", "request"):
            k_uid, k_seq, k_cols, k_order = tables[kind]
            keep = np.flatnonzero(np.isin(k_uid, wanted))
            writers[kind] = list(zip(k_uid[keep].tolist(), k_seq[keep].tolist(),
                                     k_cols["client_dir"].take(pa.array(k_order[keep])).to_pylist()))
        by_seq = np.argsort(a_seq, kind="stable")
        rows = pa.array(a_order[by_seq])
        for u, s, d, name in zip(a_uid[by_seq].tolist(), a_seq[by_seq].tolist(),
                                 a_cols["client_dir"].take(rows).to_pylist(),
                                 a_cols["client_alert"].take(rows).to_pylist()):
            if u in found:
                continue
            hellos = [hd for hu, hs, hd in writers["hello"] if hu == u and hs < s]
            requests = [rd for ru, rs, rd in writers["request"] if ru == u and rs < s]
            client = hellos[-1] if hellos else (requests[0] if requests else None)
            if client == d:
                found[u] = name
        return pa.array([found.get(u) for u in uid.tolist()], type=STR) if found else pa.nulls(len(uid), STR)


def _sorted(uid, seq, cols):
    """A kind's writes in (uid, seq) order: uid, seq, the columns as written and `order`, which
    row of the columns each sorted position is."""
    order = np.lexsort((seq, uid))
    return uid[order], seq[order], cols, order


_LAST, _OLD_OR_NEW, _NEW_OR_OLD, _FIRST, _FIRST_WRITE = range(5)
# The picks resolve() makes per kind, (field, rule); a field of the kind not named takes the
# first pick (the last write). Picks no field reads are not made: each is a column per uid.
_WANTED = {
    "hello": (("sni", _LAST),),
    "request": (("http_method", _LAST), ("client_dir", _FIRST_WRITE)),
    "response": (("http_status", _LAST),),
    "flight": (("server_ts", _FIRST), ("tls_version", _NEW_OR_OLD), ("server_alpn", _OLD_OR_NEW),
               ("tls_alert", _OLD_OR_NEW), ("cert_issuer", _NEW_OR_OLD)),
    "query": (("dns_query", _OLD_OR_NEW),),
}


@njit(cache=True)
def _pick(places, order, ordered, flags, modes, picked):
    """A kind's writes (places: each column row's uid position) taken in sequence order (the
    rows as they are when `ordered`, else `order`), each pick f per uid as a column row into
    picked[f, place]: _LAST the last write; _FIRST_WRITE the first; _OLD_OR_NEW the first
    flagged (truthy), else the last; _NEW_OR_OLD the last flagged, else none; _FIRST the first
    flagged (valid), else none (-1). An _OLD_OR_NEW pick holds -2 - row while no flagged write
    has come (a later write may still replace it)."""
    m = len(places)
    for k in range(m):
        r = k if ordered else order[k]
        u = places[r]
        for f in range(len(modes)):
            mode = modes[f]
            if mode == _LAST:
                picked[f, u] = r
            elif mode == _FIRST_WRITE:
                if picked[f, u] == -1:
                    picked[f, u] = r
            elif mode == _NEW_OR_OLD:
                if flags[f, r]:
                    picked[f, u] = r
            elif mode == _FIRST:
                if flags[f, r] and picked[f, u] == -1:
                    picked[f, u] = r
            elif picked[f, u] < 0:              # _OLD_OR_NEW, no flagged write yet
                picked[f, u] = r if flags[f, r] else -2 - r
    for f in range(len(modes)):
        if modes[f] == _OLD_OR_NEW:
            for r in range(m):
                u = places[r]
                if picked[f, u] < -1:
                    picked[f, u] = -2 - picked[f, u]


def _places(uid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct uids (ascending) and each given uid's position among them: a table over
    their span when that is small next to their number (dense flow uids: no sort), else np.unique."""
    if len(uid) == 0 or int(uid.max()) - int(uid.min()) > 8 * len(uid) + (1 << 16):
        distinct = np.unique(uid)
        return distinct, np.searchsorted(distinct, uid)
    return _dense_places(uid, int(uid.min()), int(uid.max()))


@njit(cache=True)
def _dense_places(uid, low, high):
    table = np.zeros(high - low + 1, np.int64)
    for i in range(len(uid)):
        table[uid[i] - low] = 1
    count = 0
    for j in range(len(table)):
        if table[j]:
            table[j] = count
            count += 1
        else:
            table[j] = -1
    distinct = np.empty(count, np.int64)
    for j in range(len(table)):
        if table[j] >= 0:
            distinct[table[j]] = low + j
    places = np.empty(len(uid), np.int64)
    for i in range(len(uid)):
        places[i] = table[uid[i] - low]
    return distinct, places


def _directions(hello_at: np.ndarray, hello_dir: pa.Array, request_at: np.ndarray,
                request_dir: pa.Array) -> pa.Array:
    """client_dir per uid: its last hello's, else its first request's (rows -1: none)."""
    if hello_dir.null_count or request_dir.null_count:
        direction = np.where(hello_at >= 0, _floats(hello_dir)[hello_at], _floats(request_dir)[request_at])
        return pa.array(direction, type=DIR, from_pandas=True)
    values = np.empty(len(hello_at), np.int8)
    valid = np.empty(len(hello_at), np.bool_)
    _fill_directions(hello_at, _int8s(hello_dir), request_at, _int8s(request_dir), values, valid)
    missing = len(valid) - int(np.count_nonzero(valid))
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if missing else None
    return pa.Array.from_buffers(DIR, len(values), [bitmap, pa.py_buffer(values)], missing)


def _int8s(col: pa.Array) -> np.ndarray:
    return col.to_numpy(zero_copy_only=False).astype(np.int8, copy=False) if len(col) else np.zeros(0, np.int8)


@njit(cache=True)
def _fill_directions(hello_at, hello_dir, request_at, request_dir, values, valid):
    for i in range(len(values)):
        h = hello_at[i]
        r = request_at[i]
        if h >= 0:
            values[i] = hello_dir[h]
            valid[i] = True
        elif r >= 0:
            values[i] = request_dir[r]
            valid[i] = True
        else:
            values[i] = 0
            valid[i] = False


def _arrow(values, kind: pa.DataType) -> pa.Array:
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values.cast(kind) if values.type != kind else values
    return pa.array(values, type=kind, from_pandas=True)


def _rows_batch(rows: list[tuple], names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, dict[str, pa.Array]]:
    """Python parsers' writes (uid, seq, *values) as one column batch."""
    columns = list(zip(*rows))
    return (np.array(columns[0], np.int64), np.array(columns[1], np.int64),
            {name: pa.array(columns[2 + j], type=TYPES[name]) for j, name in enumerate(names)})


def _joined(parts, names):
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            {name: pa.concat_arrays([p[2][name] for p in parts]) for name in names})


def _ends(uid_sorted: np.ndarray, rows: np.ndarray, last: bool) -> np.ndarray:
    """Among candidate rows (ascending) of a table sorted by (uid, seq): the first or last per uid."""
    if rows.size == 0:
        return rows
    u = uid_sorted[rows]
    change = u[1:] != u[:-1]
    keep = np.concatenate([change, [True]]) if last else np.concatenate([[True], change])
    return rows[keep]


def take_or_null(col: pa.Array, at: np.ndarray) -> pa.Array:
    """col[at] with null where at < 0. (Arrow's take with null indices is ~10x slower than
    taking from the column with one null appended.)"""
    padded = pa.concat_arrays([col, pa.nulls(1, col.type)])
    return padded.take(pa.array(np.where(at < 0, len(col), at)))


def _floats(col: pa.Array) -> np.ndarray:
    """A numeric column as float64 (NaN: null) with a last slot NaN, for rows where -1 is none."""
    return np.append(col.to_numpy(zero_copy_only=False).astype(np.float64), np.nan)


def _valid(col: pa.Array) -> np.ndarray:
    return col.is_valid().to_numpy(zero_copy_only=False)


def _truthy(col: pa.Array) -> np.ndarray:
    """Python truthiness of each value (None and "" are false)."""
    if pa.types.is_large_string(col.type) or pa.types.is_string(col.type):
        offsets, _ = string_buffers(col)
        filled = offsets[1:] != offsets[:-1]           # read from the offsets: no lengths column
        return filled & _valid(col) if col.null_count else filled
    return _valid(col)
