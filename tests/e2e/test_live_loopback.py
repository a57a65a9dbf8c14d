"""The scapy backend on loopback keeps each packet once (the kernel shows it going out and
coming in), as libpcap and so tshark do; a flow's packet counts must not double."""
from __future__ import annotations

import os
import socket
import time

import pytest

from apnstrace.live.backends import ScapyBackend, _is_loopback

PORT = 39_999


def test_loopback_is_recognised():
    assert _is_loopback("lo")
    assert not _is_loopback("apnstrace-no-such-if") or os.path.exists("/sys/class/net/apnstrace-no-such-if")


def test_each_loopback_packet_is_captured_once():
    if os.geteuid() != 0:
        pytest.fail("capturing on lo needs root (CI runs as root)")
    backend = ScapyBackend("lo", f"udp and dst port {PORT}")
    backend.start()
    try:
        time.sleep(0.3)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(3):
                s.sendto(b"apnstrace %d" % i, ("127.0.0.1", PORT))
        time.sleep(0.8)
    finally:
        backend.stop()
    got = backend.take()
    payloads = sorted(p.data[-11:] for p in got)
    assert payloads == [b"apnstrace 0", b"apnstrace 1", b"apnstrace 2"]
    assert backend.counts().received == 3
