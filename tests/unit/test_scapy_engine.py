"""The scapy reference engine on small hand-built captures, with exact expected values."""
from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import pandas as pd
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from conftest import (C4, ETH_MPLS, ETH_PPPOE, ETH_VLAN, LT_C_HDLC, LT_PPP, LT_RAW, S4, T0_NS, Rec, chdlc, epb,
                      ether, ext6, idb, ip4, ip6, mpls, pcap, ppp, pppoe, shb, spb, write)
from conftest import tcp as tcp_seg
from conftest import udp as udp_seg

from apnstrace import schema
from apnstrace.flows.finalize import EVIDENCE
from apnstrace.engines.scapy_engine import build_flows
from apnstrace.errors import CaptureError
from apnstrace.options import FlowOptions
from apnstrace.stats import RunStats

C, S = "10.0.0.1", "17.57.144.10"
CP, SP = 50000, 5223
T0 = 1_700_000_000.0


def tcp(t, src, dst, sport, dport, flags, seq=0, ack=0, payload=b"", wirelen=None, l2=None):
    pkt = (l2 if l2 is not None else Ether()) / IP(src=src, dst=dst) / TCP(
        sport=sport, dport=dport, flags=flags, seq=seq, ack=ack)
    if payload:
        pkt = pkt / Raw(payload)
    pkt.time = T0 + t
    if wirelen is not None:
        pkt.wirelen = wirelen
    return pkt


def c2s(t, flags, seq=0, ack=0, payload=b"", **kw):
    return tcp(t, C, S, CP, SP, flags, seq, ack, payload, **kw)


def s2c(t, flags, seq=0, ack=0, payload=b"", **kw):
    return tcp(t, S, C, SP, CP, flags, seq, ack, payload, **kw)


def udp(t, src, dst, sport, dport, payload=b"x" * 20):
    pkt = Ether() / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / Raw(payload)
    pkt.time = T0 + t
    return pkt


def run(tmp_path: Path, pkts, options: FlowOptions | None = None, name="cap.pcap"):
    path = tmp_path / name
    wrpcap(str(path), pkts)
    stats = RunStats()
    flows = build_flows([path], options or FlowOptions(), stats)
    return flows, stats


def wl(pkts):
    return sum(len(bytes(p)) if getattr(p, "wirelen", None) is None else p.wirelen for p in pkts)


def handshake_data_fin(t=0.0, isn_c=1000, isn_s=5000):
    return [
        c2s(t + 0.000, "S", isn_c),
        s2c(t + 0.030, "SA", isn_s, isn_c + 1),
        c2s(t + 0.031, "A", isn_c + 1, isn_s + 1),
        c2s(t + 0.050, "PA", isn_c + 1, isn_s + 1, b"a" * 100, wirelen=1000),
        s2c(t + 0.080, "PA", isn_s + 1, isn_c + 101, b"b" * 200),
        c2s(t + 0.081, "A", isn_c + 101, isn_s + 201),
        c2s(t + 1.000, "FA", isn_c + 101, isn_s + 201),
        s2c(t + 1.010, "FA", isn_s + 201, isn_c + 102),
        c2s(t + 1.020, "A", isn_c + 102, isn_s + 202),
    ]


