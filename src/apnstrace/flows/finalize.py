"""Finished partial flows -> the `flows` frame: client/server sides, conn_state, text addresses."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import schema
from ..decode.address_text import address_text
from ..heap import Trimmer
from ..reader.walk import njit
from . import partials as P
from .keys import pair_hash
from .state import STATES, conn_state

V4_MARK = np.uint64(0x0000FFFF)


def client_is_a(part: P.Partials) -> np.ndarray:
    """docs/flows.md 'Client and server': SYN sender, else SYN+ACK receiver, else higher port."""
    fs, fsa, pa, pb = part["first_syn_dir"], part["first_synack_dir"], part["port_a"], part["port_b"]
    return np.select(
        [fs == 0, fs == 1, fsa == 1, fsa == 0, pa > pb, pa < pb],
        [True, False, True, False, True, False],
        part["first_dir"] == 0)


def address_codes(hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, pa.Array]:
    """16-byte addresses -> (codes, text of each distinct address), formatting each once."""
    codes, labels, _ = _address_codes(hi, lo)
    return codes, labels


def _address_codes(hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, pa.Array, tuple[np.ndarray, np.ndarray]]:
    """address_codes, and each label's address as its two numbers (hi, lo)."""
    if len(hi) == 0:
        none = np.empty(0, np.uint64)
        return np.empty(0, np.int64), pa.array([], pa.string()), (none, none)
    codes, u_hi, u_lo = _groups(hi, lo)
    # Each address's 16 bytes in network order; a mapped IPv4 address is written from its last 4.
    raw = np.empty((len(u_hi), 2), ">u8")
    raw[:, 0], raw[:, 1] = u_hi, u_lo
    v4 = (u_hi == 0) & ((u_lo >> np.uint64(32)) == V4_MARK)
    at = np.arange(len(u_hi), dtype=np.int64) * 16 + np.where(v4, 12, 0)
    return codes, address_text(raw.view(np.uint8).ravel(), at, ~v4).cast(pa.string()), (u_hi, u_lo)


