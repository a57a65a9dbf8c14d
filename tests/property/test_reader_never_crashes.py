"""Whatever bytes a file holds, apnstrace.analyze returns a Result (maybe with problems) or
raises CaptureError: never another exception, never a hang. Sizes and example counts are
bounded so the whole file runs in well under a minute."""
from __future__ import annotations

import gzip
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import (C4, C6, ETH_IPV6, ETH_MPLS, ETH_PPPOE, ETH_QINQ, ETH_VLAN, ICMP, ICMPV6, LT_ETHERNET,
                      LT_NULL, LT_RAW, LT_SLL, LT_SLL2, S4, S6, SAMPLES, T0_NS, TCP, UDP, decode, epb, ether, ext6,
                      frag4, frag6, icmp, idb, ip4, ip6, mpls, null, pcap, pppoe, shb, sll, sll2, spb, tcp, udp)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import apnstrace
from apnstrace import schema
from apnstrace.errors import CaptureError

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

SYN4 = ip4(C4, S4, TCP, tcp(50000, 5223, "S", seq=1))
SYN6 = ip6(C6, S6, TCP, tcp(50000, 5223, "S", seq=1))
FRAMES = [
    ether(SYN4), ether(SYN6, ETH_IPV6), ether(SYN4, tags=[(ETH_QINQ, 100), (ETH_VLAN, 20)]),
    ether(ip4(S4, C4, TCP, tcp(5223, 50000, "SA", seq=9, ack=2))),
    ether(ip4(C4, S4, TCP, tcp(50000, 5223, "PA", seq=2, payload=b"\x16\x03\x01" + b"h" * 60))),
    ether(ip4(C4, S4, UDP, udp(5353, 53, b"dns?" * 5), frag=frag4(0, more=True), options=b"\x94\x04\x00\x00")),
    ether(ip4(C4, S4, UDP, b"tail" * 4, frag=frag4(32))),
    ether(ip6(C6, S6, 0, ext6(60) + ext6(44) + frag6(UDP, 0, True) + udp(1, 2, b"x")), ETH_IPV6),
    ether(ip4("192.0.2.1", C4, ICMP, icmp(3, 13, SYN4[:28]))),
    ether(ip6("2001:db8::1", C6, ICMPV6, icmp(1, 1, SYN6[:48])), ETH_IPV6),
    ether(mpls(SYN4, [16, 17]), ETH_MPLS), ether(pppoe(SYN6, 0x0057), ETH_PPPOE),
]
OTHER_LINKS = [(LT_RAW, SYN4), (LT_SLL, sll(SYN4)), (LT_SLL2, sll2(SYN6, ETH_IPV6)), (LT_NULL, null(SYN6, 30))]
PREFIXES = [b"", bytes.fromhex("d4c3b2a1"), bytes.fromhex("a1b2c3d4"), bytes.fromhex("4d3cb2a1"),
            bytes.fromhex("0a0d0d0a"), bytes.fromhex("1f8b08")]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    apnstrace.analyze(SAMPLES / "site_mixed.pcapng")      # compile the record walks outside the timed calls
    return tmp_path_factory.mktemp("fuzz")