def test_complete_exchange_sf(tmp_path):
    pkts = handshake_data_fin()
    flows, stats = run(tmp_path, pkts)
    # The schema's columns, then the hidden facts block reasons read (flows/finalize.py EVIDENCE).
    assert list(flows.columns) == schema.names(schema.FLOWS) + list(EVIDENCE)
    assert flows.iloc[0]["_syns"] == 1 and flows.iloc[0]["_handshake"]
    assert len(flows) == 1
    f = flows.iloc[0]
    assert f.flow_id == 0
    assert (f.transport, f.client_ip, f.client_port, f.server_ip, f.server_port) == \
        ("tcp", C, CP, S, SP)
    assert f.state == "SF"
    c = [p for p in pkts if p[IP].src == C]
    s = [p for p in pkts if p[IP].src == S]
    assert (f.pkts_c2s, f.pkts_s2c) == (6, 3)
    # the 100-byte data segment says 1000 bytes on the wire: orig_len, not captured length
    assert f.bytes_c2s == wl(c) == 5 * 54 + 1000
    assert f.bytes_s2c == wl(s) == 2 * 54 + 254
    assert f.syn_retries == 0
    assert f.retransmits == 0
    assert f.rtt_ms == pytest.approx(30.0, abs=1e-3)
    assert f.ts_start == pytest.approx(T0)
    assert f.ts_end == pytest.approx(T0 + 1.02)
    assert f.duration == pytest.approx(1.02, abs=1e-6)
    assert pd.isna(f.vlan)
    assert f.ttfb_ms == pytest.approx(30.0, abs=1e-3)     # client data at 0.050, server data at 0.080
    for col in ("category", "sni", "http_host", "tls_version", "blocked", "block_reason", "tls_handshake_ms"):
        assert pd.isna(f[col]), col
    assert stats.records == 9
    assert stats.packets_in_flows == 9
    assert not stats.skipped and not stats.malformed


def test_syn_retries_no_answer_s0(tmp_path):
    pkts = [c2s(0, "S", 7), c2s(1, "S", 7), c2s(3, "S", 7)]
    flows, _ = run(tmp_path, pkts)
    assert len(flows) == 1
    f = flows.iloc[0]
    assert f.state == "S0"
    assert f.syn_retries == 2
    assert (f.pkts_c2s, f.pkts_s2c, f.bytes_s2c) == (3, 0, 0)
    assert pd.isna(f.rtt_ms)
    assert f.duration == pytest.approx(3.0)


def test_syn_answered_by_rst_rej(tmp_path):
    pkts = [c2s(0, "S", 7), s2c(0.002, "RA", 0, 8)]
    flows, _ = run(tmp_path, pkts)
    assert len(flows) == 1
    f = flows.iloc[0]
    assert f.state == "REJ"
    assert (f.client_ip, f.client_port) == (C, CP)
    assert (f.pkts_c2s, f.pkts_s2c) == (1, 1)
    assert f.syn_retries == 0
    assert pd.isna(f.rtt_ms)


def test_mid_stream_client_is_higher_port_oth(tmp_path):
    # first frame comes from the low port: the client is still the high-port side
    a, b = ("192.168.1.5", 443), ("192.168.1.9", 52000)
    pkts = [
        tcp(0.0, a[0], b[0], a[1], b[1], "PA", 100, 200, b"x" * 50),
        tcp(0.1, b[0], a[0], b[1], a[1], "A", 200, 150),
        tcp(0.2, b[0], a[0], b[1], a[1], "PA", 200, 150, b"y" * 10),
    ]
    flows, _ = run(tmp_path, pkts)
    assert len(flows) == 1
    f = flows.iloc[0]
    assert (f.client_ip, f.client_port, f.server_ip, f.server_port) == (b[0], b[1], a[0], a[1])
    assert f.state == "OTH"
    assert (f.pkts_c2s, f.pkts_s2c) == (2, 1)
    assert (f.bytes_c2s, f.bytes_s2c) == (54 + 64, 104)
    assert pd.isna(f.rtt_ms)


