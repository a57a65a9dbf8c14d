"""Captured packets -> RawBatch, the reader's chunk format, so decode_chunk runs unchanged.

A backend hands over plain tuples (one per packet: the cheapest thing a capture loop can
append); here a batch's bytes are joined into one padded buffer with offsets, as the file
reader lays out a chunk.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..records import RawBatch

PAD = 128                  # zero bytes after the buffer: decoders may over-read a header (reader/stream.py)


@dataclass(frozen=True, slots=True)
class Captured:
    """One packet as a backend saw it."""

    ts: float              # epoch seconds
    data: bytes            # captured bytes, link layer first
    wire_len: int          # length on the wire (>= len(data) when the snap length cut it)


def to_raw_batch(packets: list[Captured], linktype: int, first_record: int, source: str) -> RawBatch:
    """One RawBatch over the packets, numbered from `first_record` (1-based, like file records)."""
    n = len(packets)
    caplen = np.fromiter((len(p.data) for p in packets), np.int64, n)
    offset = np.zeros(n, np.int64)
    if n:
        np.cumsum(caplen[:-1], out=offset[1:])
    buf = np.zeros(int(caplen.sum()) + PAD, np.uint8)
    joined = b"".join(p.data for p in packets)
    buf[: len(joined)] = np.frombuffer(joined, np.uint8)
    ts = np.fromiter((p.ts for p in packets), np.float64, n)
    wire = np.maximum(np.fromiter((p.wire_len for p in packets), np.int64, n), caplen)
    return RawBatch(buf=buf, offset=offset, caplen=caplen, wire_len=wire, ts=ts,
                    linktype=np.full(n, linktype, np.int32), record=np.arange(first_record, first_record + n,
                                                                               dtype=np.int64), path=source)


@dataclass
class Batcher:
    """Collects packets until a batch is due: enough packets, enough bytes, or old enough.

    Small batches keep the live view current; the size caps keep one batch's work short, so
    the capture thread is not starved while the engine works. Timestamps are sorted within a
    batch (a kernel may hand two queues' packets slightly out of order) and never run behind
    the previous batch, so the flow table's capture clock only moves forward.
    """

    max_packets: int = 20_000
    max_bytes: int = 16 << 20
    max_age_s: float = 0.5
    pending: list[Captured] = field(default_factory=list)
    pending_bytes: int = 0
    started: float | None = None           # monotonic time the oldest pending packet arrived
    records: int = 0                        # packets handed out so far
    last_ts: float = float("-inf")

    def extend(self, packets: list[Captured], now: float) -> None:
        if packets and self.started is None:
            self.started = now
        self.pending.extend(packets)
        self.pending_bytes += sum(len(p.data) for p in packets)

    def due(self, now: float) -> bool:
        if not self.pending:
            return False
        return (len(self.pending) >= self.max_packets or self.pending_bytes >= self.max_bytes
                or now - (self.started if self.started is not None else now) >= self.max_age_s)

    def take(self) -> list[Captured]:
        """The pending packets in time order (stable), none earlier than the last batch's last."""
        got = sorted(self.pending, key=lambda p: p.ts)
        if got and got[0].ts < self.last_ts:
            got = [p if p.ts >= self.last_ts else Captured(self.last_ts, p.data, p.wire_len) for p in got]
        if got:
            self.last_ts = got[-1].ts
        self.records += len(got)
        self.pending, self.pending_bytes, self.started = [], 0, None
        return got
