"""IPv4 (options, fragments, offloaded length) and IPv6 (extension headers, fragments)."""
from __future__ import annotations

import struct

import pytest
from conftest import (C4, C6, ETH_IPV6, LT_ETHERNET, LT_RAW, S4, S6, T0_NS, TCP, UDP, decode, ether, ext6,
                      frag4, frag6, ip4, ip6, packet_endpoints, pcap, tcp, udp, write)

import apnstrace

ROUTER_ALERT = b"\x94\x04\x00\x00"
DATA = b"d" * 100


def test_ipv4_options_are_skipped_by_ihl():
    frame = ip4(C4, S4, TCP, tcp(50000, 443, "PA", seq=5, payload=DATA), options=ROUTER_ALERT + b"\x01" * 8)
    assert frame[0] == 0x48                                   # IHL 8: 12 bytes of options
    packets, _, stats = decode([frame], LT_RAW)
    got = packet_endpoints(packets)
    assert got["endpoints"] == {(C4, 50000), (S4, 443)}
    assert got["seq"] == 5 and got["flags"] == 0x18 and got["payload_len"] == 100
    assert not stats.malformed


def test_ipv4_total_length_zero_takes_the_frame_length():
    # TCP segmentation offload: the capture shows total length 0; the payload is what the frame holds.
    frame = ether(ip4(C4, S4, TCP, tcp(50000, 443, "A", payload=DATA), total=0))
    packets, _, stats = decode([frame], LT_ETHERNET)
    assert packet_endpoints(packets)["payload_len"] == 100
    assert not stats.malformed


def test_payload_length_comes_from_ip_not_from_the_capture():
    whole = ip4(C4, S4, TCP, tcp(50000, 443, "A", payload=b"x" * 1400))
    packets, _, stats = decode([whole[:54]], LT_RAW, wire_lens=[len(whole)])   # snap length 54
    got = packet_endpoints(packets)
    assert got["payload_len"] == 1400 and got["wire_len"] == 1440
    assert not stats.malformed


def test_udp_payload_length():
    packets, _, _ = decode([ip4(C4, S4, UDP, udp(5353, 53, b"q" * 33))], LT_RAW)
    got = packet_endpoints(packets)
    assert got["endpoints"] == {(C4, 5353), (S4, 53)} and got["proto"] == 17 and got["payload_len"] == 33


def test_ipv4_first_fragment_counts_under_its_ports_later_fragments_are_skipped():
    datagram = udp(5353, 53, b"A" * 2000, length=2008)
    first = ip4(C4, S4, UDP, datagram[:1480], frag=frag4(0, more=True), ident=9)
    middle = ip4(C4, S4, UDP, datagram[1480:1488] + b"\x00" * 8, frag=frag4(1480, more=True), ident=9)
    last = ip4(C4, S4, UDP, datagram[1488:], frag=frag4(1488), ident=9)
    packets, _, stats = decode([first, middle, last], LT_RAW)
    assert len(packets) == 1
    assert packet_endpoints(packets)["endpoints"] == {(C4, 5353), (S4, 53)}
    assert stats.skipped == {"ip_fragment_nonfirst": 2}
    assert stats.packets_in_flows == 1 and not stats.malformed


def test_dont_fragment_flag_alone_is_not_a_fragment():
    packets, _, stats = decode([ip4(C4, S4, UDP, udp(1, 2, b"x"), frag=frag4(dont=True))], LT_RAW)
    assert len(packets) == 1 and not stats.skipped


def test_fragments_through_analyze(tmp_path):
    first = ether(ip4(C4, S4, UDP, udp(5353, 53, b"A" * 1472, length=3008), frag=frag4(0, more=True)))
    second = ether(ip4(C4, S4, UDP, b"B" * 1480, frag=frag4(1480, more=True)))
    answer = ether(ip4(S4, C4, UDP, udp(53, 5353, b"ok")))
    path = write(tmp_path / "frag.pcap", pcap([(T0_NS, first), (T0_NS + 1000, second), (T0_NS + 2000, answer)]))
    result = apnstrace.analyze(path)
    flow = result.flows.iloc[0]
    assert len(result.flows) == 1
    assert (flow["pkts_c2s"], flow["pkts_s2c"], flow["bytes_c2s"]) == (1, 1, len(first))
    assert result.stats.skipped == {"ip_fragment_nonfirst": 1}


def ah(nxt: int, icv: bytes = b"\x00" * 12) -> bytes:
    """Authentication header: length in 4-byte units, minus 2."""
    return struct.pack("!BBHII", nxt, (12 + len(icv)) // 4 - 2, 0, 0x100, 1) + icv


def test_ipv6_extension_header_chain():
    seg = tcp(50000, 5223, "PA", seq=77, payload=DATA)
    chain = ext6(60, b"\x01\x04\x00\x00\x00\x00") + ext6(44, b"\x01\x0c" + b"\x00" * 12) + frag6(51, 0, more=True) \
        + ah(43) + ext6(6, b"\x00\x00" + b"\x00" * 4)           # hop-by-hop, dest opts, fragment, AH, routing
    assert len(chain) == 8 + 16 + 8 + 24 + 8
    packets, _, stats = decode([ether(ip6(C6, S6, 0, chain + seg), ETH_IPV6)], LT_ETHERNET)
    got = packet_endpoints(packets)
    assert got["endpoints"] == {(C6, 50000), (S6, 5223)}
    assert got["seq"] == 77 and got["payload_len"] == 100
    assert not stats.malformed and not stats.skipped


@pytest.mark.parametrize("ext", [135, 139, 140])            # mobility, HIP, shim6: walked like options
def test_other_ipv6_extension_headers_are_walked(ext):
    frame = ip6(C6, S6, ext, ext6(UDP, b"\x00" * 14) + udp(5000, 53, b"z"))
    packets, _, stats = decode([frame], LT_RAW)
    assert packet_endpoints(packets)["endpoints"] == {(C6, 5000), (S6, 53)}
    assert not stats.malformed


def test_ipv6_later_fragment_is_skipped_first_counts():
    first = ip6(C6, S6, 0, ext6(44) + frag6(UDP, 0, more=True) + udp(5000, 53, b"a" * 100, length=300))
    later = ip6(C6, S6, 44, frag6(UDP, 104, more=False) + b"b" * 192)
    packets, _, stats = decode([first, later], LT_RAW)
    assert len(packets) == 1
    assert packet_endpoints(packets)["endpoints"] == {(C6, 5000), (S6, 53)}
    assert stats.skipped == {"ip_fragment_nonfirst": 1} and not stats.malformed


def test_ipv6_payload_length_zero_takes_the_frame_length():
    frame = ip6(C6, S6, TCP, tcp(50000, 443, "A", payload=DATA), plen=0)
    packets, _, _ = decode([frame], LT_RAW)
    assert packet_endpoints(packets)["payload_len"] == 100


@pytest.mark.parametrize("proto,name", [(47, "gre"), (50, "esp"), (132, "sctp"), (4, "ipip"), (41, "6in4")])
def test_other_ip_protocols_are_skipped(proto, name):
    packets, _, stats = decode([ip4(C4, S4, proto, b"\x00" * 40)], LT_RAW)
    assert len(packets) == 0
    assert stats.skipped == {"other_ip_protocol": 1} and not stats.malformed


def test_other_protocol_after_ipv6_extension_headers_is_skipped():
    packets, _, stats = decode([ip6(C6, S6, 0, ext6(47) + b"\x00" * 16)], LT_RAW)
    assert len(packets) == 0 and stats.skipped == {"other_ip_protocol": 1}