def test_retransmit_and_keepalive_across_seq_wrap(tmp_path):
    isn = 0xFFFFFF80          # data wraps the 32-bit sequence space
    nxt = (isn + 1) & 0xFFFFFFFF
    pkts = [
        c2s(0.00, "S", isn),
        s2c(0.01, "SA", 9000, nxt),
        c2s(0.02, "A", nxt, 9001),
        c2s(0.03, "PA", nxt, 9001, b"a" * 200),                               # new
        c2s(0.04, "PA", (nxt + 200) & 0xFFFFFFFF, 9001, b"b" * 100),          # new, past wrap
        c2s(0.50, "PA", nxt, 9001, b"a" * 200),                               # retransmit
        c2s(0.60, "PA", (nxt + 100) & 0xFFFFFFFF, 9001, b"c" * 150),          # ends 250 < 300
        c2s(0.70, "PA", (nxt + 250) & 0xFFFFFFFF, 9001, b"d" * 100),          # passes: new
        c2s(60.0, "A", (nxt + 349) & 0xFFFFFFFF, 9001, b"\0"),                # keep-alive
        s2c(60.1, "A", 9001, (nxt + 350) & 0xFFFFFFFF),
    ]
    flows, _ = run(tmp_path, pkts)
    assert len(flows) == 1
    f = flows.iloc[0]
    assert f.retransmits == 2
    assert f.state == "S1"
    assert f.rtt_ms == pytest.approx(10.0, abs=1e-3)


def test_udp_pair_sf(tmp_path):
    pkts = [udp(0.0, "10.0.0.1", "8.8.8.8", 53000, 53), udp(0.02, "8.8.8.8", "10.0.0.1", 53, 53000, b"y" * 60)]
    flows, stats = run(tmp_path, pkts)
    assert len(flows) == 1
    f = flows.iloc[0]
    assert (f.transport, f.client_ip, f.client_port, f.server_ip, f.server_port) == \
        ("udp", "10.0.0.1", 53000, "8.8.8.8", 53)
    assert f.state == "SF"
    assert (f.pkts_c2s, f.pkts_s2c, f.bytes_c2s, f.bytes_s2c) == (1, 1, 62, 102)
    assert (f.syn_retries, f.retransmits) == (0, 0)
    assert pd.isna(f.rtt_ms)
    assert stats.packets_in_flows == 2


def test_port_reuse_after_fin_two_flows(tmp_path):
    first = handshake_data_fin(0.0)
    second = handshake_data_fin(5.0, isn_c=77777, isn_s=88888)
    flows, _ = run(tmp_path, first + second)
    assert len(flows) == 2
    assert list(flows.flow_id) == [0, 1]
    assert list(flows.state) == ["SF", "SF"]
    assert list(flows.pkts_c2s) == [6, 6]
    assert flows.ts_start.tolist() == pytest.approx([T0, T0 + 5.0])


def test_syn_on_open_flow_does_not_split(tmp_path):
    # a retried SYN before any FIN/RST stays in the flow
    pkts = [c2s(0, "S", 1), s2c(0.1, "SA", 5, 2), c2s(0.2, "S", 1), c2s(0.3, "A", 2, 6)]
    flows, _ = run(tmp_path, pkts)
    assert len(flows) == 1
    f = flows.iloc[0]
    assert f.syn_retries == 1
    assert f.rtt_ms == pytest.approx(100.0, abs=1e-3)
    assert f.state == "S1"


def test_udp_idle_gap_splits(tmp_path):
    a = ("10.0.0.1", "10.0.0.2", 40000, 4500)
    pkts = [udp(0, *a), udp(120, *a), udp(241, *a), udp(242, "10.0.0.2", "10.0.0.1", 4500, 40000)]
    flows, _ = run(tmp_path, pkts, FlowOptions(udp_timeout=120))
    assert len(flows) == 2     # a gap of exactly the timeout is not "more than" it
    assert list(flows.pkts_c2s) == [2, 1]
    assert list(flows.pkts_s2c) == [0, 1]
    assert list(flows.state) == ["S0", "SF"]
    assert flows.duration.tolist() == pytest.approx([120.0, 1.0])


def test_tcp_idle_gap_uses_tcp_timeout(tmp_path):
    pkts = [c2s(0, "A", 1, 1, b"x"), c2s(3000, "A", 2, 1, b"y"), c2s(6601, "A", 3, 1, b"z")]
    flows, _ = run(tmp_path, pkts)
    assert list(flows.pkts_c2s) == [2, 1]


