"""TCP/UDP ports, flags, sequence and payload length; ICMP errors and the header they quote."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..records import IcmpErrors
from .gather import be16, be32, be64, one_of, u8, v4_mapped
from .reasons import BAD, SKIP

TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58
ICMP_ERRORS = np.array([3, 4, 5, 11, 12])      # unreachable, source quench, redirect, time exceeded, parameter
ICMPV6_ERRORS = np.array([1, 2, 3, 4])         # unreachable, too big, time exceeded, parameter


@dataclass(slots=True)
class Transport:
    sport: np.ndarray
    dport: np.ndarray
    flags: np.ndarray
    seq: np.ndarray
    payload_len: np.ndarray
    payload_off: np.ndarray      # where the payload starts in the chunk buffer


def decode_transport(buf, end, proto, l4, l4_len, skip, bad) -> Transport:
    n = len(proto)
    tr = Transport(sport=np.zeros(n, np.int64), dport=np.zeros(n, np.int64), flags=np.zeros(n, np.int64),
                   seq=np.full(n, -1, np.int64), payload_len=np.zeros(n, np.int64),
                   payload_off=np.zeros(n, np.int64))
    live = skip == 0
    rows = np.flatnonzero(live & ((proto == TCP) | (proto == UDP)))
    avail = end[rows] - l4[rows]
    cut = avail < 4
    bad[rows[cut]] = BAD["transport_ports_truncated"]
    skip[rows[cut]] = SKIP["malformed"]
    rows, avail = rows[~cut], avail[~cut]
    tr.sport[rows] = be16(buf, l4[rows])
    tr.dport[rows] = be16(buf, l4[rows] + 2)

    tcp = proto[rows] == TCP
    t_rows, t_avail = rows[tcp], avail[tcp]
    # Ports were captured, so the frame counts in its flow even when the rest is cut off.
    bad[t_rows[t_avail < 20]] = BAD["tcp_header_truncated"]
    has_flags = t_rows[t_avail >= 14]
    pos = l4[has_flags]
    tr.seq[has_flags] = be32(buf, pos + 4)
    header = (u8(buf, pos + 12) >> 4) * 4
    short_header = header < 20
    # A data offset under 5 words: Wireshark gives up before the flags ("bogus header length").
    tr.flags[has_flags] = np.where(short_header, 0, u8(buf, pos + 13))
    bad[has_flags[short_header & (bad[has_flags] == 0)]] = BAD["tcp_bad_header_length"]
    tr.payload_len[has_flags] = np.where(short_header, 0, np.maximum(l4_len[has_flags] - header, 0))
    tr.payload_off[has_flags] = pos + header

    u_rows, u_avail = rows[~tcp], avail[~tcp]
    bad[u_rows[u_avail < 8]] = BAD["udp_header_truncated"]
    tr.payload_len[u_rows] = np.maximum(l4_len[u_rows] - 8, 0)
    tr.payload_off[u_rows] = l4[u_rows] + 8

    other = live & (proto != TCP) & (proto != UDP) & (proto != ICMP) & (proto != ICMPV6)
    skip[other] = SKIP["other_ip_protocol"]
    return tr


def decode_icmp_errors(buf, end, ts, proto, l4, v6, reporter_hi, reporter_lo, skip, bad) -> IcmpErrors:
    """ICMP/ICMPv6 errors: who sent them, type, code and the quoted packet's 5-tuple (as it was sent)."""
    live = skip == 0
    rows = np.flatnonzero(live & (((proto == ICMP) & ~v6) | ((proto == ICMPV6) & v6)))
    cut = end[rows] - l4[rows] < 2
    bad[rows[cut]] = BAD["icmp_header_truncated"]
    skip[rows[cut]] = SKIP["malformed"]
    rows = rows[~cut]
    kind, code = u8(buf, l4[rows]), u8(buf, l4[rows] + 1)
    error = np.where(v6[rows], one_of(kind, ICMPV6_ERRORS), one_of(kind, ICMP_ERRORS))
    skip[rows[~error]] = SKIP["icmp_not_error"]
    rows, kind, code = rows[error], kind[error], code[error]
    skip[rows] = SKIP["icmp_error"]
    inner = l4[rows] + 8
    avail = end[rows] - inner
    version = np.where(avail >= 1, u8(buf, inner) >> 4, 0)
    in4 = (version == 4) & (avail >= 20)
    in6 = (version == 6) & (avail >= 40)
    ihl = np.where(in4, (u8(buf, inner) & 0x0F) * 4, 40)
    readable = (in4 | in6) & (avail >= ihl + 4) & (ihl >= 20)
    bad[rows[~readable]] = BAD["icmp_quote_truncated"]
    rows, kind, code, inner, in4, ihl = (a[readable] for a in (rows, kind, code, inner, in4, ihl))
    m = len(rows)
    q = IcmpErrors(ts=ts[rows], v6=v6[rows], icmp_type=kind, icmp_code=code,
               reporter_hi=reporter_hi[rows], reporter_lo=reporter_lo[rows],
               src_hi=np.zeros(m, np.uint64), src_lo=np.zeros(m, np.uint64),
               dst_hi=np.zeros(m, np.uint64), dst_lo=np.zeros(m, np.uint64),
               sport=be16(buf, inner + ihl), dport=be16(buf, inner + ihl + 2),
               proto=np.where(in4, u8(buf, inner + 9), u8(buf, inner + 6)))
    four, six = np.flatnonzero(in4), np.flatnonzero(~in4)
    q.src_hi[four], q.src_lo[four] = v4_mapped(be32(buf, inner[four] + 12))
    q.dst_hi[four], q.dst_lo[four] = v4_mapped(be32(buf, inner[four] + 16))
    q.src_hi[six], q.src_lo[six] = be64(buf, inner[six] + 8), be64(buf, inner[six] + 16)
    q.dst_hi[six], q.dst_lo[six] = be64(buf, inner[six] + 24), be64(buf, inner[six] + 32)
    return q
