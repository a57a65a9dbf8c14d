"""The Capture verdict says how long the capture spans in words a person reads at a glance:
days or years (with the dates) for captures merged from different times, never 69031.6 h."""
from __future__ import annotations

from scapy.all import IP, UDP, Ether, wrpcap

import apnstrace
from apnstrace.report.html import render_html
from apnstrace.report.units import seconds_text


def _capture_text(path) -> str:
    result = apnstrace.analyze(path)
    return next(v.text for v in result.verdicts if v.topic == "Capture")


def _udp(ts: float, sport: int):
    pkt = Ether() / IP(src="10.0.0.2", dst="10.0.0.9") / UDP(sport=sport, dport=9999) / b"x"
    pkt.time = ts
    return pkt


def test_years_apart_reads_as_years_with_dates(tmp_path):
    path = tmp_path / "merged.pcap"
    wrpcap(str(path), [_udp(1456385034.8, 4000), _udp(1704898949.0, 4001)])   # 2016 and 2024
    text = _capture_text(path)
    assert "over 7.9 years (2016-02-25 07:23 to 2024-01-10 15:02 UTC)" in text
    assert " h" not in text.split("over")[1].split("(")[0]


def test_a_short_capture_has_no_dates(tmp_path):
    path = tmp_path / "short.pcap"
    wrpcap(str(path), [_udp(1700000000.0, 4000), _udp(1700000090.0, 4001)])
    text = _capture_text(path)
    assert "over 1.5 min" in text and "UTC" not in text


def test_duration_units():
    assert seconds_text(0.85) == "850 ms"
    assert seconds_text(59.0) == "59.0 s"
    assert seconds_text(3 * 3600.0) == "3.0 h"
    assert seconds_text(47 * 3600.0) == "47.0 h"
    assert seconds_text(3 * 86400.0) == "3.0 days"
    assert seconds_text(3 * 365.25 * 86400.0) == "3.0 years"


def test_the_report_header_says_years_too(tmp_path):
    path = tmp_path / "merged.pcap"
    wrpcap(str(path), [_udp(1456385034.8, 4000), _udp(1704898949.0, 4001)])
    page = render_html(apnstrace.analyze(path))
    assert "(7.9 years)" in page and " h)" not in page


def test_one_flow_is_singular(tmp_path):
    path = tmp_path / "one.pcap"
    wrpcap(str(path), [_udp(1700000000.0, 4000)])
    assert _capture_text(path).startswith("1 frame, 1 flow over 0 ms")
