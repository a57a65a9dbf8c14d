"""Link layers and what sits between them and IP: every link type apnstrace reads, VLAN tags
(outermost id kept), MPLS, PPPoE, FabricPath, PPI; unsupported link types and non-IP frames."""
from __future__ import annotations

import struct

import pytest
from conftest import (C4, C6, ETH_ARP, ETH_IPV6, ETH_MPLS, ETH_PPPOE, ETH_QINQ, ETH_VLAN, LT_C_HDLC, LT_ETHERNET,
                      LT_LOOP, LT_NULL, LT_PPP, LT_RAW, LT_RAW4, LT_RAW6, LT_SLL, LT_SLL2, MAC_A, MAC_B, S4, S6,
                      chdlc, decode, ether, mpls, null, packet_endpoints, ppp, pppoe, sll, sll2, syn_frame)

SYN4 = syn_frame(C4, S4)          # IPv4 TCP SYN 10.0.0.1:50000 -> 17.57.144.10:5223, no link header
SYN6 = syn_frame(C6, S6)          # the same over IPv6
V4_ENDS = {(C4, 50000), (S4, 5223)}
V6_ENDS = {(C6, 50000), (S6, 5223)}


def fabricpath(inner_ethertype: int, payload: bytes) -> bytes:
    """Outer Ethernet with ethertype 0x8903, the 2-byte FTag/TTL, then the inner Ethernet header."""
    return ether(struct.pack("!H", 0x0401) + MAC_A + MAC_B + struct.pack("!H", inner_ethertype) + payload, 0x8903)


def ppi(inner: bytes) -> bytes:
    """Per-Packet Information header (8 bytes, no fields) carrying an Ethernet frame."""
    return struct.pack("<BBHI", 0, 0, 8, LT_ETHERNET) + inner


# (id, frame, link type, expected endpoints, expected vlan)
CASES = [
    ("ethernet-v4", ether(SYN4), LT_ETHERNET, V4_ENDS, -1),
    ("ethernet-v6", ether(SYN6, ETH_IPV6), LT_ETHERNET, V6_ENDS, -1),
    ("dot1q", ether(SYN4, tags=[(ETH_VLAN, 20)]), LT_ETHERNET, V4_ENDS, 20),
    ("dot1q-priority-bits", ether(SYN4, tags=[(ETH_VLAN, 0xE000 | 333)]), LT_ETHERNET, V4_ENDS, 333),
    ("qinq-outermost-kept", ether(SYN6, ETH_IPV6, tags=[(ETH_QINQ, 100), (ETH_VLAN, 20)]), LT_ETHERNET, V6_ENDS, 100),
    ("qinq-9100", ether(SYN4, tags=[(0x9100, 7), (ETH_VLAN, 8), (ETH_VLAN, 9)]), LT_ETHERNET, V4_ENDS, 7),
    ("sll-v4", sll(SYN4), LT_SLL, V4_ENDS, -1),
    ("sll-v6", sll(SYN6, ETH_IPV6), LT_SLL, V6_ENDS, -1),
    ("sll-vlan", sll(struct.pack("!HH", 42, 0x0800) + SYN4, ETH_VLAN), LT_SLL, V4_ENDS, 42),
    ("sll2-v4", sll2(SYN4), LT_SLL2, V4_ENDS, -1),
    ("sll2-v6", sll2(SYN6, ETH_IPV6), LT_SLL2, V6_ENDS, -1),
    ("raw101-v4", SYN4, LT_RAW, V4_ENDS, -1),
    ("raw101-v6", SYN6, LT_RAW, V6_ENDS, -1),
    ("raw228-v4", SYN4, LT_RAW4, V4_ENDS, -1),
    ("raw229-v6", SYN6, LT_RAW6, V6_ENDS, -1),
    ("raw12", SYN4, 12, V4_ENDS, -1),
    ("raw14", SYN6, 14, V6_ENDS, -1),
    ("null-le-inet", null(SYN4, 2), LT_NULL, V4_ENDS, -1),
    ("null-be-inet", null(SYN4, 2, big=True), LT_NULL, V4_ENDS, -1),
    ("null-le-inet6-24", null(SYN6, 24), LT_NULL, V6_ENDS, -1),
    ("null-le-inet6-28", null(SYN6, 28), LT_NULL, V6_ENDS, -1),
    ("null-le-inet6-30", null(SYN6, 30), LT_NULL, V6_ENDS, -1),
    ("null-be-inet6-24", null(SYN6, 24, big=True), LT_NULL, V6_ENDS, -1),
    ("null-be-inet6-28", null(SYN6, 28, big=True), LT_NULL, V6_ENDS, -1),
    ("null-be-inet6-30", null(SYN6, 30, big=True), LT_NULL, V6_ENDS, -1),
    ("loop-be-inet", null(SYN4, 2, big=True), LT_LOOP, V4_ENDS, -1),
    ("loop-be-inet6", null(SYN6, 24, big=True), LT_LOOP, V6_ENDS, -1),
    ("ppp-hdlc-v4", ppp(SYN4), LT_PPP, V4_ENDS, -1),
    ("ppp-hdlc-v6", ppp(SYN6, 0x0057), LT_PPP, V6_ENDS, -1),
    ("ppp-no-framing", ppp(SYN4, hdlc=False), LT_PPP, V4_ENDS, -1),
    ("ppp-compressed-protocol", b"\x21" + SYN4, LT_PPP, V4_ENDS, -1),
    ("cisco-hdlc-in-ppp", chdlc(SYN4), LT_PPP, V4_ENDS, -1),
    ("cisco-hdlc-v4", chdlc(SYN4), LT_C_HDLC, V4_ENDS, -1),
    ("cisco-hdlc-v6", chdlc(SYN6, ETH_IPV6), LT_C_HDLC, V6_ENDS, -1),
    ("cisco-hdlc-vlan", chdlc(struct.pack("!HH", 5, 0x0800) + SYN4, ETH_VLAN), LT_C_HDLC, V4_ENDS, 5),
    ("mpls-one-label-v4", ether(mpls(SYN4, [16]), ETH_MPLS), LT_ETHERNET, V4_ENDS, -1),
    ("mpls-two-labels-v6", ether(mpls(SYN6, [16, 17]), ETH_MPLS), LT_ETHERNET, V6_ENDS, -1),
    ("mpls-multicast", ether(mpls(SYN4, [30, 31, 32]), 0x8848), LT_ETHERNET, V4_ENDS, -1),
    ("vlan-then-mpls", ether(mpls(SYN4, [16]), ETH_MPLS, tags=[(ETH_VLAN, 30)]), LT_ETHERNET, V4_ENDS, 30),
    ("pppoe-v4", ether(pppoe(SYN4), ETH_PPPOE), LT_ETHERNET, V4_ENDS, -1),
    ("pppoe-v6", ether(pppoe(SYN6, 0x0057), ETH_PPPOE), LT_ETHERNET, V6_ENDS, -1),
    ("vlan-then-pppoe", ether(pppoe(SYN4), ETH_PPPOE, tags=[(ETH_VLAN, 11)]), LT_ETHERNET, V4_ENDS, 11),
    ("fabricpath", fabricpath(0x0800, SYN4), LT_ETHERNET, V4_ENDS, -1),
    ("fabricpath-vlan", fabricpath(ETH_VLAN, struct.pack("!HH", 12, 0x86DD) + SYN6), LT_ETHERNET, V6_ENDS, 12),
    ("ppi-ethernet", ppi(ether(SYN4, tags=[(ETH_VLAN, 3)])), 192, V4_ENDS, 3),
]