def test_vlan_outermost_kept(tmp_path):
    l2 = Ether() / Dot1AD(vlan=100) / Dot1Q(vlan=42)
    pkts = [
        tcp(0, C, S, CP, SP, "S", 1, l2=l2.copy()),
        tcp(0.01, S, C, SP, CP, "SA", 9, 2, l2=Ether() / Dot1Q(vlan=7)),
    ]
    flows, _ = run(tmp_path, pkts)
    assert len(flows) == 1          # VLAN is not part of the key
    f = flows.iloc[0]
    assert f.vlan == 100
    assert (f.pkts_c2s, f.pkts_s2c) == (1, 1)
    assert f.bytes_c2s == 14 + 8 + 40
    assert f.state == "OTH"          # client SYN_SENT, server SYN_ACK_SENT: no row but OTH


def test_sorting_and_skips(tmp_path):
    icmp = Ether() / IP(src=C, dst=S) / ICMP(type=8)
    icmp.time = T0 + 0.5
    unreach = Ether() / IP(src=S, dst=C) / ICMP(type=3, code=3)
    unreach.time = T0 + 0.6
    frag = Ether() / IP(src=C, dst=S, frag=10, proto=6) / Raw(b"z" * 30)
    frag.time = T0 + 0.7
    short = Ether() / IP(src=C, dst=S, proto=6) / Raw(b"\x01")
    short.time = T0 + 0.8
    pkts = [udp(1.0, "10.0.0.9", "10.0.0.1", 5000, 6000), udp(1.0, "10.0.0.1", "10.0.0.9", 5001, 6000),
            icmp, unreach, frag, short]
    flows, stats = run(tmp_path, pkts)
    assert flows.client_port.tolist() == [6000, 6000]
    assert flows.client_ip.tolist() == ["10.0.0.1", "10.0.0.9"]
    assert flows.flow_id.tolist() == [0, 1]
    assert stats.records == 6
    assert stats.packets_in_flows == 2
    assert stats.icmp_errors == 1
    assert dict(stats.skipped) == {"icmp_not_error": 1, "icmp_error": 1, "ip_fragment_nonfirst": 1}
    assert dict(stats.malformed) == {"transport_ports_truncated": 1}


def test_files_in_time_order_and_gzip(tmp_path):
    late = tmp_path / "late.pcap.gz"
    early = tmp_path / "early.pcap"
    wrpcap(str(tmp_path / "tmp.pcap"), [c2s(10, "FA", 2, 2)])
    late.write_bytes(gzip.compress((tmp_path / "tmp.pcap").read_bytes()))
    wrpcap(str(early), [c2s(0, "S", 1), s2c(0.1, "SA", 1, 2)])
    stats = RunStats()
    flows = build_flows([late, early], FlowOptions(), stats)
    assert len(flows) == 1
    assert flows.iloc[0].pkts_c2s == 2
    assert flows.iloc[0].duration == pytest.approx(10.0)
    assert stats.files == [str(early), str(late)]


def test_unreadable_file_raises_capture_error(tmp_path):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"this is not a capture file at all")
    with pytest.raises(CaptureError) as err:
        build_flows([bad], FlowOptions(), RunStats())
    assert str(bad) in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(CaptureError):
        build_flows([tmp_path / "missing.pcap"], FlowOptions(), RunStats())


def test_empty_input():
    flows = build_flows([], FlowOptions(), RunStats())
    assert len(flows) == 0 and list(flows.columns) == schema.names(schema.FLOWS) + list(EVIDENCE)


