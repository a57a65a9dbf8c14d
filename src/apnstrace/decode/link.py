"""Link layers -> where the IP header starts, its ethertype and the outermost VLAN id."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .gather import one_of, be16, be32, le16, le32, u8
from .reasons import BAD, SKIP

ETH_IPV4, ETH_IPV6 = 0x0800, 0x86DD
VLAN_TPIDS = np.array([0x8100, 0x88A8, 0x9100, 0x9200])
MPLS_TYPES = np.array([0x8847, 0x8848])
PPPOE_SESSION = 0x8864
FABRICPATH = 0x8903        # Cisco FabricPath: 2-byte tag, then a whole inner Ethernet header
CHDLC_ADDRESSES = (0x0F, 0x8F)   # Cisco HDLC framing, also found under the PPP link type
MAX_ENCAPSULATIONS = 8     # VLAN tags / MPLS labels / PPPoE walked, at most

ETHERNET, RAW, RAW_ALT1, RAW_ALT2, RAW_V4, RAW_V6 = 1, 101, 12, 14, 228, 229
NULL, LOOP, PPP, C_HDLC, SLL, SLL2, PPI = 0, 108, 9, 104, 113, 276, 192
NULL_FAMILIES_V6 = np.array([24, 28, 30])     # AF_INET6 on the BSDs and macOS
PPP_IPV4, PPP_IPV6 = 0x0021, 0x0057


@dataclass(slots=True)
class Link:
    l3: np.ndarray           # int64 offset of the network header in buf (valid where ethertype set)
    ethertype: np.ndarray    # int64: 0x0800, 0x86dd, other ethertypes, 0 unknown
    vlan: np.ndarray         # int64: outermost VLAN id, -1 untagged
    skip: np.ndarray         # uint8 skip reason
    bad: np.ndarray          # uint8 malformed reason


def decode_link(buf: np.ndarray, start: np.ndarray, end: np.ndarray, linktype: np.ndarray) -> Link:
    n = len(start)
    link = Link(l3=start.copy(), ethertype=np.zeros(n, np.int64), vlan=np.full(n, -1, np.int64),
                skip=np.zeros(n, np.uint8), bad=np.zeros(n, np.uint8))
    start = start.copy()
    linktype = linktype.astype(np.int64)
    avail = end - start

    ppi = np.flatnonzero(linktype == PPI)
    if ppi.size:   # Per-Packet Information header: Ethernet inside is all we read
        ok = ppi[avail[ppi] >= 8]
        inner = le32(buf, start[ok] + 4)
        hdr = le16(buf, start[ok] + 2)
        eth = ok[inner == ETHERNET]
        start[eth] += hdr[inner == ETHERNET]
        linktype[eth] = ETHERNET
        avail = end - start

    def header(rows: np.ndarray, size: int) -> np.ndarray:
        short = rows[avail[rows] < size]
        link.bad[short] = BAD["link_header_truncated"]
        return rows[avail[rows] >= size]

    rows = header(np.flatnonzero(linktype == ETHERNET), 14)
    link.ethertype[rows] = be16(buf, start[rows] + 12)
    link.l3[rows] = start[rows] + 14
    tagged = [rows]

    rows = header(np.flatnonzero(linktype == SLL), 16)
    link.ethertype[rows] = be16(buf, start[rows] + 14)
    link.l3[rows] = start[rows] + 16
    tagged.append(rows)

    rows = header(np.flatnonzero(linktype == SLL2), 20)
    link.ethertype[rows] = be16(buf, start[rows])
    link.l3[rows] = start[rows] + 20
    tagged.append(rows)

    ppp = np.flatnonzero(linktype == PPP)
    if ppp.size:
        framed = ppp[(avail[ppp] >= 1) & one_of(u8(buf, start[ppp]), CHDLC_ADDRESSES)]
        linktype[framed] = C_HDLC
    rows = header(np.flatnonzero(linktype == C_HDLC), 4)
    link.ethertype[rows] = be16(buf, start[rows] + 2)
    link.l3[rows] = start[rows] + 4
    tagged.append(rows)

    rows = header(np.flatnonzero(one_of(linktype, (RAW, RAW_ALT1, RAW_ALT2, RAW_V4, RAW_V6))), 1)
    version = u8(buf, start[rows]) >> 4
    link.ethertype[rows] = np.select([version == 4, version == 6], [ETH_IPV4, ETH_IPV6], 0)
    link.l3[rows] = start[rows]

    rows = header(np.flatnonzero((linktype == NULL) | (linktype == LOOP)), 4)
    family_le, family_be = le32(buf, start[rows]), be32(buf, start[rows])
    # DLT_NULL stores the family in the capturing host's byte order: accept either.
    v4 = (family_le == 2) | (family_be == 2)
    v6 = one_of(family_le, NULL_FAMILIES_V6) | one_of(family_be, NULL_FAMILIES_V6)
    link.ethertype[rows] = np.select([v4, v6], [ETH_IPV4, ETH_IPV6], 0)
    link.l3[rows] = start[rows] + 4

    rows = header(np.flatnonzero(linktype == PPP), 4)
    has_hdlc = (u8(buf, start[rows]) == 0xFF) & (u8(buf, start[rows] + 1) == 0x03)
    at = start[rows] + np.where(has_hdlc, 2, 0)
    compressed = (u8(buf, at) & 1) == 1           # protocol-field compression: 1 byte
    proto = np.where(compressed, u8(buf, at), be16(buf, at))
    link.ethertype[rows] = np.select([proto == PPP_IPV4, proto == PPP_IPV6], [ETH_IPV4, ETH_IPV6], 0)
    link.l3[rows] = at + np.where(compressed, 1, 2)

    known = one_of(linktype, (ETHERNET, SLL, SLL2, C_HDLC, RAW, RAW_ALT1, RAW_ALT2, RAW_V4, RAW_V6, NULL, LOOP, PPP))
    link.skip[~known] = SKIP["linktype_unsupported"]

    _encapsulations(buf, end, link, np.concatenate(tagged))

    settled = (link.bad == 0) & (link.skip == 0)
    not_ip = settled & (link.ethertype != ETH_IPV4) & (link.ethertype != ETH_IPV6)
    link.skip[not_ip] = SKIP["not_ip"]
    link.skip[link.bad != 0] = SKIP["malformed"]
    return link


def _encapsulations(buf: np.ndarray, end: np.ndarray, link: Link, rows: np.ndarray) -> None:
    """Walk VLAN tags, MPLS label stacks and PPPoE sessions between link and IP headers."""
    for _ in range(MAX_ENCAPSULATIONS):
        rows = rows[link.bad[rows] == 0]
        etype = link.ethertype[rows]
        vlan = rows[one_of(etype, VLAN_TPIDS)]
        mpls = rows[one_of(etype, MPLS_TYPES)]
        pppoe = rows[etype == PPPOE_SESSION]
        fabric = rows[etype == FABRICPATH]
        if not (vlan.size or mpls.size or pppoe.size or fabric.size):
            return
        short = fabric[end[fabric] - link.l3[fabric] < 16]
        link.bad[short] = BAD["link_header_truncated"]
        fabric = fabric[end[fabric] - link.l3[fabric] >= 16]
        link.ethertype[fabric] = be16(buf, link.l3[fabric] + 14)
        link.l3[fabric] += 16
        short = vlan[end[vlan] - link.l3[vlan] < 4]
        link.bad[short] = BAD["vlan_header_truncated"]
        vlan = vlan[end[vlan] - link.l3[vlan] >= 4]
        first_tag = vlan[link.vlan[vlan] < 0]
        link.vlan[first_tag] = be16(buf, link.l3[first_tag]) & 0x0FFF
        link.ethertype[vlan] = be16(buf, link.l3[vlan] + 2)
        link.l3[vlan] += 4

        # MPLS: one label per round until bottom of stack, then IPv4/IPv6 by version nibble.
        short = mpls[end[mpls] - link.l3[mpls] < 5]
        link.bad[short] = BAD["mpls_header_truncated"]
        mpls = mpls[end[mpls] - link.l3[mpls] >= 5]
        bottom = (u8(buf, link.l3[mpls] + 2) & 1) == 1
        link.l3[mpls] += 4
        last = mpls[bottom]
        version = u8(buf, link.l3[last]) >> 4
        link.ethertype[last] = np.select([version == 4, version == 6], [ETH_IPV4, ETH_IPV6], 0)

        short = pppoe[end[pppoe] - link.l3[pppoe] < 8]
        link.bad[short] = BAD["pppoe_header_truncated"]
        pppoe = pppoe[end[pppoe] - link.l3[pppoe] >= 8]
        proto = be16(buf, link.l3[pppoe] + 6)
        link.ethertype[pppoe] = np.select([proto == PPP_IPV4, proto == PPP_IPV6], [ETH_IPV4, ETH_IPV6], 0)
        link.l3[pppoe] += 8
