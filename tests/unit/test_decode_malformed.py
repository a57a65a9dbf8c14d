"""Every malformed reason in decode/reasons.py, produced by a frame built to produce it."""
from __future__ import annotations

import struct

import pytest
from conftest import (C4, C6, ETH_IPV4, ETH_IPV6, ETH_MPLS, ETH_PPPOE, ETH_VLAN, ICMP, ICMPV6, LT_C_HDLC,
                      LT_ETHERNET, LT_NULL, LT_PPP, LT_RAW, LT_SLL, LT_SLL2, S4, S6, TCP, UDP, decode, ether, ext6,
                      icmp, ip4, ip6, packet_endpoints, syn_frame, tcp, udp)

from apnstrace.decode.reasons import MALFORMED_REASONS

SYN4 = syn_frame(C4, S4)
SYN6 = syn_frame(C6, S6)


def nine_dest_options() -> bytes:
    """More extension headers than are walked (8), then TCP."""
    chain = b"".join(ext6(60) for _ in range(8)) + ext6(TCP)
    return ip6(C6, S6, 60, chain + tcp(50000, 443, "S"))


# (reason, frame, link type, counted in a flow?)
CASES = [
    ("link_header_truncated", ether(SYN4)[:10], LT_ETHERNET, False),
    ("link_header_truncated", b"\x00" * 15, LT_SLL, False),
    ("link_header_truncated", b"\x08\x00" + b"\x00" * 17, LT_SLL2, False),
    ("link_header_truncated", b"\x02\x00", LT_NULL, False),
    ("link_header_truncated", b"\x0f\x00\x08", LT_C_HDLC, False),
    ("link_header_truncated", b"\xff\x03\x00", LT_PPP, False),
    ("link_header_truncated", b"", LT_RAW, False),
    ("link_header_truncated", ether(struct.pack("!H", 1) + b"\x00" * 10, 0x8903), LT_ETHERNET, False),  # FabricPath
    ("vlan_header_truncated", ether(b"\x00\x14", ETH_VLAN), LT_ETHERNET, False),
    ("mpls_header_truncated", ether(b"\x00\x01\x01", ETH_MPLS), LT_ETHERNET, False),
    ("pppoe_header_truncated", ether(b"\x11\x00\x12\x34\x00\x10", ETH_PPPOE), LT_ETHERNET, False),
    ("ip_bad_version", ether(SYN6, ETH_IPV4), LT_ETHERNET, False),
    ("ip_bad_version", ether(SYN4 + b"\x00" * 20, ETH_IPV6), LT_ETHERNET, False),
    ("ipv4_header_truncated", SYN4[:19], LT_RAW, False),
    ("ipv4_header_truncated", ip4(C4, S4, TCP, b"", options=b"\x01" * 40)[:30], LT_RAW, False),   # IHL 15, 30 bytes
    ("ipv4_bad_header_length", bytes([0x44]) + SYN4[1:], LT_RAW, False),
    ("ipv4_bad_total_length", ip4(C4, S4, TCP, tcp(50000, 5223, "S"), total=12), LT_RAW, False),
    ("ipv6_header_truncated", SYN6[:39], LT_RAW, False),
    ("ipv6_ext_header_truncated", ip6(C6, S6, 0, b"\x06"), LT_RAW, False),               # hop-by-hop cut at 1 byte
    ("ipv6_ext_header_truncated", ip6(C6, S6, 44, b"\x06\x00\x00\x00"), LT_RAW, False),  # fragment header cut
    ("ipv6_ext_header_truncated", nine_dest_options(), LT_RAW, False),
    ("transport_ports_truncated", ip4(C4, S4, TCP, b"\xc3\x50\x14"), LT_RAW, False),
    ("transport_ports_truncated", ip6(C6, S6, UDP, b"\x14"), LT_RAW, False),
    ("tcp_header_truncated", ip4(C4, S4, TCP, tcp(50000, 5223, "S")[:19]), LT_RAW, True),
    ("tcp_bad_header_length", ip4(C4, S4, TCP, tcp(50000, 5223, "S", doff=0)), LT_RAW, True),
    ("udp_header_truncated", ip4(C4, S4, UDP, udp(5000, 53, b"x")[:7]), LT_RAW, True),
    ("icmp_header_truncated", ip4(S4, C4, ICMP, b"\x03"), LT_RAW, False),
    ("icmp_header_truncated", ip6(S6, C6, ICMPV6, b"\x01"), LT_RAW, False),
    ("icmp_quote_truncated", ip4(S4, C4, ICMP, icmp(3, 1, SYN4[:10])), LT_RAW, False),
    ("icmp_quote_truncated", ip4(S4, C4, ICMP, icmp(3, 1, SYN4[:22])), LT_RAW, False),       # IP header, 2 port bytes
    ("icmp_quote_truncated", ip6(S6, C6, ICMPV6, icmp(1, 4, SYN6[:42])), LT_RAW, False),
    ("icmp_quote_truncated", ip4(S4, C4, ICMP, icmp(3, 1, b"\x60" + b"\x00" * 30)), LT_RAW, False),  # short v6
]


@pytest.mark.parametrize("reason,frame,linktype,counted", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_malformed_frame_is_counted_under_its_reason(reason, frame, linktype, counted):
    # A well-formed UDP frame rides along: one bad row must not disturb its neighbours.
    good = ip4(C4, S4, UDP, udp(1111, 2222, b"fine"))
    packets, errors, stats = decode([frame, good], [linktype, LT_RAW])
    assert stats.malformed == {reason: 1}
    assert stats.records == 2
    assert stats.packets_in_flows == (2 if counted else 1)
    assert len(errors) == 0
    last = packet_endpoints(packets, len(packets) - 1)
    assert last["endpoints"] == {(C4, 1111), (S4, 2222)} and last["payload_len"] == 4
    if counted:
        assert packet_endpoints(packets, 0)["endpoints"] in ({(C4, 50000), (S4, 5223)}, {(C4, 5000), (S4, 53)})
    else:
        # What is not counted is malformed, not skipped for another reason.
        assert not stats.skipped


def test_every_malformed_reason_has_a_case():
    produced = {case[0] for case in CASES}
    assert produced == set(MALFORMED_REASONS) - {""}