@pytest.mark.parametrize("frame,linktype,ends,vlan", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_link_layer_reaches_the_tcp_ports(frame, linktype, ends, vlan):
    packets, errors, stats = decode([frame], linktype)
    assert len(packets) == 1 and len(errors) == 0
    got = packet_endpoints(packets)
    assert got["endpoints"] == ends
    assert got["proto"] == 6 and got["flags"] == 0x02 and got["seq"] == 1000
    assert got["vlan"] == vlan
    assert got["wire_len"] == len(frame)
    assert got["payload_len"] == 0
    assert stats.packets_in_flows == 1 and stats.records == 1
    assert not stats.malformed and not stats.skipped


def test_mixed_link_types_in_one_batch_keep_their_rows_apart():
    frames = [ether(SYN4, tags=[(ETH_VLAN, 20)]), sll2(SYN6, ETH_IPV6), null(SYN4, 2), SYN6]
    packets, _, stats = decode(frames, [LT_ETHERNET, LT_SLL2, LT_NULL, LT_RAW])
    assert [packet_endpoints(packets, i)["endpoints"] for i in range(4)] == [V4_ENDS, V6_ENDS, V4_ENDS, V6_ENDS]
    assert list(packets.vlan) == [20, -1, -1, -1]
    assert list(packets.wire_len) == [len(f) for f in frames]


@pytest.mark.parametrize("linktype", [105, 127, 147, 1000])      # 802.11, radiotap, user0, unknown
def test_unsupported_link_type_is_skipped(linktype):
    packets, _, stats = decode([ether(SYN4)], linktype)
    assert len(packets) == 0
    assert stats.skipped == {"linktype_unsupported": 1} and not stats.malformed


@pytest.mark.parametrize("frame,linktype", [
    (ether(b"\x00" * 28, ETH_ARP), LT_ETHERNET),
    (ether(b"\xaa\xaa\x03" + b"\x00" * 40, 0x0030), LT_ETHERNET),          # 802.3 length field + LLC
    (sll(b"\x00" * 28, ETH_ARP), LT_SLL),
    (null(SYN4, 7), LT_NULL),                                              # AF 7: not IP
    (ppp(SYN4, 0xC021), LT_PPP),                                           # LCP
    (ether(pppoe(SYN4, 0xC021), ETH_PPPOE), LT_ETHERNET),
    (b"\x50" + SYN4[1:], LT_RAW),                                          # version nibble 5
    (ether(mpls(b"\x00" * 40, [16]), ETH_MPLS), LT_ETHERNET),              # MPLS carrying neither v4 nor v6
    (ether(SYN4, ETH_VLAN, tags=[(ETH_VLAN, 1)] * 8), LT_ETHERNET),         # more tags than are walked
], ids=["arp", "llc", "sll-arp", "null-af7", "ppp-lcp", "pppoe-lcp", "raw-v5", "mpls-other", "nine-tags"])
def test_frames_that_are_not_ip_are_skipped(frame, linktype):
    packets, _, stats = decode([frame], linktype)
    assert len(packets) == 0
    assert stats.skipped == {"not_ip": 1} and not stats.malformed
