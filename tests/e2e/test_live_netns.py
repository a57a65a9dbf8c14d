"""`apnstrace live` on a real network: two namespaces joined by a veth pair (tests/live_lab.py),
real TLS servers on 5223 (an Apple address, courier SNI) and 8443 (MDM), iptables DROP on 443
and REJECT on 2197, a device that holds a courier connection, gets a push, checks in and then
hits both blocked ports. apnstrace captures on the device's veth; the report folder it writes
must show the flows, their categories, the block reasons and the push -> check-in sequence.

Runs as root (CI does): `ip netns` and iptables need it. The namespaces are removed by the
fixture's finalizer whether the test passes or fails.
"""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import VENV_PYTHON
from live_lab import COURIER_IP, DEVICE_IP, MDM_IP, Lab, wait_for_line

import apnstrace

MDM_HOST = "mdm.lab.example:8443"


@pytest.fixture
def lab():
    if os.geteuid() != 0:
        pytest.fail("the live-capture lab builds network namespaces: run as root (CI does)")
    built = Lab()
    try:
        yield built.build()
    finally:
        built.down()
        assert not any(ns in os.listdir("/run/netns") for ns in (built.device_ns, built.server_ns)) \
            if os.path.isdir("/run/netns") else True


def capture(lab: Lab, tmp_path: Path, backend: str, *extra: str):
    """Start the servers and `apnstrace live` on the device's veth, run the device, wait for it."""
    lab.start_servers(tmp_path)
    live = lab.start(lab.in_device(str(VENV_PYTHON), "-m", "apnstrace", "live", "-i", lab.device_if,
                                   "--backend", backend, "--rotate-seconds", "3", "-o", str(tmp_path / "out"),
                                   "--write-pcap", str(tmp_path / "pcap"), "--mdm-host", MDM_HOST, *extra),
                     env=dict(os.environ, PYTHONPATH=str(Path(apnstrace.__file__).parents[1])))
    said = wait_for_line(live, "capturing on", "apnstrace live")
    device = lab.start_client()
    steps = wait_for_line(device, "client: done", "the device")
    return live, said, steps


def check_report(out: Path, backend: str) -> dict:
    flows = pd.read_parquet(out / "flows.parquet")
    blocked = pd.read_parquet(out / "blocked.parquet")
    seq = pd.read_parquet(out / "sequences.parquet")
    summary = json.loads((out / "summary.json").read_text())
    assert (out / "report.html").is_file()

    def flow(server: str, port: int) -> pd.Series:
        rows = flows[(flows["server_ip"] == server) & (flows["server_port"] == port)]
        assert len(rows) == 1, flows.to_string()
        return rows.iloc[0]

    courier, mdm = flow(COURIER_IP, 5223), flow(MDM_IP, 8443)
    dropped, rejected = flow(COURIER_IP, 443), flow(COURIER_IP, 2197)
    assert (courier["category"], courier["service"], courier["sni"]) == ("apns", "apns-courier",
                                                                         "1-courier.push.apple.com")
    assert courier["client_ip"] == DEVICE_IP and not courier["blocked"]
    assert (mdm["category"], mdm["sni"], mdm["classified_by"]) == ("mdm", "mdm.lab.example", "site")
    assert not mdm["blocked"] and mdm["tls_version"] == "TLS 1.3"
    assert dropped["blocked"] and dropped["block_reason"] == "no_response" and dropped["syn_retries"] >= 1
    assert rejected["blocked"] and rejected["block_reason"] == "icmp_unreachable"
    assert set(blocked["reason"]) == {"no_response", "icmp_unreachable"}

    assert len(seq) == 1, seq.to_string()
    push = seq.iloc[0]
    assert push["outcome"] == "checked_in" and push["device_ip"] == DEVICE_IP
    assert push["push_flow_id"] == courier["flow_id"] and push["checkin_flow_id"] == mdm["flow_id"]
    assert push["mdm_server"] == MDM_HOST and 0 < push["latency_s"] < 5

    live = summary["live"]
    assert live["backend"] == backend and live["received"] >= summary["capture"]["frames"] > 0
    assert live["dropped"] == 0, live
    assert summary["counts"]["pushes"] == 1 and summary["counts"]["outcomes"] == {"checked_in": 1}
    return summary


@pytest.mark.parametrize("backend", ["scapy", "dumpcap", "tshark"])
def test_live_capture_on_a_veth(lab, tmp_path, backend):
    live, said, steps = capture(lab, tmp_path, backend, "--duration", "14")
    out, _ = live.communicate(timeout=120)
    said += out.splitlines()
    assert live.returncode == 0, "\n".join(said + steps)
    assert "Traceback" not in out
    assert any("report updated" in line for line in said)           # rolled while capturing, not only at the end
    summary = check_report(tmp_path / "out", backend)
    assert summary["live"]["stopped_by"] == "duration"
    # The rotated capture files hold the same traffic: analyze reads them back to the same answer.
    pcaps = sorted((tmp_path / "pcap").glob("*.pcap"))
    assert pcaps and not list((tmp_path / "pcap").glob("*.part"))
    again = apnstrace.analyze(pcaps, site=apnstrace.Site.from_mdm_hosts([MDM_HOST]))
    assert again.sequences["outcome"].tolist() == ["checked_in"]
    assert len(again.flows) == summary["capture"]["flows"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_live_stops_cleanly_on_a_signal(lab, tmp_path, sig):
    live, said, steps = capture(lab, tmp_path, "scapy")
    # Let the half-second batches reach the engine, then stop it as a service manager or Ctrl-C would.
    time.sleep(1.5)
    live.send_signal(sig)               # `ip netns exec` execs apnstrace: the signal reaches it directly
    out, _ = live.communicate(timeout=120)
    assert live.returncode == 0, "\n".join(said + out.splitlines() + steps)
    assert f"Stopped ({sig.name})" in out and "Traceback" not in out
    summary = check_report(tmp_path / "out", "scapy")
    assert summary["live"]["stopped_by"] == sig.name