def test_other_link_types_and_ipv6_extension_headers(tmp_path):
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
    from scapy.layers.l2 import CookedLinux
    from scapy.utils import wrpcapng

    first = CookedLinux() / IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrHopByHop() / \
        IPv6ExtHdrFragment(offset=0, m=1) / TCP(sport=1234, dport=443, flags="S")
    first.time = T0
    later = CookedLinux() / IPv6(src="2001:db8::2", dst="2001:db8::1") / \
        IPv6ExtHdrFragment(offset=5) / Raw(b"x" * 20)
    later.time = T0 + 1
    flows, stats = run(tmp_path, [first, later], name="sll.pcap")
    assert len(flows) == 1
    f = flows.iloc[0]
    assert (f.client_ip, f.client_port, f.server_ip, f.server_port, f.state) == \
        ("2001:db8::1", 1234, "2001:db8::2", 443, "S0")
    assert f.bytes_c2s == 16 + 40 + 8 + 8 + 20
    assert dict(stats.skipped) == {"ip_fragment_nonfirst": 1}

    raw = IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=5, dport=6)
    raw.time = T0 + 0.25
    path = tmp_path / "raw.pcapng"
    wrpcapng(str(path), [raw])
    flows = build_flows([path], FlowOptions(), RunStats())
    f = flows.iloc[0]
    assert (f.client_port, f.server_port, f.state) == (6, 5, "SHR")   # only the server spoke
    assert f.ts_start == pytest.approx(T0 + 0.25, abs=1e-6)
    assert not math.isnan(f.ts_start)


def test_truncated_tcp_header_still_counts(tmp_path):
    # 8 bytes of TCP captured: ports readable, flags not -> counts with no flags, no payload
    full = c2s(0, "PA", 1, 1, b"q" * 40)
    cut = Ether(bytes(full)[:14 + 20 + 8])
    cut.time = full.time
    cut.wirelen = len(bytes(full))
    flows, stats = run(tmp_path, [cut, s2c(0.1, "A", 1, 41)])
    f = flows.iloc[0]
    assert (f.client_port, f.pkts_c2s, f.bytes_c2s, f.pkts_s2c) == (CP, 1, 94, 1)
    assert f.state == "OTH"
    assert f.retransmits == 0
    assert dict(stats.malformed) == {"tcp_header_truncated": 1}
    assert stats.packets_in_flows == 2


# --------------------------------------------------------------------------- docs/flows.md
# Byte-exact captures from the shared builders in tests/conftest.py.



def flows_of(path: Path) -> tuple[pd.DataFrame, RunStats]:
    stats = RunStats()
    return build_flows([path], FlowOptions(), stats), stats


def _c(flags, seq=0, payload=b"", ack=0):
    return ether(ip4(C4, S4, 6, tcp_seg(50000, 5223, flags, seq=seq, ack=ack, payload=payload)))


def _s(flags, seq=0, payload=b"", ack=0):
    return ether(ip4(S4, C4, 6, tcp_seg(5223, 50000, flags, seq=seq, ack=ack, payload=payload)))


def test_times_are_min_and_max_not_first_and_last(tmp_path):
    sec = 1_000_000_000
    recs = [(T0_NS + 5 * sec, _c("S", 1)), (T0_NS + 2 * sec, _s("SA", 9, ack=2)),   # clock stepped back
            (T0_NS + 9 * sec, _c("A", 2, ack=10)), (T0_NS + 7 * sec, _s("A", 10, ack=2))]
    flows, _ = flows_of(write(tmp_path / "back.pcap", pcap(recs)))
    assert len(flows) == 1
    f = flows.iloc[0]
    assert f.ts_start == pytest.approx(T0_NS / 1e9 + 2, abs=1e-6)
    assert f.ts_end == pytest.approx(T0_NS / 1e9 + 9, abs=1e-6)
    assert f.duration == pytest.approx(7.0, abs=1e-6)


