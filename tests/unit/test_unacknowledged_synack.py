"""A SYN answered by SYN/ACKs the client never acknowledges, then the server's RST: Zeek calls
it REJ like a refused SYN, but the server accepted. The blocked row must say so, not "the SYN
was answered by a RST in 87660 ms" (gnutella.pcap in the corpus did)."""
from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

import apnstrace

CLIENT = "10.0.0.5"
T0 = 1_700_000_000.0


def _pkt(t: float, src: str, dst: str, sport: int, dport: int, flags: str, ttl: int = 64, **kw):
    p = Ether() / IP(src=src, dst=dst, ttl=ttl) / TCP(sport=sport, dport=dport, flags=flags, **kw)
    p.time = T0 + t
    return p


def _unacknowledged(server: str, sport: int, rst_ttl: int = 52) -> list:
    """SYN; SYN/ACK after 40 ms, again at 1 s and 3 s; nothing from the client; RST at 12 s."""
    out = [_pkt(0.0, CLIENT, server, sport, 5223, "S", seq=100)]
    out += [_pkt(t, server, CLIENT, 5223, sport, "SA", ttl=52, seq=900, ack=101) for t in (0.04, 1.0, 3.0)]
    out.append(_pkt(12.0, server, CLIENT, 5223, sport, "RA", ttl=rst_ttl, seq=901, ack=101))
    return out


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> apnstrace.Result:
    packets = _unacknowledged("17.57.146.10", 50001)
    # A refused SYN (RST/ACK straight back) keeps the rejection wording.
    packets += [_pkt(20.0, CLIENT, "17.57.146.11", 50002, 5223, "S", seq=5),
                _pkt(20.002, "17.57.146.11", CLIENT, 5223, 50002, "RA", ttl=52, seq=0, ack=6)]
    # The client did acknowledge: a completed handshake cut by a RST is another reason.
    packets += [_pkt(30.0, CLIENT, "17.57.146.12", 50003, 5223, "S", seq=7),
                _pkt(30.04, "17.57.146.12", CLIENT, 5223, 50003, "SA", ttl=52, seq=70, ack=8),
                _pkt(30.05, CLIENT, "17.57.146.12", 50003, 5223, "A", seq=8, ack=71),
                _pkt(31.0, "17.57.146.12", CLIENT, 5223, 50003, "RA", ttl=52, seq=71, ack=8)]
    # Unacknowledged, but the RST came from closer than the server: injected wins.
    packets += [_pkt(40.0 + p.time - T0, p[IP].src, p[IP].dst, p[TCP].sport, p[TCP].dport, str(p[TCP].flags),
                     ttl=p[IP].ttl, seq=p[TCP].seq, ack=p[TCP].ack)
                for p in _unacknowledged("17.57.146.13", 50004, rst_ttl=64)]
    path = tmp_path_factory.mktemp("synack") / "unacknowledged.pcap"
    wrpcap(str(path), sorted(packets, key=lambda p: p.time))
    return apnstrace.analyze(Path(path))


def _row(result: apnstrace.Result, server: str):
    rows = result.blocked[result.blocked["server_ip"] == server]
    assert len(rows) == 1, result.blocked
    return rows.iloc[0]


def test_the_server_accepted_and_the_client_never_answered(result) -> None:
    row = _row(result, "17.57.146.10")
    assert (row["reason"], row["state"]) == ("reset", "REJ")
    assert "answered the SYN with a SYN/ACK in 40.0 ms" in row["evidence"]
    assert "never acknowledged" in row["evidence"] and "RST 12.0 s after the SYN" in row["evidence"]
    assert "answered by a RST in" not in row["evidence"]
    assert row["sentence"].endswith("look between the capture point and the device (Wi-Fi, VPN client, host firewall)")


def test_a_refused_syn_still_reads_as_refused(result) -> None:
    row = _row(result, "17.57.146.11")
    assert row["evidence"].startswith("the SYN was answered by a RST in 2.0 ms")
    assert row["sentence"].endswith("a firewall or the server refuses connections to APNs")


def test_an_acknowledged_handshake_is_not_this_case(result) -> None:
    row = _row(result, "17.57.146.12")
    assert row["reason"] == "reset_after_handshake"
    assert "never acknowledged" not in row["evidence"]


def test_an_injected_rst_keeps_the_path_meaning(result) -> None:
    row = _row(result, "17.57.146.13")
    assert "never acknowledged" in row["evidence"] and "TTL 64" in row["evidence"]
    assert row["sentence"].endswith("a firewall or proxy on the path refuses connections to APNs")
