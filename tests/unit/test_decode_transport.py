"""TCP/UDP headers cut short, and ICMP/ICMPv6 errors kept as evidence for the flow they quote."""
from __future__ import annotations

import pytest
from conftest import (C4, C6, ETH_IPV6, ICMP, ICMPV6, LT_ETHERNET, LT_RAW, S4, S6, T0_NS, TCP, UDP, addr_text,
                      decode, ether, icmp, ip4, ip6, packet_endpoints, pcap, syn_frame, tcp, udp, write)

import apnstrace

ROUTER4, ROUTER6 = "192.0.2.1", "2001:db8::1"


def test_tcp_header_cut_after_the_ports_counts_with_no_flags():
    frame = ip4(C4, S4, TCP, tcp(50000, 5223, "S", seq=9)[:4], total=40)
    packets, _, stats = decode([frame], LT_RAW)
    got = packet_endpoints(packets)
    assert got["endpoints"] == {(C4, 50000), (S4, 5223)}
    assert got["flags"] == 0 and got["seq"] == -1 and got["payload_len"] == 0
    assert stats.malformed == {"tcp_header_truncated": 1}
    assert stats.packets_in_flows == 1


def test_tcp_header_cut_after_the_flags_keeps_the_flags():
    frame = ip4(C4, S4, TCP, tcp(50000, 5223, "S", seq=9)[:14], total=40)
    packets, _, stats = decode([frame], LT_RAW)
    got = packet_endpoints(packets)
    assert got["flags"] == 0x02 and got["seq"] == 9
    assert stats.malformed == {"tcp_header_truncated": 1}


def test_truncated_tcp_header_in_a_flow(tmp_path):
    syn = ether(ip4(C4, S4, TCP, tcp(50000, 5223, "S", seq=1)))
    synack = ether(ip4(S4, C4, TCP, tcp(5223, 50000, "SA", seq=1, ack=2)))
    cut = ether(ip4(C4, S4, TCP, tcp(50000, 5223, "A", seq=2, ack=2)[:6], total=40))
    path = write(tmp_path / "cut.pcap", pcap([(T0_NS, syn), (T0_NS + 1000, synack), (T0_NS + 2000, cut)]))
    result = apnstrace.analyze(path)
    flow = result.flows.iloc[0]
    assert len(result.flows) == 1
    assert (flow["pkts_c2s"], flow["pkts_s2c"]) == (2, 1)
    assert flow["bytes_c2s"] == len(syn) + len(cut)
    assert result.stats.malformed == {"tcp_header_truncated": 1}


def test_tcp_data_offset_below_five_counts_with_no_payload():
    frame = ip4(C4, S4, TCP, tcp(50000, 443, "PA", payload=b"x" * 50, doff=4))
    packets, _, stats = decode([frame], LT_RAW)
    assert packet_endpoints(packets)["payload_len"] == 0
    assert stats.malformed == {"tcp_bad_header_length": 1} and stats.packets_in_flows == 1


def test_udp_header_cut_after_the_ports_counts():
    frame = ip4(C4, S4, UDP, udp(5353, 53, b"q" * 20)[:6], total=48)
    packets, _, stats = decode([frame], LT_RAW)
    got = packet_endpoints(packets)
    assert got["endpoints"] == {(C4, 5353), (S4, 53)} and got["payload_len"] == 20
    assert stats.malformed == {"udp_header_truncated": 1} and stats.packets_in_flows == 1


def test_ports_not_captured_is_not_a_flow_packet():
    packets, _, stats = decode([ip4(C4, S4, UDP, b"\x13\xe9\x00", total=28)], LT_RAW)
    assert len(packets) == 0
    assert stats.malformed == {"transport_ports_truncated": 1} and stats.packets_in_flows == 0


def quoted_syn4() -> bytes:
    """What a router quotes: the SYN's IP header and the first 8 bytes of its TCP header."""
    return syn_frame(C4, S4, 50000, 5223)[:28]


def quoted_syn6() -> bytes:
    return syn_frame(C6, S6, 50000, 5223)[:48]


def test_icmp_unreachable_quoting_a_syn_is_evidence_not_a_packet():
    frame = ether(ip4(ROUTER4, C4, ICMP, icmp(3, 13, quoted_syn4())))
    packets, errors, stats = decode([frame], LT_ETHERNET)
    assert len(packets) == 0
    assert len(errors) == 1
    assert (int(errors.icmp_type[0]), int(errors.icmp_code[0]), bool(errors.v6[0])) == (3, 13, False)
    assert addr_text(errors.reporter_hi[0], errors.reporter_lo[0]) == ROUTER4
    assert addr_text(errors.src_hi[0], errors.src_lo[0]) == C4
    assert addr_text(errors.dst_hi[0], errors.dst_lo[0]) == S4
    assert (int(errors.sport[0]), int(errors.dport[0]), int(errors.proto[0])) == (50000, 5223, TCP)
    assert stats.icmp_errors == 1 and not stats.skipped and not stats.malformed


