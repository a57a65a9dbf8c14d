"""RawBatch -> PacketBatch (TCP/UDP flow packets) and IcmpErrors, a whole chunk at a time."""
from __future__ import annotations

import numpy as np

from ..records import IcmpErrors, PacketBatch, RawBatch
from ..stats import RunStats
from .link import decode_link
from .network import decode_network
from .reasons import MALFORMED_REASONS, SKIP, SKIP_REASONS
from .transport import TCP, UDP, decode_icmp_errors, decode_transport

__all__ = ["decode_batch", "decode_chunk"]

# Records decoded together: their headers span a few MB, so the many gathers of one layer
# hit the CPU cache instead of main memory.
SLICE_RECORDS = 16_384


def decode_chunk(raw: RawBatch, stats: RunStats) -> tuple[PacketBatch, IcmpErrors]:
    """decode_batch over cache-sized slices of a reader chunk, joined back into one batch."""
    if len(raw) <= SLICE_RECORDS:
        return decode_batch(raw, stats)
    parts = [decode_batch(raw.slice(i, i + SLICE_RECORDS), stats) for i in range(0, len(raw), SLICE_RECORDS)]
    return PacketBatch.concat([p for p, _ in parts]), IcmpErrors.concat([e for _, e in parts])


def decode_batch(raw: RawBatch, stats: RunStats) -> tuple[PacketBatch, IcmpErrors]:
    buf = raw.buf
    start = raw.offset
    end = raw.offset + raw.caplen
    link = decode_link(buf, start, end, raw.linktype)
    skip, bad = link.skip, link.bad
    net = decode_network(buf, start, end, raw.wire_len, link.l3, link.ethertype, skip, bad)
    errors = decode_icmp_errors(buf, end, raw.ts, net.proto, net.l4, net.v6, net.src_hi, net.src_lo, skip, bad)
    tr = decode_transport(buf, end, net.proto, net.l4, net.l4_len, skip, bad)
    skip[(skip == 0) & (net.proto != TCP) & (net.proto != UDP)] = SKIP["other_ip_protocol"]

    stats.records += len(raw)
    stats.count_codes(stats.malformed, bad, MALFORMED_REASONS)
    counted = skip == 0
    not_counted = skip.copy()
    not_counted[not_counted == SKIP["malformed"]] = 0    # already counted as malformed
    not_counted[not_counted == SKIP["icmp_error"]] = 0   # counted as evidence below
    stats.count_codes(stats.skipped, not_counted, SKIP_REASONS)
    stats.icmp_errors += len(errors)
    stats.packets_in_flows += int(np.count_nonzero(counted))

    rows = np.flatnonzero(counted)
    # Payload bytes actually captured (the IP length bounds it: Ethernet padding is not payload).
    payload_cap = np.clip(np.minimum(end - tr.payload_off, tr.payload_len), 0, None)
    packets = _canonical(raw.ts[rows], raw.wire_len[rows], net, tr, link.vlan, rows, payload_cap)
    return packets, errors


def _canonical(ts, wire_len, net, tr, vlan, rows, payload_cap) -> PacketBatch:
    """Order each frame's endpoints so both directions of a conversation share one key."""
    s_hi, s_lo, d_hi, d_lo = net.src_hi[rows], net.src_lo[rows], net.dst_hi[rows], net.dst_lo[rows]
    sport, dport = tr.sport[rows], tr.dport[rows]
    src_first = (s_hi < d_hi) | ((s_hi == d_hi) & ((s_lo < d_lo) | ((s_lo == d_lo) & (sport <= dport))))
    return PacketBatch(
        ts=ts, wire_len=wire_len,
        a_hi=np.where(src_first, s_hi, d_hi), a_lo=np.where(src_first, s_lo, d_lo),
        b_hi=np.where(src_first, d_hi, s_hi), b_lo=np.where(src_first, d_lo, s_lo),
        port_a=np.where(src_first, sport, dport), port_b=np.where(src_first, dport, sport),
        proto=net.proto[rows], direction=np.where(src_first, 0, 1).astype(np.int8),
        tcp_flags=tr.flags[rows], seq=tr.seq[rows], payload_len=tr.payload_len[rows], vlan=vlan[rows],
        payload_off=tr.payload_off[rows], payload_cap=payload_cap[rows], ttl=net.ttl[rows])