def _groups(hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(code per address, numbered by first occurrence; each code's address as hi, lo)."""
    if not (hi != 0).any():  # IPv4 only (mapped): the low half is the whole address
        codes, uniques = pd.factorize(lo)
        return codes, np.zeros(len(uniques), np.uint64), np.asarray(uniques, np.uint64)
    # IPv6 present: group on a hash of both halves, checked exactly
    codes, _ = pd.factorize(pair_hash(hi, lo))
    first = np.empty(codes.max() + 1, np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    if not (np.array_equal(hi[first][codes], hi) and np.array_equal(lo[first][codes], lo)):
        codes, _ = pd.factorize(pd.MultiIndex.from_arrays([hi, lo]))
        first = np.empty(codes.max() + 1, np.int64)
        first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    return codes, hi[first], lo[first]


def addresses_to_text(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    codes, labels = address_codes(hi, lo)
    return labels.to_numpy(zero_copy_only=False)[codes] if len(codes) else np.empty(0, object)


def text_column(codes: np.ndarray, labels: list[str] | pa.Array) -> pd.api.extensions.ExtensionArray:
    """A pandas string column from codes into a few labels, built in C (no per-row objects)."""
    dictionary = labels if isinstance(labels, pa.Array) else pa.array(labels, type=pa.string())
    column = pa.DictionaryArray.from_arrays(pa.array(codes, type=pa.int32()), dictionary).cast(pa.string())
    return pd.array(column, dtype="string")


def _column_codes():
    """metadata.column_codes (imported when first used: the metadata package imports this module)."""
    from ..metadata import column_codes
    return column_codes


@dataclass(frozen=True)
class ServerCodes:
    """The server_ip column's codes, made only if read (attach and classify read them, saving
    ~5 ms of encoding 198K addresses again on the engine benchmark): per piece, its codes into
    its address labels (the clients' too) and each label's address as numbers (hi, lo); the
    rows in the order `order` takes them, if any."""

    codes: tuple[np.ndarray, ...]
    labels: tuple[pa.Array, ...]
    numbers: tuple[tuple[np.ndarray, np.ndarray], ...]
    order: np.ndarray | None

    def __call__(self):
        """Codes into exactly the addresses present, each once, numbered in label order."""
        sizes = [len(labels) for labels in self.labels]
        if len(self.codes) == 1:
            rows = self.codes[0]
        else:                       # piece codes shifted onto the labels one after the other
            starts = np.cumsum([0] + sizes[:-1])
            rows = np.concatenate([codes + start for codes, start in zip(self.codes, starts)])
        if self.order is not None:
            rows = rows[self.order]
        seen = np.zeros(sum(sizes), bool)
        seen[rows] = True
        keep = np.flatnonzero(seen)
        lookup = np.full(len(seen) + 1, -1, np.int64)       # last slot: a null row (-1)
        if len(self.labels) == 1:
            distinct = self.labels[0].take(keep)
            lookup[keep] = np.arange(len(keep))
        else:   # an address in several pieces has a label in each: grouped on its numbers, not text
            hi = np.concatenate([hi for hi, _ in self.numbers])[keep]
            lo = np.concatenate([lo for _, lo in self.numbers])[keep]
            group, first = _grouped(hi, lo)
            distinct = pa.concat_arrays(list(self.labels)).take(keep[first])
            lookup[keep] = group
        return _column_codes().Codes(rows, distinct, lookup)


_MUL = np.uint64(0x9E3779B97F4A7C15)
_MUL2 = np.uint64(0xBF58476D1CE4E5B9)


@njit(cache=True)
def _grouped(hi, lo):
    """(group per address, numbered by first occurrence; the row first showing each group):
    one pass over an open-addressing table (pd.factorize of a hash of the ~40K server labels
    of the engine benchmark, then checking it, costs ~2.7 ms; this ~0.3)."""
    n = len(hi)
    size = 16
    while size < 2 * n:
        size *= 2
    mask = np.uint64(size - 1)
    slots = np.full(size, -1, np.int64)
    group = np.empty(n, np.int64)
    first = np.empty(n, np.int64)
    groups = 0
    for i in range(n):
        h, l = hi[i], lo[i]
        k = (l ^ (h * _MUL)) * _MUL2
        at = (k ^ (k >> np.uint64(29))) & mask
        while True:
            g = slots[at]
            if g < 0:
                slots[at] = groups
                first[groups] = i
                group[i] = groups
                groups += 1
                break
            f = first[g]
            if hi[f] == h and lo[f] == l:
                group[i] = g
                break
            at = (at + np.uint64(1)) & mask
    return group, first[:groups]


HIDDEN = ("_c_hi", "_c_lo", "_s_hi", "_s_lo")     # addresses as numbers, for ordering pieces
UID = "_uid"          # the flow's uid (table.PacketFlows), for joining what parsers found


def flows_piece(part: P.Partials) -> pd.DataFrame:
    """Finished partial flows -> rows of the flows schema (plus HIDDEN), not yet ordered."""
    n = len(part["h"])
    a_client = client_is_a(part)

    def side(name: str, client: bool) -> np.ndarray:
        a_val, b_val = part[f"{name}0"], part[f"{name}1"]     # dir 0 is sent by a
        return np.where(a_client == client, a_val, b_val)

    per_side = ("pkts", "bytes", "payload", "syn", "synack", "fin", "rst", "ndata") + P.FIRST_TIMES
    c = {name: side(name, True) for name in per_side + ("syn_last",)}
    s = {name: side(name, False) for name in per_side + ("synack_ts", "ttl", "rst_ttl")}
    is_tcp = part["proto"] == 6
    state = conn_state(is_tcp, c["pkts"], s["pkts"], c["syn"], s["synack"], c["fin"], s["fin"],
                       c["rst"], s["rst"], c["payload"], s["payload"])
    with np.errstate(invalid="ignore"):
        rtt = (s["synack_ts"] - c["syn_last"]) * 1000.0
    rtt_ok = np.isfinite(rtt) & (rtt >= 0) & is_tcp
    with np.errstate(invalid="ignore"):
        ttfb = (s["data_ts"] - c["data_ts"]) * 1000.0
    ttfb_ok = np.isfinite(ttfb) & (ttfb >= 0)        # a server that spoke first has no ttfb

    codes, labels, numbers = _address_codes(np.concatenate([part["a_hi"], part["b_hi"]]),
                                            np.concatenate([part["a_lo"], part["b_lo"]]))
    code_a, code_b = codes[:n], codes[n:]
    server = np.where(a_client, code_b, code_a)
    vlan = pd.arrays.IntegerArray(np.maximum(part["vlan"], 0).astype(np.int32), part["vlan"] < 0)
    data = {           # flow_id, duration and the columns later stages fill: made by assemble()
        "ts_start": part["ts_first"],
        "ts_end": part["ts_last"],
        "client_ip": text_column(np.where(a_client, code_a, code_b), labels),
        "client_port": np.where(a_client, part["port_a"], part["port_b"]),
        "server_ip": text_column(server, labels),
        "server_port": np.where(a_client, part["port_b"], part["port_a"]),
        "vlan": vlan,
        "pkts_c2s": c["pkts"], "pkts_s2c": s["pkts"],
        "bytes_c2s": c["bytes"], "bytes_s2c": s["bytes"],
        "syn_retries": np.maximum(c["syn"] - 1, 0),
        "retransmits": part["retx"],
        "rtt_ms": pd.arrays.FloatingArray(np.where(rtt_ok, rtt, 0.0), ~rtt_ok),
        "ttfb_ms": pd.arrays.FloatingArray(np.where(ttfb_ok, ttfb, 0.0), ~ttfb_ok),
    }
    frame = schema.to_frame(data, [col for col in schema.FLOWS if col.name in data])
    for name, a_col, b_col in (("_c_hi", "a_hi", "b_hi"), ("_c_lo", "a_lo", "b_lo"),
                               ("_s_hi", "b_hi", "a_hi"), ("_s_lo", "b_lo", "a_lo")):
        frame[name] = np.where(a_client, part[a_col], part[b_col])
    frame[UID] = part["uid"]
    frame["_client_is_a"] = a_client
    # Text made by assemble, for the ordered rows: a byte a row here, not ~11.
    frame["transport"] = np.where(is_tcp, 0, 1).astype(np.int8)
    frame["state"] = np.searchsorted(CODED["state"], state).astype(np.int8)
    _column_codes().hand_over(frame["server_ip"].array, ServerCodes((server,), (labels,), (numbers,), None))
    for name, value in evidence_columns(c, s, is_tcp).items():
        frame[name] = value
    for name in NARROW:
        frame[name] = narrowed(frame[name].to_numpy())
    for name in SPARSE:
        frame[name] = held_sparse(frame[name].to_numpy())
    return frame


# Text columns a piece holds as codes into these sorted labels.
CODED = {"transport": ("tcp", "udp"), "state": STATES}


def _is_udp(transport: pd.Series) -> np.ndarray:
    """Transport not tcp, from a piece's codes or a whole result's text."""
    values = transport.to_numpy()
    return values != 0 if values.dtype.kind == "i" else values != "tcp"


# Columns a piece holds narrower while reading (~40 bytes a row of the finished flows held
# until assemble: ~40 MB on engine_10m's 988K flows), widened back by assemble to these types
# (but KEPT_NARROW).
NARROW = {name: np.int64 for name in ("pkts_c2s", "pkts_s2c", "bytes_c2s", "bytes_s2c", "retransmits",
                                      UID, "_syns", "_c_payload", "_s_payload", "_c_ndata")}
NARROW |= {"_s_ttl": np.float64, "_s_rst_ttl": np.float64}
# Hidden evidence left narrow by assemble: only the health stages read them, comparing and
# printing them as they would the wide values (4 bytes a flow each: engine_10m ~24 MB less
# from table.finish to the last stage).
KEPT_NARROW = ("_syns", "_c_payload", "_s_payload", "_c_ndata", "_s_ttl", "_s_rst_ttl")
_I32 = np.iinfo(np.int32)


def narrowed(values: np.ndarray) -> np.ndarray:
    """int64 as int32 when every value fits (checked, else unchanged); float TTLs (0-255 or NaN,
    exact in float32) as float32."""
    if values.dtype.kind == "f":
        return values.astype(np.float32)
    if values.dtype == np.int64 and (len(values) == 0 or (values.min() >= _I32.min and values.max() <= _I32.max)):
        return values.astype(np.int32)
    return values


# Columns most flows leave at one value: evidence times and TTLs (NaN: no such packet) and the
# high halves of IPv4 addresses (0). A piece holds them as their other values and positions when
# that is smaller (FIN and RST times are set in 1-7% of engine_10m's flows, the SYN and server
# data times in 34-42%, IPv6 addresses in 3%: ~60 bytes a row less, ~58 MB over its 988K
# finished flows while reading); assemble makes them dense again once the pieces are joined.
SPARSE = ("_syn_first", "_syn_last", "_s_data_ts", "_c_fin_ts", "_s_fin_ts", "_c_rst_ts", "_s_rst_ts",
          "_s_ttl", "_s_rst_ttl", "_c_hi", "_s_hi")


def held_sparse(values: np.ndarray) -> np.ndarray | pd.arrays.SparseArray:
    """A float (NaN-mostly) or unsigned (0-mostly) column as a SparseArray of its other values
    and their int32 positions when that takes fewer bytes, else unchanged."""
    fill = np.nan if values.dtype.kind == "f" else values.dtype.type(0)
    common = np.count_nonzero(np.isnan(values) if values.dtype.kind == "f" else values == 0)
    if (len(values) - common) * (values.itemsize + 4) < values.nbytes:
        return pd.arrays.SparseArray(values, fill_value=fill, kind="integer")
    return values


def dense(column: pd.Series) -> pd.Series:
    """A column joined from pieces, dense (held_sparse's columns come back as numpy arrays)."""
    if isinstance(column.dtype, pd.SparseDtype):
        return pd.Series(column.array.to_dense())
    return column


# Per-flow facts the block reasons and timing read (docs/blocked.md); times are NaN when the
# event never happened. Hidden: not in the public schema, dropped by pipeline._public.
EVIDENCE = ("_syns", "_syn_first", "_syn_last", "_handshake", "_c_data_ts", "_s_data_ts",
            "_c_payload", "_s_payload", "_c_ndata", "_c_fin_ts", "_s_fin_ts", "_c_rst_ts", "_s_rst_ts",
            "_s_ttl", "_s_rst_ttl")


def evidence_columns(c: dict, s: dict, is_tcp: np.ndarray) -> dict[str, np.ndarray]:
    def when(times: np.ndarray) -> np.ndarray:
        return np.where(np.isfinite(times), times, np.nan)

    return {
        "_syns": np.where(is_tcp, c["syn"], 0), "_syn_first": when(c["syn_first"]),
        "_syn_last": when(c["syn_last"]), "_handshake": is_tcp & (c["syn"] > 0) & (s["synack"] > 0),
        "_c_data_ts": when(c["data_ts"]), "_s_data_ts": when(s["data_ts"]),
        "_c_payload": c["payload"], "_s_payload": s["payload"], "_c_ndata": c["ndata"],
        "_c_fin_ts": when(c["fin_ts"]), "_s_fin_ts": when(s["fin_ts"]),
        "_c_rst_ts": when(c["rst_ts"]), "_s_rst_ts": when(s["rst_ts"]),
        # TTLs as floats, NaN when no such packet (health/rst_origin.py reads them).
        "_s_ttl": np.where(s["ttl"] >= 0, s["ttl"], np.nan), "_s_rst_ttl": np.where(s["rst_ttl"] >= 0, s["rst_ttl"], np.nan),
    }


def assemble(pieces: list[pd.DataFrame], *, extra: tuple[str, ...] = (), keep_keys: bool = False,
             drop: np.ndarray | None = None) -> pd.DataFrame:
    """Ordered flows frame: by start time, then client address and port, server address and
    port (addresses as 16-byte numbers, IPv4 as ::ffff:a.b.c.d), then tcp before udp.

    Built a column at a time, each taken out of the pieces as it is copied, so the finished
    flows are held about once, not three times (pieces, concatenation, ordered copy).
    `extra`: more columns the pieces carry (scale/merge.py orders whole per-file results);
    `keep_keys`: keep the HIDDEN address numbers, so ordered results can be ordered again;
    `drop`: rows (of the pieces one after the other) left out, in the same copy.
    """
    pieces = [p for p in pieces if len(p)]
    if not pieces:
        frame = schema.to_frame(None, schema.FLOWS)
        frame[UID] = np.empty(0, np.int64)
        frame["_client_is_a"] = np.empty(0, bool)
        for name in EVIDENCE:
            frame[name] = np.empty(0, bool if name == "_handshake" else np.float64)
        if keep_keys:
            for name in HIDDEN:
                frame[name] = np.empty(0, np.uint64)
        return frame
    # Columns out of plain dicts: popping from a wide DataFrame costs a block rebuild each time.
    pieces = [dict(p.items()) for p in pieces]
    # The pieces' columns (a batch of flows each: small arrays) are freed as the full-length ones
    # are made, into holes these cannot use: handed back as they add up (engine_10m's assemble
    # ~1,100 -> ~900 MB peak), not held to the end.
    trimmer = Trimmer()

    def joined(name: str) -> pd.Series:
        parts = [piece.pop(name) for piece in pieces]
        trimmer.freeing(sum(part.nbytes for part in parts))
        return dense(parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True))

    keys = {name: joined(name) for name in HIDDEN}
    order = np.lexsort((
        np.concatenate([_is_udp(p["transport"]) for p in pieces]),
        np.concatenate([p["server_port"].to_numpy() for p in pieces]),
        keys["_s_lo"].to_numpy(), keys["_s_hi"].to_numpy(),
        np.concatenate([p["client_port"].to_numpy() for p in pieces]),
        keys["_c_lo"].to_numpy(), keys["_c_hi"].to_numpy(),
        np.concatenate([p["ts_start"].to_numpy() for p in pieces])))
    if not keep_keys:
        keys = {}
    if drop is not None:
        order = order[~drop[order]]
    in_order = (drop is None or not drop.any()) and bool(np.array_equal(order, np.arange(len(order))))
    made = [_column_codes().handed(piece["server_ip"].array) for piece in pieces]
    dtypes = {col.name: col.dtype for col in schema.FLOWS}
    nulls: dict[str, pd.api.extensions.ExtensionArray] = {}
    columns = {}
    for name in [col.name for col in schema.FLOWS] + [UID, "_client_is_a", *EVIDENCE, *extra, *keys]:
        if name in keys:
            column = keys.pop(name)
        elif name in pieces[0]:       # pieces are all flows_piece's or all whole results
            column = joined(name)
        else:       # left out of flows_piece's pieces: made here once, for the ordered rows
            columns[name] = _made_here(name, columns, dtypes, len(order), nulls)
            continue
        columns[name] = column if in_order else column.take(order).reset_index(drop=True)
        if name in NARROW and name not in KEPT_NARROW:
            columns[name] = columns[name].astype(NARROW[name])
        elif name in CODED and column.dtype.kind == "i":
            columns[name] = pd.Series(text_column(columns[name].to_numpy(), list(CODED[name])))
    columns["flow_id"] = pd.Series(np.arange(len(order), dtype=np.int64))
    if all(isinstance(m, ServerCodes) and m.order is None for m in made):     # each as flows_piece made it
        codes = ServerCodes(sum((m.codes for m in made), ()), sum((m.labels for m in made), ()),
                            sum((m.numbers for m in made), ()), None if in_order else order)
        _column_codes().hand_over(columns["server_ip"].array, codes)
    return pd.DataFrame(columns, copy=False)


def _made_here(name: str, columns: dict, dtypes: dict, rows: int, nulls: dict) -> pd.Series | None:
    """A FLOWS column flows_piece leaves out (8 bytes a row each, ~130 a row in all, over the
    finished flows held while reading): flow_id (numbered once ordered: None until then),
    duration from the `columns` ts_start and ts_end, the others all null.

    The all-null text columns share one Arrow array (`nulls`, by dtype): ~12 bytes a row each
    (large_string offsets, and the zeros they were cast from), 14 of them, ~170 MB on
    engine_10m until attach and classify replace them. Arrow arrays are never written in
    place (pandas replaces a column's array on assignment), so sharing one is safe; numeric
    nulls are numpy arrays pandas may write to, made once each."""
    if name == "flow_id":
        return None
    if name == "duration":
        return columns["ts_end"] - columns["ts_start"]
    dtype = dtypes[name]
    if dtype != "string":
        return pd.Series(schema.null_column(dtype, rows))
    if dtype not in nulls:
        nulls[dtype] = schema.null_column(dtype, rows)
    return pd.Series(nulls[dtype].copy())       # a new array object over the same Arrow data


def to_flows_frame(part: P.Partials) -> pd.DataFrame:
    frame = assemble([flows_piece(part)] if len(part["h"]) else [])
    return frame.drop(columns=[UID, "_client_is_a", *EVIDENCE], errors="ignore")
