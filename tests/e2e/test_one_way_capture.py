"""A capture that sees one direction (asymmetric routing, a one-way span or tap) is said to be
one, instead of reporting every device as connected and every missing answer as real.

1. A sample capture cut down to its client->server frames (what a span on the uplink of an
   asymmetric route gives): the Capture verdict warns, the APNs verdict no longer says
   "connected", and summary.json counts the one-way flows; the full capture says nothing.
2. WebattackRCE.pcap and whatsapp.pcap (nDPI corpus, real): tshark's TCP conversation table
   shows every conversation with frames in one direction only; apnstrace warns with the same
   count. whatsapp.pcap's conversations open with a SYN (state S0 in Zeek's terms) and go on
   with data: none of them may be called blocked (no_response needs a client that sent only SYNs).
3. synscan.pcap: unanswered SYNs are one-way too, but bare attempts: no warning.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from scapy.all import IP, IPv6, TCP, rdpcap, wrpcap

import apnstrace
from apnstrace.health.one_way import directions

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_pcaps" / "sequences_site.pcap"
CORPUS = REPO.parent / "shared" / "corpus" / "ndpi" / "pcap"


def _verdict(result: apnstrace.Result, topic: str):
    return next(v for v in result.verdicts if v.topic == topic)


@pytest.fixture(scope="module")
def one_way_sample(tmp_path_factory) -> Path:
    """The sample's frames sent by a TCP client (the SYN's sender) only; UDP and ICMP kept."""
    frames = rdpcap(str(SAMPLE))
    clients = set()
    for f in frames:
        ip = f.getlayer(IP) or f.getlayer(IPv6)
        if ip is not None and TCP in f and f[TCP].flags & 0x12 == 0x02:
            clients.add((ip.src, f[TCP].sport))
    kept = [f for f in frames if TCP not in f or ((f.getlayer(IP) or f.getlayer(IPv6)).src, f[TCP].sport) in clients]
    assert len(clients) >= 10 and len(kept) < len(frames)
    path = tmp_path_factory.mktemp("oneway") / "uplink_only.pcap"
    wrpcap(str(path), kept)
    return path


def test_one_way_sample_is_called_one_way(one_way_sample):
    full = apnstrace.analyze(SAMPLE)
    assert _verdict(full, "Capture").level == "ok" and "one way" not in _verdict(full, "Capture").text
    assert "connected" in _verdict(full, "APNs").text

    cut = apnstrace.analyze(one_way_sample)
    seen = directions(cut.flows)
    assert seen.two_way == 0 and seen.one_way >= 10 and seen.blind_side
    capture = _verdict(cut, "Capture")
    assert capture.level == "warn" and f"{seen.one_way:,} of {seen.one_way:,} TCP conversations seen one way" in capture.text
    apns = _verdict(cut, "APNs")
    assert "connected" not in apns.text and "no packet back" in apns.text and apns.level == "info"
    assert cut.summary["capture"]["tcp_one_way"] == seen.one_way
    assert "no packet back" in _verdict(cut, "APNs provider").text
    assert "reached" in _verdict(full, "APNs provider").text
    assert full.summary["capture"]["tcp_one_way"] == 0


@pytest.mark.tshark
@pytest.mark.parametrize("name", ["WebattackRCE.pcap", "whatsapp.pcap"])
def test_one_way_corpus_capture_matches_tshark_conversations(name, tmp_path):
    tshark = shutil.which("tshark")
    assert tshark, "tshark is not installed: run `make test` (it installs Debian's tshark)"
    out = subprocess.run([tshark, "-r", str(CORPUS / name), "-n", "-q", "-z", "conv,tcp"], capture_output=True,
                         text=True, timeout=300).stdout
    # rows: "a:port <-> b:port  frames bytes  frames bytes  total ..."; the two frame counts are per direction
    rows = [line.split() for line in out.splitlines() if "<->" in line]
    per_direction = [(int(r[3]), int(r[6])) for r in rows]
    one_way = sum(1 for a, b in per_direction if (a == 0) != (b == 0))
    assert len(per_direction) > 50 and one_way == len(per_direction)
    result = apnstrace.analyze(CORPUS / name)
    capture = _verdict(result, "Capture")
    assert capture.level == "warn" and f"{one_way:,} of {one_way:,} TCP conversations seen one way" in capture.text
    assert not result.flows["blocked"].any()
    # The report's headline blames the capture, not the traffic, when only the Capture line warns.
    assert [v.topic for v in result.verdicts if v.level in ("warn", "fail")] == ["Capture"]
    page = result.to_html(tmp_path / "report.html").read_text()
    assert "Check the capture first" in page and "Degraded" not in page


def test_a_syn_scan_is_not_a_one_way_capture():
    result = apnstrace.analyze(CORPUS / "synscan.pcap")
    assert result.blocked["reason"].eq("no_response").sum() > 1000
    assert directions(result.flows).one_way == 0 and _verdict(result, "Capture").level == "ok"
