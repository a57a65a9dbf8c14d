"""The flow table: packet columns in, finished flows out, memory bounded by open flows.

Each chunk is grouped by flow key with a stable sort, split into flows (idle timeout, or a
SYN on a closed connection) with cumulative sums instead of a per-packet loop, and reduced
with `ufunc.reduceat`. A key's last flow in a chunk stays open and continues in the next
chunk (or file); flows idle past their timeout are finished and leave memory.

Open flows sit in slots (slots.py) found by key hash (keymap.py) and are updated in place, so
a chunk costs what it touches, however many flows are open.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import EngineError
from ..options import FlowOptions
from ..records import PacketBatch
from ..stats import RunStats
from . import partials as P
from .finalize import assemble, flows_piece
from .keymap import KeyMap
from .keys import key_hash, stable_order
from .slots import Slots

SYN, ACK, FIN, RST = 0x02, 0x10, 0x01, 0x04
TCP = 6
SEG_STRIDE = 1 << 34       # separates flows when one running max spans all of them
# Finished flows turned into output rows together. Each batch is held twice as it is turned
# (partial columns, ~480 bytes a flow, then flows_piece's temporaries), over everything read so
# far: 1 << 15 took engine_10m's reading peak 985 -> 913 MB, but cost table.add ~40-60 ms on
# engine_2m (0.61-0.65 vs 0.66-0.71 s, alternating) and, with the pieces held sparse, reading
# stays below attach's peak either way (whole run 953-957 MB with 1 << 15, 1 << 16 or 1 << 17).
ROWS_BATCH = 1 << 17


@dataclass(frozen=True, slots=True)
class PacketFlows:
    """For each packet of a chunk: the uid of the flow it joined (flows keep their uid to the
    output), and its rank among that flow's payload-carrying packets in its direction."""

    uid: np.ndarray
    rank: np.ndarray
    h: np.ndarray | None = None          # each packet's flow key hash (scale/partial.py reuses it)
    clock: np.ndarray | None = None      # the capture clock before each packet


