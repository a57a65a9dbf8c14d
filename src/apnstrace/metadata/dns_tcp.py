"""DNS over TCP (RFC 1035 4.2.2, RFC 7766): each direction of a port-53 connection is a byte
stream of 2-byte-length-prefixed messages. Segments are put in sequence order from the
direction's earliest payload; each message, once all its bytes are in, feeds the same DNS records
as a UDP one (question -> dns_query, answers -> name map, failures). A message the capture cuts
(a lost segment, the capture's end) is not read: nothing is guessed from part of it.
Without the handshake's sequence numbers here, a direction starts at its first payload in
capture order: when that one overtook an earlier segment, the direction is misread.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .dns_feed import feed_dns

MAX_PAYLOADS = 64          # payloads read per direction (pipelined lookups; not zone transfers)
MAX_PENDING = 1 << 16      # bytes held per direction waiting for a gap to fill (one message at most)


@dataclass
class _Direction:
    next_seq: int                                        # where the next message starts
    read: bool = False                                   # a message was read (the start is sure)
    held: dict[int, bytes] = field(default_factory=dict)   # seq -> bytes not yet read


class DnsOverTcp:
    def __init__(self) -> None:
        self.streams: dict[int, _Direction] = {}         # key uid*2+dir

    def add(self, collector, buf: np.ndarray, pk, key: np.ndarray, uid: np.ndarray, rows: np.ndarray) -> None:
        """rows: TCP port-53 payloads among a direction's first MAX_PAYLOADS, capture order."""
        messages, uids, tss = [], [], []
        # Python ints per column at once (a numpy scalar per field and row costs more).
        columns = (key[rows].tolist(), uid[rows].tolist(), pk.ts[rows].tolist(), pk.seq[rows].tolist(),
                   pk.payload_off[rows].tolist(), pk.payload_cap[rows].tolist())
        for k, u, ts, seq, off, cap in zip(*columns):
            stream = self.streams.get(k)
            if stream is None:
                stream = self.streams[k] = _Direction(seq)
            behind = _signed(seq - stream.next_seq)
            if behind < 0:
                if stream.read or behind < -MAX_PENDING:
                    continue                              # read already, or not this stream's
                stream.next_seq = seq                     # overtaken: the stream starts earlier
            stream.held.setdefault(seq, buf[off: off + cap].tobytes())
            for message in _read(stream):
                messages.append(message)
                uids.append(u)
                tss.append(ts)
        if messages:
            cap = np.fromiter(map(len, messages), np.int64, len(messages))
            off = np.zeros(len(cap), np.int64)
            np.cumsum(cap[:-1], out=off[1:])
            feed_dns(collector, np.frombuffer(b"".join(messages), np.uint8), off, cap, uids, tss)


def _read(stream: _Direction) -> list[bytes]:
    """Whole messages now in order at the stream's front; they leave the stream."""
    data = bytearray()
    while True:                                       # the in-order run of held segments
        seg = stream.held.pop((stream.next_seq + len(data)) & 0xFFFFFFFF, None)
        if seg is None:
            break
        data += seg
    out = []
    pos = 0
    while len(data) - pos >= 2:
        end = pos + 2 + (data[pos] << 8 | data[pos + 1])
        if end > len(data):
            break
        out.append(bytes(data[pos + 2:end]))
        pos = end
    stream.next_seq = (stream.next_seq + pos) & 0xFFFFFFFF
    stream.read = stream.read or pos > 0
    if pos < len(data):
        stream.held[stream.next_seq] = bytes(data[pos:pos + MAX_PENDING])
    return out


def _signed(diff: int) -> int:
    diff &= 0xFFFFFFFF
    return diff - (1 << 32) if diff >= 1 << 31 else diff
