"""What passes between stages: raw record batches from the reader, decoded packet columns."""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


@dataclass(frozen=True, slots=True)
class RawBatch:
    """One chunk of capture records, as columns over a shared byte buffer."""

    buf: np.ndarray          # uint8, the chunk's bytes (padded so short over-reads stay inside)
    offset: np.ndarray       # int64: where each record's captured bytes start in buf
    caplen: np.ndarray       # int64: captured bytes of each record
    wire_len: np.ndarray     # int64: original length on the wire (pcap orig_len)
    ts: np.ndarray           # float64 epoch seconds
    linktype: np.ndarray     # int32 per record (pcapng: per interface)
    record: np.ndarray       # int64: 1-based record (frame) number within its file
    path: str

    def __len__(self) -> int:
        return len(self.offset)

    def slice(self, start: int, stop: int) -> RawBatch:
        return RawBatch(self.buf, self.offset[start:stop], self.caplen[start:stop], self.wire_len[start:stop],
                        self.ts[start:stop], self.linktype[start:stop], self.record[start:stop], self.path)


class _Columns:
    """Mixin for batches made only of equal-length numpy columns."""

    @classmethod
    def concat(cls, parts: list):
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))

    def take(self, rows: np.ndarray):
        return type(self)(*(getattr(self, f.name)[rows] for f in fields(self)))


@dataclass(frozen=True, slots=True)
class PacketBatch(_Columns):
    """Decoded TCP/UDP frames of one chunk, canonical key order (endpoint a <= endpoint b)."""

    ts: np.ndarray           # float64
    wire_len: np.ndarray     # int64
    a_hi: np.ndarray         # uint64: address a as 16 bytes (IPv4 mapped ::ffff:a.b.c.d)
    a_lo: np.ndarray
    b_hi: np.ndarray
    b_lo: np.ndarray
    port_a: np.ndarray       # int64
    port_b: np.ndarray
    proto: np.ndarray        # int64: 6 tcp, 17 udp
    direction: np.ndarray    # int8: 0 when the frame goes a -> b, 1 when b -> a
    tcp_flags: np.ndarray    # int64 (0 when not captured)
    seq: np.ndarray          # int64: TCP sequence number (-1 when not captured)
    payload_len: np.ndarray  # int64: transport payload length from IP length fields
    vlan: np.ndarray         # int64: outermost VLAN id, -1 when untagged
    payload_off: np.ndarray  # int64: where the payload starts in the chunk's buffer
    payload_cap: np.ndarray  # int64: payload bytes actually captured
    ttl: np.ndarray          # int64: IPv4 TTL / IPv6 hop limit (tells an injected RST from the server's)

    def __len__(self) -> int:
        return len(self.ts)


@dataclass(frozen=True, slots=True)
class IcmpErrors(_Columns):
    """ICMP/ICMPv6 errors and the flow header each quotes: evidence, not flow packets."""

    ts: np.ndarray
    v6: np.ndarray           # bool
    icmp_type: np.ndarray
    icmp_code: np.ndarray
    reporter_hi: np.ndarray  # who sent the error
    reporter_lo: np.ndarray
    src_hi: np.ndarray       # the quoted packet's header (it went src -> dst)
    src_lo: np.ndarray
    dst_hi: np.ndarray
    dst_lo: np.ndarray
    sport: np.ndarray
    dport: np.ndarray
    proto: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)