class FlowTable:
    def __init__(self, options: FlowOptions, stats: RunStats | None = None) -> None:
        self.options = options
        self.limits = stats.limits if stats is not None else Counter()   # flows finished early, counted
        # Open flows: one slot each, found by key hash. `deadline`: when the flow would be idle
        # past its timeout (a prefilter for _expire; the exact rule decides). `stamp`: when the
        # slot was last written, counted in rows: taken out in that order, open flows come out
        # as they did when the table was rebuilt each chunk (kept rows first, then the chunk's).
        self.slots = Slots({"deadline": (np.float64, np.inf), "stamp": (np.int64, -1)})
        self.stamp = 0
        self.index = KeyMap()
        self.finished: list[P.Partials] = []      # finished, not yet turned into rows
        self.finished_count = 0
        self.pieces: list[pd.DataFrame] = []       # finished flows as compact output rows
        self.now = -np.inf
        self.next_uid = 0

    # -- public -------------------------------------------------------------------------
    def add(self, pk: PacketBatch, clock: np.ndarray | None = None) -> PacketFlows:
        """Add a chunk of packets; say which flow each joined and its data-segment rank.

        `clock` (optional): the capture clock before each frame, when the chunk holds only some
        of the capture's frames (scale/merge.py replays the flows that cross file boundaries)."""
        if len(pk) == 0:
            return PacketFlows(np.empty(0, np.int64), np.empty(0, np.int64))
        h = key_hash(pk.a_hi, pk.a_lo, pk.b_hi, pk.b_lo, pk.port_a, pk.port_b, pk.proto)
        codes, uniques = pd.factorize(h)
        order = stable_order(codes, len(uniques))        # by key, capture order within a key
        if clock is None:
            clock = frame_clock(pk.ts, self.now)
        uid, rank = self._add_sorted(pk, h, codes[order], order, clock[order])
        self.now = max(self.now, float(np.max(pk.ts)))
        self._expire()
        joined = PacketFlows(np.empty(len(pk), np.int64), np.empty(len(pk), np.int64), h, clock)
        joined.uid[order] = uid
        joined.rank[order] = rank
        return joined

    def finish(self) -> pd.DataFrame:
        """Close every open flow; return all flows as the ordered `flows` frame."""
        return assemble(self.finish_pieces())

    def finish_pieces(self) -> list[pd.DataFrame]:
        """Close every open flow; return the flows as unordered pieces (finalize.assemble orders
        them; scale/merge.py assembles the pieces of many files at once)."""
        still_open = self.open
        self.slots.clear()                       # freed before the rows are built
        self.index.clear()
        self._retire(still_open)
        self._to_rows()
        pieces, self.pieces = self.pieces, []
        return pieces

    def snapshot(self) -> pd.DataFrame:
        """All flows so far as the `flows` frame, open ones as they stand, without closing them:
        live capture reports while reading goes on (finish() still closes them at the end)."""
        self._to_rows()
        if len(self.pieces) > 1:
            # A snapshot per report would leave a piece per report: ~35 KB each and an assemble()
            # that slows with their number (360 pieces: ~12 s). One piece, same rows in order.
            self.pieces = [pd.concat(self.pieces, ignore_index=True)]
        pieces = [p.copy(deep=False) for p in self.pieces]     # assemble() pops columns
        if self.open_flows:
            pieces.append(flows_piece(self.open))
        return assemble(pieces)

    def take_finished_before(self, cutoff: float) -> list[pd.DataFrame]:
        """Finished flows whose last frame is before `cutoff`, as unordered pieces, and out of
        the table: a long live capture reports a window and keeps memory to it (live/run.py).

        Closed TCP flows (FIN both ways, or a RST) silent since before `cutoff` count as
        finished too, though the table would hold them to tcp_timeout in case their key comes
        back: a packet of that key after so long starts a new flow here, where a file analysis
        would add it to the closed one."""
        live = self._in_order(self.slots.live_slots())
        state = self.slots.take(live)
        done = live[P.closed(state) & (state["ts_last"] < cutoff)]
        if done.size:
            self._retire(self.slots.take(done))
            self._release(done)
        self._to_rows()
        taken, kept = [], []
        for piece in self.pieces:
            old = piece["ts_end"].to_numpy() < cutoff
            if old.any():
                taken.append(piece[old].reset_index(drop=True))
            if not old.all():
                kept.append(piece[~old].reset_index(drop=True) if old.any() else piece)
        self.pieces = kept
        return taken

    def _retire(self, part: P.Partials) -> None:
        """Finished flows leave the working columns for compact output rows, a batch at a time."""
        if len(part["h"]):
            self.finished.append(part)
            self.finished_count += len(part["h"])
        if self.finished_count >= ROWS_BATCH:
            self._to_rows()

    def _to_rows(self) -> None:
        if self.finished_count:
            # Each part's columns let go as they are joined, before the rows are built: the batch
            # (~400 bytes a flow, 131K flows) was held twice through flows_piece (engine_2m's peak).
            parts, self.finished = self.finished, []
            joined = {name: np.concatenate([part.pop(name) for part in parts]) for name in P.FIELDS}
            del parts
            self.pieces.append(flows_piece(joined))
        self.finished, self.finished_count = [], 0

    @property
    def open(self) -> P.Partials:
        """The open flows' columns (a compact copy)."""
        return self.slots.take(self._in_order(self.slots.live_slots()))

    def open_column(self, name: str) -> np.ndarray:
        """One column of the open flows (slot order), cheaper than `open` for per-chunk callers."""
        return self.slots.column(name)

    def _in_order(self, slots: np.ndarray) -> np.ndarray:
        return slots[np.argsort(self.slots.more["stamp"][slots], kind="stable")]

    @property
    def open_flows(self) -> int:
        return len(self.slots)

    def _release(self, slots: np.ndarray) -> None:
        self.index.delete(self.slots.cols["h"][slots])
        self.slots.release(slots)

    # -- one chunk ----------------------------------------------------------------------
    def _add_sorted(self, pk: PacketBatch, h: np.ndarray, code: np.ndarray, order: np.ndarray,
                    clock: np.ndarray) -> None:
        opts = self.options
        n = len(order)
        col = {name: getattr(pk, name)[order] for name in
               ("ts", "wire_len", "a_hi", "a_lo", "b_hi", "b_lo", "port_a", "port_b", "proto",
                "tcp_flags", "seq", "payload_len", "vlan", "ttl")}
        col["dir"] = pk.direction[order].astype(np.int64)
        col["h"] = h[order]
        ts, d, flags = col["ts"], col["dir"], col["tcp_flags"]
        tcp = col["proto"] == TCP

        group_start = np.empty(n, bool)
        group_start[0] = True
        np.not_equal(code[1:], code[:-1], out=group_start[1:])
        gfirst = np.flatnonzero(group_start)
        self._check_no_collision(col, gfirst, group_start)

        # Open flows these keys continue.
        st = self.slots.cols                               # open flows' columns, by slot
        sidx = self.index.find(col["h"][gfirst]) if len(self.index) else np.full(len(gfirst), -1)
        has_state = sidx >= 0
        if has_state.any():
            self._check_state_keys(col, gfirst[has_state], sidx[has_state])
        state_of_row = np.full(n, -1, np.int64)
        state_of_row[gfirst] = sidx

        pure_syn = tcp & ((flags & SYN) != 0) & ((flags & ACK) == 0)
        synack = tcp & ((flags & SYN) != 0) & ((flags & ACK) != 0)
        fin = tcp & ((flags & FIN) != 0)
        rst = tcp & ((flags & RST) != 0)

        # Idle gaps: from the key's previous frame, by the frames' own times, or by how far the
        # capture clock moved since that frame (so a flow the clock has left behind stays ended,
        # whatever the chunking). The clock, not the previous frame's time: after the capture's
        # time steps back, the clock stands still until time catches up, and flows go on.
        prev_frame = np.empty(n)
        prev_frame[1:] = ts[:-1]
        prev_clock = np.empty(n)
        prev_clock[1:] = np.maximum(clock[:-1], ts[:-1])
        st_rows = gfirst[has_state]
        prev_frame[gfirst] = prev_clock[gfirst] = np.nan
        prev_frame[st_rows] = st["ts_prev"][sidx[has_state]]
        prev_clock[st_rows] = st["clock_last"][sidx[has_state]]
        timeout = np.where(tcp, opts.tcp_timeout, opts.udp_timeout)
        with np.errstate(invalid="ignore"):
            gap_new = ((ts - prev_frame) > timeout) | ((clock - prev_clock) > timeout)
        st_closed = np.zeros(n, bool)
        st_closed[st_rows] = P.closed({name: st[name][sidx[has_state]] for name in ("fin0", "fin1", "rst0", "rst1")})
        new_flow = gap_new.copy()
        new_flow[gfirst[~has_state]] = True
        new_flow[st_rows] |= st_closed[st_rows] & pure_syn[st_rows]
        continues = group_start & ~new_flow            # first rows that continue an open flow

        seg_start = group_start | new_flow
        fin0 = (fin & (d == 0)).astype(np.int64)
        fin1 = (fin & (d == 1)).astype(np.int64)
        rst_i = rst.astype(np.int64)
        init_rows = np.flatnonzero(continues)
        init_idx = state_of_row[init_rows]
        while True:   # a SYN on a closed connection starts a new flow; closure restarts there
            seg = np.cumsum(seg_start) - 1
            firsts = np.flatnonzero(seg_start)
            init = np.zeros((3, len(firsts)), np.int64)
            cont_seg = seg[init_rows]
            init[0, cont_seg] = st["fin0"][init_idx]
            init[1, cont_seg] = st["fin1"][init_idx]
            init[2, cont_seg] = st["rst0"][init_idx] + st["rst1"][init_idx]
            c0 = _cumsum_in(fin0, seg, firsts) + init[0, seg]
            c1 = _cumsum_in(fin1, seg, firsts) + init[1, seg]
            cr = _cumsum_in(rst_i, seg, firsts) + init[2, seg]
            closed_after = ((c0 > 0) & (c1 > 0)) | (cr > 0)
            closed_before = np.zeros(n, bool)
            closed_before[1:] = closed_after[:-1]
            extra = np.flatnonzero(~seg_start & pure_syn & closed_before)
            if not extra.size:
                break
            # Only the first such SYN of each flow splits it: the SYNs after it belong to the
            # new flow, which is not closed.
            first_in_flow = np.ones(extra.size, bool)
            first_in_flow[1:] = seg[extra[1:]] != seg[extra[:-1]]
            seg_start[extra[first_in_flow]] = True

        nseg = len(firsts)
        seg_cont = np.zeros(nseg, bool)
        seg_cont[seg[init_rows]] = True
        seg_state = np.full(nseg, -1, np.int64)
        seg_state[seg[init_rows]] = init_idx

        part = self._reduce(col, seg, firsts, seg_cont, seg_state, tcp, pure_syn, synack, fin, rst, clock)
        fresh = np.flatnonzero(~seg_cont)
        part["uid"][fresh] = self.next_uid + np.arange(fresh.size)
        self.next_uid += fresh.size
        rank = self._data_rank(col, seg, firsts, seg_cont, seg_state)

        # Combine continuing segments with the open flows they extend.
        cont = np.flatnonzero(seg_cont)
        if cont.size:
            merged = P.combine(self.slots.take(seg_state[cont]), P.take(part, cont))
            for name in P.FIELDS:
                part[name][cont] = merged[name]

        # The last flow of each key stays open (in its key's slot); the others are finished.
        last_seg = np.empty(nseg, bool)
        last_seg[:-1] = code[firsts[1:]] != code[firsts[:-1]]
        last_seg[-1] = True
        self._retire(P.take(part, np.flatnonzero(~last_seg)))
        ended_states = sidx[has_state & new_flow[gfirst]]          # open flows that a new flow replaced
        if ended_states.size:
            self._retire(self.slots.take(ended_states))
        slot = sidx.copy()                                  # per key, in key order like last_seg
        fresh_keys = np.flatnonzero(~has_state)
        slot[fresh_keys] = self.slots.alloc(fresh_keys.size)
        self.index.insert(col["h"][gfirst[fresh_keys]], slot[fresh_keys])
        last = np.flatnonzero(last_seg)
        self.slots.write(slot, part, last)
        timeout = np.where(part["proto"][last] == TCP, opts.tcp_timeout, opts.udp_timeout)
        self.slots.more["deadline"][slot] = part["clock_last"][last] + timeout
        self.slots.more["stamp"][slot] = self.stamp + np.arange(slot.size)
        self.stamp += slot.size
        return part["uid"][seg], rank

    def _data_rank(self, col, seg, firsts, seg_cont, seg_state) -> np.ndarray:
        """Per packet: how many payload-carrying packets its flow sent that way before it (-1: none)."""
        rank = np.full(len(seg), -1, np.int64)
        data = col["payload_len"] > 0
        cont = np.flatnonzero(seg_cont)
        for k in (0, 1):
            mine = data & (col["dir"] == k)
            before = np.zeros(len(firsts), np.int64)
            before[cont] = self.slots.cols[f"ndata{k}"][seg_state[cont]]
            count = _cumsum_in(mine.astype(np.int64), seg, firsts) - mine + before[seg]
            rank[mine] = count[mine]
        return rank

    def _reduce(self, col, seg, firsts, seg_cont, seg_state, tcp, pure_syn, synack, fin, rst, clock) -> P.Partials:
        n = len(seg)
        nseg = len(firsts)
        d = col["dir"]
        ts = col["ts"]
        out: P.Partials = {}
        for name in P.KEY + ("h", "vlan"):
            out[name] = col[name][firsts]
        out["first_dir"] = d[firsts]
        out["ts_first"] = np.minimum.reduceat(ts, firsts)
        out["ts_last"] = np.maximum.reduceat(ts, firsts)
        lasts = np.empty(len(firsts), np.int64)
        lasts[:-1] = firsts[1:] - 1
        lasts[-1] = n - 1
        out["ts_prev"] = ts[lasts]
        out["clock_last"] = np.maximum(clock[lasts], ts[lasts])
        wire, plen = col["wire_len"], col["payload_len"]
        for k in (0, 1):
            this = d == k
            out[f"pkts{k}"] = np.add.reduceat(this.astype(np.int64), firsts)
            out[f"bytes{k}"] = np.add.reduceat(np.where(this, wire, 0), firsts)
            out[f"payload{k}"] = np.add.reduceat(np.where(this, plen, 0), firsts)
            out[f"syn{k}"] = np.add.reduceat((pure_syn & this).astype(np.int64), firsts)
            out[f"synack{k}"] = np.add.reduceat((synack & this).astype(np.int64), firsts)
            out[f"fin{k}"] = np.add.reduceat((fin & this).astype(np.int64), firsts)
            out[f"rst{k}"] = np.add.reduceat((rst & this).astype(np.int64), firsts)
            out[f"synack_ts{k}"] = np.minimum.reduceat(np.where(synack & this, ts, P.INF), firsts)
            # First times of the events block reasons and ttfb are read from (docs/blocked.md).
            for name, mask in (("syn_first", pure_syn), ("data_ts", plen > 0), ("fin_ts", fin), ("rst_ts", rst)):
                out[f"{name}{k}"] = np.minimum.reduceat(np.where(mask & this, ts, P.INF), firsts)
        positions = np.arange(n)
        for name, mask in (("first_syn_dir", pure_syn), ("first_synack_dir", synack)):
            at = np.minimum.reduceat(np.where(mask, positions, n), firsts)
            out[name] = np.where(at < n, d[np.minimum(at, n - 1)], -1)
        ttl = col["ttl"]
        for k in (0, 1):
            this = d == k
            for name, rows in (("ttl", np.flatnonzero(this & ~rst)), ("rst_ttl", np.flatnonzero(this & rst))):
                out[f"{name}{k}"] = np.full(nseg, -1, np.int64)
                if rows.size:                        # rows are in flow order: the first of each flow's run
                    first = rows[_run_starts(seg[rows])]
                    out[f"{name}{k}"][seg[first]] = ttl[first]
        for k in (0, 1):
            answer = out[f"synack_ts{1 - k}"][seg]
            last = np.where(pure_syn & (d == k) & (ts <= answer), ts, -P.INF)
            out[f"syn_last{k}"] = np.maximum.reduceat(last, firsts)
        retx = np.zeros(nseg, np.int64)
        for k in (0, 1):
            base, hwm, count = self._sequence(col, seg, nseg, seg_cont, seg_state, tcp & (d == k), k)
            out[f"base{k}"], out[f"hwm{k}"] = base, hwm
            retx += count
        out["retx"] = retx
        out["uid"] = np.full(nseg, -1, np.int64)            # set by the caller
        for k in (0, 1):
            out[f"ndata{k}"] = np.add.reduceat(((plen > 0) & (d == k)).astype(np.int64), firsts)
        return out

    def _sequence(self, col, seg, nseg, seg_cont, seg_state, rows_mask, k):
        """Per flow and direction: sequence base, data high-water mark, retransmit count."""
        seq, plen = col["seq"], col["payload_len"]
        base = np.full(nseg, -1, np.int64)
        hwm = np.full(nseg, P.NO_HWM, np.int64)
        cont = np.flatnonzero(seg_cont)
        base[cont] = self.slots.cols[f"base{k}"][seg_state[cont]]
        hwm[cont] = self.slots.cols[f"hwm{k}"][seg_state[cont]]
        rows = np.flatnonzero(rows_mask & (seq >= 0))
        if rows.size == 0:
            return base, hwm, np.zeros(nseg, np.int64)
        rseg = seg[rows]                       # non-decreasing: rows are in flow order
        first_at = _run_starts(rseg)
        useg = rseg[first_at]
        unset = base[useg] < 0
        base[useg[unset]] = seq[rows[first_at[unset]]]
        data = rows[plen[rows] > 0]
        count = np.zeros(nseg, np.int64)
        if data.size == 0:
            return base, hwm, count
        dseg = seg[data]
        rel_end = ((seq[data] + plen[data] - base[dseg] + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
        shifted = rel_end + dseg * SEG_STRIDE
        running = np.maximum.accumulate(shifted)
        prev = np.empty_like(running)
        prev[0] = np.iinfo(np.int64).min
        prev[1:] = running[:-1]
        new_seg = np.empty(len(dseg), bool)
        new_seg[0] = True
        new_seg[1:] = dseg[1:] != dseg[:-1]
        prev_max = np.where(new_seg, P.NO_HWM, prev - dseg * SEG_STRIDE)
        prev_max = np.maximum(prev_max, hwm[dseg])
        is_retx = (rel_end <= prev_max) & ~((plen[data] == 1) & (rel_end == prev_max))
        np.add.at(count, dseg, is_retx.astype(np.int64))
        starts = np.flatnonzero(new_seg)
        hwm[dseg[starts]] = np.maximum(hwm[dseg[starts]], np.maximum.reduceat(rel_end, starts))
        return base, hwm, count

    # -- housekeeping -------------------------------------------------------------------
    def _expire(self) -> None:
        """Finish open flows idle past their timeout: memory follows open flows only. Past
        max_open_flows (checked after each chunk), the longest-idle flows are finished too."""
        if not self.open_flows:
            return
        # Slots whose deadline is near `now` (free slots: +inf), then the exact rule on those:
        # `now - clock_last > timeout` and `clock_last + timeout < now` can round differently.
        near = np.flatnonzero(self.slots.more["deadline"] < self.now + (1.0 + abs(self.now) * 1e-12))
        st = self.slots.cols
        timeout = np.where(st["proto"][near] == TCP, self.options.tcp_timeout, self.options.udp_timeout)
        idle = near[self.now - st["clock_last"][near] > timeout]
        if self.open_flows - idle.size > self.options.max_open_flows:
            idle = self._over_limit(idle)
        if idle.size:
            idle = self._in_order(idle)
            self._retire(self.slots.take(idle))
            self._release(idle)

    def _over_limit(self, idle_slots: np.ndarray) -> np.ndarray:
        """Idle slots plus the longest-idle others past max_open_flows. Over every open flow in
        stamp order, as when the table was one array (argpartition breaks ties by position)."""
        live = self._in_order(self.slots.live_slots())
        clock_last = self.slots.cols["clock_last"][live]
        idle = np.zeros(live.size, bool)
        idle[np.isin(live, idle_slots, assume_unique=True)] = True
        excess = int(np.count_nonzero(~idle)) - self.options.max_open_flows
        last_seen = np.where(idle, -np.inf, clock_last)
        oldest = np.argpartition(last_seen, int(np.count_nonzero(idle)) + excess - 1)
        idle[oldest[: int(np.count_nonzero(idle)) + excess]] = True
        self.limits["flows_expired_at_limit"] += excess
        return live[idle]

    def _check_no_collision(self, col, gfirst, group_start) -> None:
        owner = np.cumsum(group_start) - 1
        first_row = gfirst[owner]
        for name in P.KEY:
            if not np.array_equal(col[name], col[name][first_row]):
                raise EngineError("two flow keys share a 64-bit hash in this capture; "
                                  "rerun with --engine scapy and please report it")

    def _check_state_keys(self, col, rows, sidx) -> None:
        for name in P.KEY:
            if not np.array_equal(col[name][rows], self.slots.cols[name][sidx]):
                raise EngineError("two flow keys share a 64-bit hash in this capture; "
                                  "rerun with --engine scapy and please report it")


def frame_clock(ts: np.ndarray, now: float) -> np.ndarray:
    """The capture clock before each frame: the latest timestamp seen earlier in the capture."""
    clock = np.empty(len(ts))
    if len(ts):
        clock[0] = now
        np.maximum.accumulate(ts[:-1], out=clock[1:])
        np.maximum(clock, now, out=clock)
    return clock


def _run_starts(sorted_values: np.ndarray) -> np.ndarray:
    """Index of the first element of each run of equal values."""
    starts = np.empty(len(sorted_values), bool)
    starts[0] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=starts[1:])
    return np.flatnonzero(starts)


def _cumsum_in(values: np.ndarray, seg: np.ndarray, firsts: np.ndarray) -> np.ndarray:
    """Running sum that restarts at each segment's first row."""
    total = np.cumsum(values)
    before = total[firsts] - values[firsts]
    return total - before[seg]