def test_retransmit_mark_moves_only_with_payload(tmp_path):
    recs = [
        _c("S", 1000),                          # base 1000 from the SYN, no payload
        _s("SA", 5000, ack=1001),
        _c("A", 1001, ack=5001),
        _c("A", 1301, ack=5001),                # pure ACK far ahead: must not move the mark
        _c("PA", 1001, b"a" * 100, ack=5001),   # ends at 101: new data, not a retransmit
        _c("PA", 1101, b"b" * 100, ack=5001),   # new
        _c("PA", 1001, b"a" * 100, ack=5001),   # retransmit
        _c("FA", 1401, ack=5001),               # FIN beyond the data: does not move the mark
        _c("PA", 1201, b"c" * 50, ack=5001),    # new (would be a "retransmit" if FIN moved it)
    ]
    flows, _ = flows_of(write(tmp_path / "retx.pcap", pcap([(T0_NS + i, r) for i, r in enumerate(recs)])))
    assert flows.iloc[0].retransmits == 1


def test_retransmit_base_from_first_captured_header(tmp_path):
    # mid-stream: the first frame of the direction is a pure ACK; its seq is the base
    recs = [_s("A", 7000, ack=1), _s("PA", 7000, b"x" * 10, ack=1), _s("PA", 7000, b"x" * 10, ack=1)]
    flows, _ = flows_of(write(tmp_path / "mid.pcap", pcap([(T0_NS + i, r) for i, r in enumerate(recs)])))
    assert flows.iloc[0].retransmits == 1


def test_orig_len_never_below_caplen_and_absurd_clamped(tmp_path):
    syn, synack = _c("S", 1), _s("SA", 9, ack=2)
    recs = [Rec(T0_NS, syn, 10), Rec(T0_NS + 1000, synack, 0xFFFF_FFF0), Rec(T0_NS + 2000, _c("A", 2, ack=10), 300_000)]
    flows, stats = flows_of(write(tmp_path / "len.pcap", pcap(recs)))
    f = flows.iloc[0]
    assert f.bytes_c2s == len(syn) + 300_000     # 10 < caplen: the captured length
    assert f.bytes_s2c == (1 << 31) - 1           # clamped as Wireshark does
    assert stats.malformed["orig_len_absurd"] == 2


def test_record_longer_than_wireshark_limit_ends_the_file(tmp_path):
    data = pcap([(T0_NS, _c("S", 1)), (T0_NS + 1, _s("SA", 9, ack=2))])
    cut = data[:24 + 16 + len(_c("S", 1)) + 8] + struct.pack("<I", 262_145) + data[24 + 16 + len(_c("S", 1)) + 12:]
    flows, stats = flows_of(write(tmp_path / "big.pcap", cut))
    assert flows.iloc[0].pkts_c2s == 1 and flows.iloc[0].pkts_s2c == 0
    assert len(stats.problems) == 1 and "record 2" in stats.problems[0].message


def _one(tmp_path, frame, linktype=1, name="enc.pcap"):
    flows, stats = flows_of(write(tmp_path / name, pcap([(T0_NS, frame)], linktype)))
    return flows, stats


SEG = tcp_seg(50000, 443, "S", seq=1)


def eth_of(ethertype, payload):
    return ether(payload, ethertype)


