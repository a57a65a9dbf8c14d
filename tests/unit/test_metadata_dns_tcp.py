"""DNS over TCP: length-prefixed messages, reassembled across segments, feed the DNS records."""
from __future__ import annotations

import struct

import apnstrace
from conftest import C4, T0_NS, TCP, collect_metadata, ether, ip4, pcap, tcp, write

RESOLVER, SERVER = "10.0.0.53", "17.57.146.20"


def _name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"


def query(qid: int, name: str) -> bytes:
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + _name(name) + struct.pack("!HH", 1, 1)


def answer(qid: int, name: str, address: str | None, rcode: int = 0) -> bytes:
    head = struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, 1 if address else 0, 0, 0)
    body = _name(name) + struct.pack("!HH", 1, 1)
    if address:
        body += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes(int(x) for x in address.split("."))
    return head + body


def framed(message: bytes) -> bytes:
    return struct.pack("!H", len(message)) + message


def _capture(tmp_path, segments_q, segments_r):
    """A TCP DNS connection: the client's and the resolver's payloads as given (seq, bytes),
    in the order listed, then a connection to the answered address."""
    frames, t = [], T0_NS
    def add(frame):
        nonlocal t
        frames.append((t, ether(frame)))
        t += 1_000_000
    add(ip4(C4, RESOLVER, TCP, tcp(40000, 53, "S", seq=999)))
    add(ip4(RESOLVER, C4, TCP, tcp(53, 40000, "SA", seq=4999, ack=1000)))
    for seq, data in segments_q:
        add(ip4(C4, RESOLVER, TCP, tcp(40000, 53, "PA", seq=1000 + seq, ack=5000, payload=data)))
    for seq, data in segments_r:
        add(ip4(RESOLVER, C4, TCP, tcp(53, 40000, "PA", seq=5000 + seq, ack=1000, payload=data)))
    add(ip4(C4, SERVER, TCP, tcp(50000, 5223, "S", seq=1)))
    return write(tmp_path / "dns_tcp.pcap", pcap(frames))


def _collect(path):
    _, collector, stats = collect_metadata(path)
    return collector, stats


def test_answer_split_over_segments_names_the_server(tmp_path) -> None:
    q = framed(query(7, "courier.push.apple.com"))
    r = framed(answer(7, "courier.push.apple.com", SERVER))
    path = _capture(tmp_path, [(0, q)], [(0, r[:5]), (5, r[5:20]), (20, r[20:])])
    collector, stats = _collect(path)
    assert collector.dns.address.to_pylist() == [SERVER] and collector.dns.name.to_pylist() == ["courier.push.apple.com"]
    assert not stats.malformed
    flows = apnstrace.analyze(path).flows
    courier = flows[flows["server_port"] == 5223].iloc[0]
    assert courier["server_name"] == "courier.push.apple.com"
    assert [m.dns_query for m in collector.flows.values()] == ["courier.push.apple.com"]


def test_out_of_order_segments_and_two_messages_in_one(tmp_path) -> None:
    q = framed(query(1, "mdm.example.com")) + framed(query(2, "gone.example.com"))
    r = framed(answer(1, "mdm.example.com", "0.0.0.0")) + framed(answer(2, "gone.example.com", None, rcode=3))
    path = _capture(tmp_path, [(0, q)], [(0, r[:30]), (60, r[60:]), (30, r[30:60])])   # 3rd before 2nd
    collector, _ = _collect(path)
    failures = [(f.qname, f.qtype, f.rcode) for f in collector.dns.failures]
    assert failures == [("mdm.example.com", "A", "SINKHOLE"), ("gone.example.com", "A", "NXDOMAIN")]
    assert collector.dns.address.to_pylist() == ["0.0.0.0"]


def test_a_message_cut_by_the_capture_is_not_read(tmp_path) -> None:
    r = framed(answer(7, "courier.push.apple.com", SERVER))
    path = _capture(tmp_path, [], [(0, r[:-3])])
    collector, stats = _collect(path)
    assert collector.dns.address.to_pylist() == [] and not collector.dns.failures and not stats.malformed


def test_a_malformed_answer_is_counted(tmp_path) -> None:
    bad = answer(7, "courier.push.apple.com", SERVER)[:-2]          # rdata shorter than its length
    path = _capture(tmp_path, [], [(0, framed(bad))])
    _, stats = _collect(path)
    assert stats.malformed["dns_answer_truncated"] == 1