def test_icmpv6_unreachable_quoting_a_syn():
    frame = ether(ip6(ROUTER6, C6, ICMPV6, icmp(1, 1, quoted_syn6())), ETH_IPV6)
    packets, errors, stats = decode([frame], LT_ETHERNET)
    assert len(packets) == 0 and len(errors) == 1
    assert (int(errors.icmp_type[0]), int(errors.icmp_code[0]), bool(errors.v6[0])) == (1, 1, True)
    assert addr_text(errors.reporter_hi[0], errors.reporter_lo[0]) == ROUTER6
    assert addr_text(errors.src_hi[0], errors.src_lo[0]) == C6
    assert addr_text(errors.dst_hi[0], errors.dst_lo[0]) == S6
    assert (int(errors.sport[0]), int(errors.dport[0]), int(errors.proto[0])) == (50000, 5223, TCP)
    assert stats.icmp_errors == 1


def test_icmp_errors_through_analyze(tmp_path):
    syn = ether(syn_frame(C4, S4))
    unreach = ether(ip4(ROUTER4, C4, ICMP, icmp(3, 13, quoted_syn4())))
    syn6 = ether(syn_frame(C6, S6), ETH_IPV6)
    unreach6 = ether(ip6(ROUTER6, C6, ICMPV6, icmp(1, 4, quoted_syn6())), ETH_IPV6)
    path = write(tmp_path / "icmp.pcap", pcap([(T0_NS, syn), (T0_NS + 10**6, unreach),
                                               (T0_NS + 2 * 10**6, syn6), (T0_NS + 3 * 10**6, unreach6)]))
    result = apnstrace.analyze(path)
    flows = result.flows
    assert len(flows) == 2 and set(flows["transport"]) == {"tcp"}      # ICMP is not a flow row
    assert list(flows["pkts_c2s"]) == [1, 1] and list(flows["pkts_s2c"]) == [0, 0]
    icmp_rows = result.icmp_errors.sort_values("ts").reset_index(drop=True)
    assert len(icmp_rows) == 2
    got = icmp_rows[["reporter", "src", "sport", "dst", "dport", "proto", "icmp_type", "icmp_code"]]
    assert got.astype(object).values.tolist() == [
        [ROUTER4, C4, 50000, S4, 5223, TCP, 3, 13],
        [ROUTER6, C6, 50000, S6, 5223, TCP, 1, 4],
    ]
    assert icmp_rows.loc[0, "ts"] == pytest.approx(T0_NS / 1e9 + 0.001, abs=1e-6)
    assert result.stats.icmp_errors == 2 and result.stats.packets_in_flows == 2


def test_icmp_quote_with_ip_options():
    quoted = ip4(C4, S4, TCP, tcp(50000, 5223, "S"), options=b"\x94\x04\x00\x00")[:32]
    packets, errors, _ = decode([ip4(ROUTER4, C4, ICMP, icmp(11, 0, quoted))], LT_RAW)
    assert (int(errors.sport[0]), int(errors.dport[0])) == (50000, 5223)


@pytest.mark.parametrize("frame,reason", [
    (ip4(C4, S4, ICMP, icmp(8, 0, b"ping")), "icmp_not_error"),                  # echo request
    (ip4(C4, S4, ICMP, icmp(0, 0, b"pong")), "icmp_not_error"),                  # echo reply
    (ip6(C6, S6, ICMPV6, icmp(128, 0, b"ping")), "icmp_not_error"),
    (ip6(C6, S6, ICMPV6, icmp(135, 0, b"\x00" * 16)), "icmp_not_error"),        # neighbour solicitation
    (ip6(C6, S6, ICMP, icmp(3, 1, quoted_syn4())), "other_ip_protocol"),         # ICMPv4 inside IPv6
])
def test_icmp_that_is_not_an_error_is_skipped(frame, reason):
    packets, errors, stats = decode([frame], LT_RAW)
    assert len(packets) == 0 and len(errors) == 0
    assert stats.skipped == {reason: 1} and stats.icmp_errors == 0


def test_bogus_header_length_has_no_flags():
    """Wireshark gives up at a data offset under 5 words, before the flags (so tshark shows none)."""
    frame = ip4(C4, S4, TCP, tcp(50000, 443, "F", payload=b"x" * 10, doff=2))
    packets, _, stats = decode([frame], LT_RAW)
    assert packet_endpoints(packets)["flags"] == 0
    assert stats.malformed == {"tcp_bad_header_length": 1}
