"""pcapng reading: interfaces with their own link types and clocks, simple packet blocks,
sections in either byte order, blocks that are not packets, and gzip of every variant."""
from __future__ import annotations

import struct

import pytest
from conftest import (C4, C6, LT_ETHERNET, LT_RAW, LT_SLL, S4, S6, T0_NS, TCP, UDP, block, end_of_options, epb,
                      ether, idb, ip4, ip6, option, pcap, read_all, shb, sll, spb, tcp, udp,
                      write)

import apnstrace

T0_SEC = T0_NS // 10**9
UDP_C2S = ether(ip4(C4, S4, UDP, udp(5000, 53, b"query")))
UDP_S2C = sll(ip4(S4, C4, UDP, udp(53, 5000, b"answer!")))
SYN6 = ip6(C6, S6, TCP, tcp(50123, 5223, "S", seq=7))


def three_interfaces(big: bool = False) -> bytes:
    """Ethernet in microseconds, SLL in nanoseconds (10^-9), raw IP in 2^-20 s with a 1000 s offset."""
    ticks_2 = ((T0_SEC + 2 - 1000) << 20) | (1 << 19)           # T0_SEC + 2.5 s after the offset
    return b"".join([
        shb(big),
        idb(LT_ETHERNET, big=big),
        idb(LT_SLL, tsresol=9, big=big),
        idb(LT_RAW, tsresol=0x80 | 20, tsoffset=1000, big=big),
        epb(0, T0_NS // 1000, UDP_C2S, big=big),
        epb(1, T0_NS + 5, UDP_S2C, big=big),
        epb(2, ticks_2, SYN6, 1500, big=big),
    ])


EXPECTED_TS = [(T0_NS // 1000) / 1e6, (T0_NS + 5) / 1e9, T0_SEC + 2.5]


@pytest.mark.parametrize("big", [False, True], ids=["le", "be"])
def test_interfaces_have_their_own_link_type_and_clock(tmp_path, big):
    rows, stats, _ = read_all(write(tmp_path / "three.pcapng", three_interfaces(big)))
    assert [r["linktype"] for r in rows] == [LT_ETHERNET, LT_SLL, LT_RAW]
    for row, ts in zip(rows, EXPECTED_TS):
        assert row["ts"] == pytest.approx(ts, abs=1e-6)
    assert [r["caplen"] for r in rows] == [len(UDP_C2S), len(UDP_S2C), len(SYN6)]
    assert [r["wire_len"] for r in rows] == [len(UDP_C2S), len(UDP_S2C), 1500]
    assert [r["data"] for r in rows] == [UDP_C2S, UDP_S2C, SYN6]
    assert [r["record"] for r in rows] == [1, 2, 3]
    assert not stats.problems and not stats.malformed


def test_interfaces_decode_into_flows(tmp_path):
    flows = apnstrace.analyze(write(tmp_path / "three.pcapng", three_interfaces())).flows
    assert list(flows["transport"]) == ["udp", "tcp"]
    dns, syn = flows.iloc[0], flows.iloc[1]
    assert (dns["client_ip"], dns["client_port"], dns["server_ip"], dns["server_port"]) == (C4, 5000, S4, 53)
    assert (dns["pkts_c2s"], dns["pkts_s2c"], dns["bytes_c2s"], dns["bytes_s2c"]) == (1, 1, len(UDP_C2S), len(UDP_S2C))
    assert dns["duration"] == pytest.approx(EXPECTED_TS[1] - EXPECTED_TS[0], abs=1e-6)
    assert (syn["client_ip"], syn["server_ip"], syn["server_port"], syn["bytes_c2s"]) == (C6, S6, 5223, 1500)
    assert syn["ts_start"] == pytest.approx(T0_SEC + 2.5, abs=1e-6)
    assert syn["state"] == "S0"


def test_tsresol_powers_of_ten_and_other_options_before_it(tmp_path):
    # if_name "en0" first (an option whose value needs padding), then if_tsresol = 10^-3.
    body = struct.pack("<HHI", LT_ETHERNET, 0, 0) + option(2, b"en0") + option(9, bytes([3])) + end_of_options()
    data = shb() + block(1, body) + epb(0, T0_SEC * 1000 + 250, UDP_C2S)
    rows, _, _ = read_all(write(tmp_path / "ms.pcapng", data))
    assert rows[0]["ts"] == pytest.approx(T0_SEC + 0.25, abs=1e-6)


def test_negative_tsoffset(tmp_path):
    data = shb() + idb(LT_ETHERNET, tsresol=6, tsoffset=-3600) + epb(0, (T0_SEC + 3600) * 10**6 + 7, UDP_C2S)
    rows, _, _ = read_all(write(tmp_path / "off.pcapng", data))
    assert rows[0]["ts"] == pytest.approx(T0_SEC + 7e-6, abs=1e-6)


def test_simple_packet_blocks(tmp_path):
    frame61 = ether(ip4(C4, S4, UDP, udp(5000, 53, b"x" * 19)))            # 61 bytes, padded to 64
    assert len(frame61) == 61
    snapped = ether(ip4(S4, C4, UDP, udp(53, 5000, b"y" * 1000)))[:64]      # 64 of 1042 bytes captured
    data = b"".join([shb(), idb(LT_ETHERNET, snaplen=64), epb(0, T0_NS // 1000, UDP_C2S),
                     spb(frame61), spb(snapped, orig_len=1042), epb(0, T0_NS // 1000 + 10**6, UDP_C2S)])
    rows, stats, _ = read_all(write(tmp_path / "spb.pcapng", data))
    assert [r["caplen"] for r in rows] == [len(UDP_C2S), 61, 64, len(UDP_C2S)]
    assert [r["wire_len"] for r in rows] == [len(UDP_C2S), 61, 1042, len(UDP_C2S)]
    assert rows[1]["data"] == frame61 and rows[2]["data"] == snapped
    t0 = (T0_NS // 1000) / 1e6
    # A simple packet block has no timestamp: it takes the one of the packet before it.
    assert [r["ts"] for r in rows] == pytest.approx([t0, t0, t0, t0 + 1], abs=1e-6)
    assert not stats.problems


def test_simple_packet_block_takes_the_timestamp_across_a_chunk_edge(tmp_path):
    frames = [ether(ip4(C4, S4, UDP, udp(5000, 53, bytes([i]) * 300))) for i in range(40)]
    blocks = [shb(), idb(LT_ETHERNET), epb(0, T0_NS // 1000, frames[0])] + [spb(f) for f in frames[1:]]
    path = write(tmp_path / "spb-many.pcapng", b"".join(blocks))
    small, _, batches = read_all(path, chunk_bytes=4096)
    assert batches > 2
    assert [r["ts"] for r in small] == pytest.approx([(T0_NS // 1000) / 1e6] * 40, abs=1e-6)
    assert [r["data"] for r in small] == frames


def two_sections() -> bytes:
    """A little-endian section (Ethernet) then a big-endian one (raw IP, nanoseconds)."""
    return b"".join([
        shb(False), idb(LT_ETHERNET), epb(0, T0_NS // 1000, UDP_C2S),
        shb(True), idb(LT_RAW, tsresol=9, big=True), epb(0, T0_NS + 3 * 10**9, SYN6, big=True),
        epb(0, T0_NS + 4 * 10**9, ip4(S4, C4, UDP, udp(53, 5000, b"late")), big=True),
    ])


def test_second_section_in_the_other_byte_order(tmp_path):
    rows, stats, _ = read_all(write(tmp_path / "two.pcapng", two_sections()))
    assert [r["linktype"] for r in rows] == [LT_ETHERNET, LT_RAW, LT_RAW]   # interface 0 is new in section 2
    assert [r["record"] for r in rows] == [1, 2, 3]
    assert [r["ts"] for r in rows] == pytest.approx([(T0_NS // 1000) / 1e6, T0_NS / 1e9 + 3, T0_NS / 1e9 + 4],
                                                    abs=1e-6)
    assert rows[1]["data"] == SYN6
    assert not stats.problems and not stats.malformed
    flows = apnstrace.analyze(write(tmp_path / "two2.pcapng", two_sections())).flows
    assert sorted(zip(flows["transport"], flows["pkts_c2s"], flows["pkts_s2c"])) == [("tcp", 1, 0), ("udp", 1, 1)]


def other_blocks() -> bytes:
    """Name resolution, interface statistics, decryption secrets and a custom block between packets."""
    nrb = block(4, struct.pack("<HH", 1, 8) + bytes([10, 0, 0, 1]) + b"host" + struct.pack("<HH", 0, 0))
    isb = block(5, struct.pack("<III", 0, 0, 0))
    dsb = block(0x0A, struct.pack("<II", 0x544C534B, 4) + b"keys")
    custom = block(0x40000BAD, struct.pack("<I", 32473) + b"vendor data")
    obsolete = block(2, struct.pack("<HHIIII", 0, 0, (T0_NS // 1000) >> 32, (T0_NS // 1000 + 5) & 0xFFFF_FFFF,
                                    len(UDP_C2S), len(UDP_C2S)) + UDP_C2S)
    return b"".join([shb(), nrb, idb(LT_ETHERNET), isb, epb(0, T0_NS // 1000, UDP_C2S), dsb, custom,
                     obsolete, isb, epb(0, T0_NS // 1000 + 10, UDP_C2S), nrb])


def test_blocks_that_are_not_packets_are_stepped_over(tmp_path):
    rows, stats, _ = read_all(write(tmp_path / "other.pcapng", other_blocks()))
    assert [r["record"] for r in rows] == [1, 2, 3]
    assert [r["data"] for r in rows] == [UDP_C2S] * 3
    t0 = (T0_NS // 1000) / 1e6
    assert [r["ts"] for r in rows] == pytest.approx([t0, t0 + 5e-6, t0 + 10e-6], abs=1e-7)
    assert not stats.problems and not stats.malformed


VARIANTS = {
    "three-le": lambda: three_interfaces(False),
    "three-be": lambda: three_interfaces(True),
    "two-sections": two_sections,
    "other-blocks": other_blocks,
    "pcap-usec-le": lambda: pcap([(T0_NS, UDP_C2S), (T0_NS + 7, UDP_C2S)]),
    "pcap-nsec-be": lambda: pcap([(T0_NS, UDP_C2S), (T0_NS + 7, UDP_C2S)], nanos=True, big=True),
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_gzip_of_each_variant_reads_the_same(tmp_path, name):
    data = VARIANTS[name]()
    plain, plain_stats, _ = read_all(write(tmp_path / "plain.cap", data))
    packed, packed_stats, _ = read_all(write(tmp_path / "packed.cap.gz", data, gz=True))
    assert len(plain) >= 2
    assert packed == plain
    assert packed_stats.malformed == plain_stats.malformed and not packed_stats.problems


@pytest.mark.parametrize("options", [
    struct.pack("<HH", 14, 8),                          # if_tsoffset whose 8 bytes are not in the block
    struct.pack("<HH", 9, 200) + b"\x09\x00\x00\x00",   # if_tsresol claiming 200 bytes
    struct.pack("<HH", 2, 0xFFFF),                      # if_name running off the end
], ids=["tsoffset", "tsresol", "name"])
def test_interface_option_overrunning_its_block_is_ignored(tmp_path, options):
    data = shb() + block(1, struct.pack("<HHI", LT_ETHERNET, 0, 0) + options) + epb(0, T0_NS // 1000, UDP_C2S)
    rows, stats, _ = read_all(write(tmp_path / "opt.pcapng", data))
    assert [r["ts"] for r in rows] == pytest.approx([(T0_NS // 1000) / 1e6], abs=1e-6)   # microseconds, no offset
    assert not stats.problems