def check(path: Path) -> None:
    """The property: a Result whose numbers hang together, or a CaptureError (hangs: the
    suite's timeout, pyproject.toml)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = apnstrace.analyze(path)
    except CaptureError as exc:
        assert str(exc).startswith(str(path))
        assert "\n" not in str(exc)
        return
    flows = result.flows
    assert list(flows.columns) == schema.names(schema.FLOWS)
    assert int(flows["pkts_c2s"].sum() + flows["pkts_s2c"].sum()) == result.stats.packets_in_flows
    assert result.stats.packets_in_flows <= result.stats.records
    assert (flows["duration"] >= 0).all()
    for line in result.problems:
        assert line.startswith(str(path)) and "\n" not in line


def build(kind: str, frames: list[bytes], linktype: int = LT_ETHERNET) -> tuple[bytes, list[int]]:
    """A valid capture and the offsets of its record / block headers (for length edits)."""
    if kind.startswith("pcap-"):
        big, nanos = "be" in kind, "nsec" in kind
        data = pcap([(T0_NS + i * 1000, f) for i, f in enumerate(frames)], linktype, nanos=nanos, big=big)
        heads, pos = [], 24
        for f in frames:
            heads.append(pos)
            pos += 16 + len(f)
        return data, heads
    big = kind.endswith("be")
    blocks = [shb(big), idb(linktype, tsresol=9, big=big), idb(LT_RAW, big=big)]
    for i, f in enumerate(frames):
        blocks.append(spb(f, big=big) if i % 5 == 4 else epb(i % 2 if f == SYN4 else 0, T0_NS + i, f, big=big))
    heads, pos = [], 0
    for b in blocks:
        heads.append(pos)
        pos += len(b)
    return b"".join(blocks), heads


KINDS = ["pcap-usec-le", "pcap-nsec-be", "pcap-usec-be", "pcapng-le", "pcapng-be"]


@SETTINGS
@given(prefix=st.sampled_from(PREFIXES), body=st.binary(max_size=400))
def test_arbitrary_bytes(scratch, prefix, body):
    path = scratch / "arbitrary.cap"
    path.write_bytes(prefix + body)
    check(path)


@SETTINGS
@given(big=st.booleans(), options=st.lists(st.tuples(st.sampled_from([0, 2, 9, 14, 0xFFFF]),
                                                     st.integers(0, 12) | st.integers(0, 0xFFFF),
                                                     st.binary(max_size=12)), max_size=3))
@example(big=False, options=[(14, 8, b"")])          # if_tsoffset cut by the block end: was a struct.error
@example(big=True, options=[(9, 1, b"\x09"), (14, 8, b"\x00" * 4)])
def test_random_interface_options(scratch, big, options):
    """Option areas of an interface block: real codes, declared lengths that may not match the values."""
    e = ">" if big else "<"
    body = struct.pack(e + "HHI", LT_ETHERNET, 0, 0)
    body += b"".join(struct.pack(e + "HH", code, length) + value for code, length, value in options)
    body += b"\x00" * (-len(body) % 4)
    idb_block = struct.pack(e + "II", 1, 12 + len(body)) + body + struct.pack(e + "I", 12 + len(body))
    path = scratch / "options.pcapng"
    path.write_bytes(shb(big) + idb_block + epb(0, T0_NS // 1000, FRAMES[0], big=big))
    check(path)


@st.composite
def mutated_capture(draw) -> bytes:
    kind = draw(st.sampled_from(KINDS))
    if draw(st.booleans()):
        frames = draw(st.lists(st.sampled_from(FRAMES), min_size=1, max_size=10))
        linktype = LT_ETHERNET
    else:
        linktype, frame = draw(st.sampled_from(OTHER_LINKS))
        frames = [frame] * draw(st.integers(1, 4))
    data, heads = build(kind, frames, linktype)
    data = bytearray(data)
    endian = ">" if "be" in kind.split("-")[-1] else "<"
    for _ in range(draw(st.integers(0, 4))):
        edit = draw(st.sampled_from(["flip", "length", "byte"]))
        if edit == "flip":
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "byte":
            at = draw(st.integers(0, len(data) - 1))
            data[at] = draw(st.integers(0, 255))
        else:   # rewrite a record's caplen / orig_len or a block's length (either copy)
            head = draw(st.sampled_from(heads))
            field = draw(st.sampled_from([4, 8, 12, 20, 24] if kind.startswith("pcapng") else [8, 12]))
            value = draw(st.sampled_from([0, 1, 3, 11, 12, 13, 31, 32, 0xFFFF, 262_145, 16 << 20, 0xFFFF_FFFF])
                         | st.integers(0, 0xFFFF_FFFF))
            if head + field + 4 <= len(data):
                struct.pack_into(endian + "I", data, head + field, value)
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    if draw(st.integers(0, 4)) == 0:
        data = bytearray(gzip.compress(bytes(data), mtime=0))
        if draw(st.booleans()):                                   # damage the compressed stream too
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= 0xFF
    return bytes(data)


@SETTINGS
@given(data=mutated_capture())
def test_damaged_captures(scratch, data):
    path = scratch / "damaged.cap"
    path.write_bytes(data)
    check(path)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(frames=st.lists(st.binary(max_size=120), min_size=1, max_size=6),
       linktype=st.sampled_from([0, 1, 9, 12, 14, 101, 104, 108, 113, 192, 228, 229, 276, 105]),
       prefix=st.sampled_from([b"", ether(b"")[:12] + b"\x08\x00", ether(b"")[:12] + b"\x86\xdd",
                               ether(b"")[:12] + b"\x81\x00\x00\x14\x88\x47", b"\x45\x00", b"\x60\x00"]))
def test_decode_any_frame_bytes(frames, linktype, prefix):
    """Any frame bytes under any link type: decode gives reasons, not exceptions."""
    frames = [prefix + f for f in frames]
    packets, errors, stats = decode(frames, linktype)
    assert stats.records == len(frames)
    assert len(packets) == stats.packets_in_flows <= len(frames)
    assert len(errors) == stats.icmp_errors
    assert np.all((packets.port_a >= 0) & (packets.port_a <= 0xFFFF))
    assert np.all(packets.payload_len >= 0)
