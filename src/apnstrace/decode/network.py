"""IPv4 and IPv6 headers -> addresses, transport protocol, where it starts, its length."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .gather import one_of, be16, be32, be64, u8, v4_mapped
from .link import ETH_IPV4, ETH_IPV6
from .reasons import BAD, SKIP

# IPv6 extension headers walked to reach the transport: hop-by-hop, routing, destination
# options, mobility, HIP, shim6 (length in 8-byte units), fragment (fixed 8), AH (4-byte units).
IPV6_EXT_8 = np.array([0, 43, 60, 135, 139, 140])
IPV6_FRAGMENT, IPV6_AH = 44, 51
MAX_EXT_HEADERS = 8


@dataclass(slots=True)
class Network:
    src_hi: np.ndarray
    src_lo: np.ndarray
    dst_hi: np.ndarray
    dst_lo: np.ndarray
    proto: np.ndarray        # transport protocol number (after IPv6 extension headers)
    l4: np.ndarray           # offset of the transport header
    l4_len: np.ndarray       # transport length from the IP length fields
    v6: np.ndarray           # bool
    ttl: np.ndarray          # IPv4 TTL / IPv6 hop limit


def decode_network(buf: np.ndarray, start: np.ndarray, end: np.ndarray, wire_len: np.ndarray,
                   l3: np.ndarray, ethertype: np.ndarray, skip: np.ndarray, bad: np.ndarray) -> Network:
    """Fill network columns for rows still in play; sets skip/bad in place for the rest."""
    n = len(l3)
    net = Network(src_hi=np.zeros(n, np.uint64), src_lo=np.zeros(n, np.uint64),
                  dst_hi=np.zeros(n, np.uint64), dst_lo=np.zeros(n, np.uint64),
                  proto=np.full(n, -1, np.int64), l4=np.zeros(n, np.int64),
                  l4_len=np.zeros(n, np.int64), v6=ethertype == ETH_IPV6, ttl=np.zeros(n, np.int64))
    live = skip == 0
    _ipv4(buf, end, wire_len - (l3 - start), l3, np.flatnonzero(live & (ethertype == ETH_IPV4)), net, skip, bad)
    _ipv6(buf, end, wire_len - (l3 - start), l3, np.flatnonzero(live & (ethertype == ETH_IPV6)), net, skip, bad)
    return net


def _fail(rows: np.ndarray, reason: str, skip: np.ndarray, bad: np.ndarray) -> None:
    bad[rows] = BAD[reason]
    skip[rows] = SKIP["malformed"]


def _ipv4(buf, end, l3_wire, l3, rows, net: Network, skip, bad) -> None:
    short = end[rows] - l3[rows] < 20
    _fail(rows[short], "ipv4_header_truncated", skip, bad)
    rows = rows[~short]
    pos = l3[rows]
    first = u8(buf, pos)
    wrong = (first >> 4) != 4
    _fail(rows[wrong], "ip_bad_version", skip, bad)
    ihl = (first & 0x0F) * 4
    total = be16(buf, pos + 2)
    bad_ihl = ~wrong & (ihl < 20)
    _fail(rows[bad_ihl], "ipv4_bad_header_length", skip, bad)
    # total length 0 is TCP segmentation offload: the length is the frame's.
    bad_total = ~wrong & ~bad_ihl & (total != 0) & (total < ihl)
    _fail(rows[bad_total], "ipv4_bad_total_length", skip, bad)
    cut = ~wrong & ~bad_ihl & ~bad_total & (end[rows] - pos < ihl)
    _fail(rows[cut], "ipv4_header_truncated", skip, bad)
    ok = ~(wrong | bad_ihl | bad_total | cut)
    rows, pos, ihl, total = rows[ok], pos[ok], ihl[ok], total[ok]
    net.src_hi[rows], net.src_lo[rows] = v4_mapped(be32(buf, pos + 12))
    net.dst_hi[rows], net.dst_lo[rows] = v4_mapped(be32(buf, pos + 16))
    net.proto[rows] = u8(buf, pos + 9)
    net.ttl[rows] = u8(buf, pos + 8)
    net.l4[rows] = pos + ihl
    net.l4_len[rows] = np.where(total > 0, total, l3_wire[rows]) - ihl
    later_fragment = (be16(buf, pos + 6) & 0x1FFF) != 0
    skip[rows[later_fragment]] = SKIP["ip_fragment_nonfirst"]


def _ipv6(buf, end, l3_wire, l3, rows, net: Network, skip, bad) -> None:
    short = end[rows] - l3[rows] < 40
    _fail(rows[short], "ipv6_header_truncated", skip, bad)
    rows = rows[~short]
    pos = l3[rows]
    wrong = (u8(buf, pos) >> 4) != 6
    _fail(rows[wrong], "ip_bad_version", skip, bad)
    rows, pos = rows[~wrong], pos[~wrong]
    net.src_hi[rows], net.src_lo[rows] = be64(buf, pos + 8), be64(buf, pos + 16)
    net.dst_hi[rows], net.dst_lo[rows] = be64(buf, pos + 24), be64(buf, pos + 32)
    net.ttl[rows] = u8(buf, pos + 7)
    payload = be16(buf, pos + 4)
    payload = np.where(payload > 0, payload, l3_wire[rows] - 40)   # 0: jumbogram / offload
    nxt = u8(buf, pos + 6)
    at = pos + 40
    for _ in range(MAX_EXT_HEADERS):
        ext = one_of(nxt, IPV6_EXT_8) | (nxt == IPV6_FRAGMENT) | (nxt == IPV6_AH)
        if not ext.any():
            break
        need = np.where(nxt == IPV6_FRAGMENT, 8, 2)
        cut = ext & (end[rows] - at < need)
        _fail(rows[cut], "ipv6_ext_header_truncated", skip, bad)
        ext &= ~cut
        idx = np.flatnonzero(ext)
        here = at[idx]
        kind = nxt[idx]
        size = np.where(kind == IPV6_FRAGMENT, 8,
                        np.where(kind == IPV6_AH, (u8(buf, here + 1) + 2) * 4, (u8(buf, here + 1) + 1) * 8))
        later = (kind == IPV6_FRAGMENT) & ((be16(buf, here + 2) >> 3) != 0)
        skip[rows[idx[later]]] = SKIP["ip_fragment_nonfirst"]
        nxt[idx] = u8(buf, here)
        at[idx] = here + size
        nxt[cut] = -1
    still_ext = one_of(nxt, IPV6_EXT_8) | (nxt == IPV6_FRAGMENT) | (nxt == IPV6_AH)
    _fail(rows[still_ext], "ipv6_ext_header_truncated", skip, bad)
    net.proto[rows] = nxt
    net.l4[rows] = at
    net.l4_len[rows] = payload - (at - pos - 40)
