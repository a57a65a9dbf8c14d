"""The sample captures decoded by tshark (as the corpus reference was built) agree with us.

The corpus comes with tshark's answers precomputed; the samples don't, so this runs tshark
itself. `make test` installs Debian's tshark; without it this test fails, it does not skip.
"""
from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

import apnstrace

REPO = Path(__file__).resolve().parents[2]
CAPTURES = sorted(p for p in (REPO / "sample_pcaps").iterdir() if p.suffix in (".pcap", ".pcapng", ".gz"))
FIELDS = ["frame.len", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "tcp.srcport", "tcp.dstport",
          "udp.srcport", "udp.dstport", "icmp.type", "icmpv6.type"]


def tshark_flows(capture: Path) -> dict[tuple, list[int]]:
    tshark = shutil.which("tshark")
    assert tshark, "tshark is not installed: run `make test` (it installs Debian's tshark)"
    args = [tshark, "-r", str(capture), "-n", "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
            "-T", "fields", "-E", "occurrence=a", "-E", "separator=\t"]
    for field in FIELDS:
        args += ["-e", field]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=120).stdout
    flows: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for line in out.splitlines():
        length, s4, d4, s6, d6, ts, td, us, ud, icmp, icmp6 = (line.split("\t") + [""] * 11)[:11]
        src, dst = s4 or s6, d4 or d6
        if icmp or icmp6 or "," in src or not src:      # the reference's rules (corpus README)
            continue
        proto, sport, dport = ("tcp", ts, td) if ts else ("udp", us, ud) if us else (None, "", "")
        if proto is None or "," in sport:
            continue
        a, b = sorted([(src, int(sport)), (dst, int(dport))])
        flows[(proto, a, b)][0] += 1
        flows[(proto, a, b)][1] += int(length)
    return dict(flows)


def our_flows(capture: Path) -> dict[tuple, list[int]]:
    flows: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for row in apnstrace.analyze([capture]).flows.itertuples():
        a, b = sorted([(row.client_ip, row.client_port), (row.server_ip, row.server_port)])
        flows[(row.transport, a, b)][0] += row.pkts_c2s + row.pkts_s2c
        flows[(row.transport, a, b)][1] += row.bytes_c2s + row.bytes_s2c
    return dict(flows)


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_sample_flows_match_tshark(capture: Path) -> None:
    theirs = tshark_flows(capture)
    assert theirs, "tshark found no flows"
    assert our_flows(capture) == theirs