@pytest.mark.parametrize("name, linktype, frame, vlan", [
    ("ppp_hdlc", LT_PPP, ppp(ip4(C4, S4, 6, SEG)), None),
    ("ppp_bare", LT_PPP, ppp(ip4(C4, S4, 6, SEG), hdlc=False), None),
    ("ppp_compressed", LT_PPP, b"\xff\x03\x21" + ip4(C4, S4, 6, SEG), None),
    ("ppp_v6", LT_PPP, ppp(ip6("fd00::1", "fd00::2", 6, SEG), proto=0x0057), None),
    ("ppp_cisco_framing", LT_PPP, chdlc(mpls(ip4(C4, S4, 6, SEG), [16, 17]), ETH_MPLS), None),
    ("chdlc", LT_C_HDLC, chdlc(ip4(C4, S4, 6, SEG)), None),
    ("chdlc_multicast", LT_C_HDLC, b"\x8f\x00\x08\x00" + ip4(C4, S4, 6, SEG), None),
    ("vlan_9100", 1, ether(ip4(C4, S4, 6, SEG), tags=[(0x9100, 300), (0x8100, 5)]), 300),
    ("vlan_9200", 1, ether(ip4(C4, S4, 6, SEG), tags=[(0x9200, 12)]), 12),
    ("mpls_v6", 1, ether(mpls(ip6("fd00::1", "fd00::2", 6, SEG), [100, 200, 300]), ETH_MPLS), None),
    ("mpls_multicast", 1, ether(mpls(ip4(C4, S4, 6, SEG), [100]), 0x8848), None),
    ("vlan_pppoe", 1, ether(pppoe(ip4(C4, S4, 6, SEG)), ETH_PPPOE, tags=[(ETH_VLAN, 7)]), 7),
    ("pppoe_v6", 1, ether(pppoe(ip6("fd00::1", "fd00::2", 6, SEG), proto=0x0057), ETH_PPPOE), None),
    ("fabricpath", 1, ether(b"\x00\x01" + ether(ip4(C4, S4, 6, SEG), tags=[(ETH_VLAN, 42)]), 0x8903), 42),
    ("ppi", 192, struct.pack("<BBHI", 0, 0, 8, 1) + ether(ip4(C4, S4, 6, SEG)), None),
    ("ppi_with_field", 192, struct.pack("<BBHIHH4s", 0, 0, 16, 1, 2, 4, b"abcd") + ether(ip4(C4, S4, 6, SEG)), None),
])
def test_link_layers_and_encapsulations(tmp_path, name, linktype, frame, vlan):
    flows, stats = _one(tmp_path, frame, linktype)
    assert len(flows) == 1, dict(stats.skipped) | dict(stats.malformed)
    f = flows.iloc[0]
    assert (f.client_port, f.server_port, f.state, f.bytes_c2s) == (50000, 443, "S0", len(frame))
    assert (pd.isna(f.vlan) if vlan is None else f.vlan == vlan)


@pytest.mark.parametrize("name, linktype, frame, kind, reason", [
    ("nine_labels", 1, ether(mpls(ip4(C4, S4, 6, SEG), list(range(16, 25))), ETH_MPLS), "skipped", "not_ip"),
    ("nine_tags", 1, ether(ip4(C4, S4, 6, SEG), tags=[(ETH_VLAN, i) for i in range(9)]), "skipped", "not_ip"),
    ("mpls_cut", 1, ether(b"\x00\x01\x01", ETH_MPLS), "malformed", "mpls_header_truncated"),
    ("mpls_not_ip", 1, ether(mpls(b"\x00" * 40, [16]), ETH_MPLS), "skipped", "not_ip"),
    ("pppoe_cut", 1, ether(b"\x11\x00\x12\x34\x00", ETH_PPPOE), "malformed", "pppoe_header_truncated"),
    ("pppoe_lcp", 1, ether(pppoe(b"\x01" * 20, proto=0xC021), ETH_PPPOE), "skipped", "not_ip"),
    ("vlan_cut", 1, ether(b"\x00", ETH_VLAN), "malformed", "vlan_header_truncated"),
    ("fabricpath_cut", 1, ether(b"\x00" * 10, 0x8903), "malformed", "link_header_truncated"),
    ("ppp_lcp", LT_PPP, ppp(b"\x01" * 20, proto=0xC021), "skipped", "not_ip"),
    ("chdlc_slarp", LT_C_HDLC, chdlc(b"\x00" * 18, 0x8035), "skipped", "not_ip"),
    ("chdlc_cut", LT_C_HDLC, b"\x0f\x00", "malformed", "link_header_truncated"),
    ("ppi_radio", 192, struct.pack("<BBHI", 0, 0, 8, 105) + b"\x00" * 40, "skipped", "linktype_unsupported"),
    ("ppi_cut", 192, b"\x00\x00\x08", "malformed", "link_header_truncated"),
    ("unknown", 147, b"\x00" * 40, "skipped", "linktype_unsupported"),
])
def test_frames_that_do_not_count(tmp_path, name, linktype, frame, kind, reason):
    flows, stats = _one(tmp_path, frame, linktype)
    assert len(flows) == 0
    assert dict(getattr(stats, kind)) == {reason: 1}


def test_pcapng_interfaces_with_different_link_types(tmp_path):
    data = shb() + idb(1) + idb(LT_PPP) + \
        epb(0, T0_NS // 1000, ether(ip4(C4, S4, 17, udp_seg(5353, 53)))) + \
        epb(1, T0_NS // 1000 + 1, ppp(ip4(S4, C4, 17, udp_seg(53, 5353))))
    flows, _ = flows_of(write(tmp_path / "two.pcapng", data))
    assert len(flows) == 1
    assert (flows.iloc[0].pkts_c2s, flows.iloc[0].pkts_s2c, flows.iloc[0].state) == (1, 1, "SF")


def test_pcapng_tsoffset_simple_packet_blocks_and_new_sections(tmp_path):
    a = ether(ip4(C4, S4, 17, udp_seg(5353, 53)))
    b = ether(ip4(S4, C4, 17, udp_seg(53, 5353)))
    data = (shb() + idb(1, tsoffset=1000) + epb(0, 5_000_000, a) + spb(b) +
            shb(big=True) + idb(LT_PPP, big=True) + epb(0, 7_000_000, ppp(ip4(C4, S4, 17, udp_seg(5354, 53))), big=True))
    flows, _ = flows_of(write(tmp_path / "sections.pcapng", data))
    assert len(flows) == 2          # 1005 s and 7 s: the second section has no offset
    first, second = flows.iloc[0], flows.iloc[1]
    assert (second.pkts_c2s, second.pkts_s2c) == (1, 1)           # the SPB takes the EPB's time
    assert (second.ts_start, second.ts_end) == (1005.0, 1005.0)
    assert (first.ts_start, first.pkts_c2s, first.bytes_c2s) == (7.0, 1, 4 + 20 + 8)


def test_zero_ip_lengths_mean_the_frame_length(tmp_path):
    # IPv4 total length 0 (segmentation offload), IPv6 payload length 0: the frame says
    seg = tcp_seg(50000, 443, "PA", seq=5, payload=b"a" * 100)
    v4 = ip4(C4, S4, 6, seg, total=0)
    v6 = ip6("fd00::1", "fd00::2", 6, seg, plen=0)
    recs = [(T0_NS, v4), (T0_NS + 1000, v4), (T0_NS + 2000, v6), (T0_NS + 3000, v6)]
    flows, stats = flows_of(write(tmp_path / "zero.pcap", pcap(recs, LT_RAW)))
    assert flows.retransmits.tolist() == [1, 1]     # 100-byte payloads, sent twice
    assert not stats.malformed


def test_ipv4_total_length_below_header_is_not_counted(tmp_path):
    # Wireshark stops at such a header (docs/flows.md), so the frame is malformed, not a flow packet.
    frame = ip4(C4, S4, 6, tcp_seg(50000, 443, "S", seq=5), total=10)
    flows, stats = flows_of(write(tmp_path / "short_total.pcap", pcap([(T0_NS, frame)], LT_RAW)))
    assert len(flows) == 0
    assert dict(stats.malformed) == {"ipv4_bad_total_length": 1}


def test_at_most_eight_ipv6_extension_headers(tmp_path):
    seg = tcp_seg(50000, 443, "S", seq=5)
    eight = ip6("fd00::1", "fd00::2", 60, b"".join(ext6(60) for _ in range(7)) + ext6(6) + seg)
    nine = ip6("fd00::1", "fd00::3", 60, b"".join(ext6(60) for _ in range(8)) + ext6(6) + seg)
    flows, stats = flows_of(write(tmp_path / "ext.pcap", pcap([(T0_NS, eight), (T0_NS + 1, nine)], LT_RAW)))
    assert flows.server_ip.tolist() == ["fd00::2"]
    assert dict(stats.malformed) == {"ipv6_ext_header_truncated": 1}
