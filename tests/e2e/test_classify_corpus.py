"""Issue acceptance on real traffic: SNI against tshark, Apple flows against nDPI's labels."""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

import apnstrace

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "conformance"))
from corpus import CORPUS, PCAPS, flows_of  # noqa: E402
from ndpi_expected import flow_key, ndpi_flows  # noqa: E402
from tshark_reference import reference_flows  # noqa: E402


def by_key(flows: pd.DataFrame) -> dict:
    out = {}
    for row in flows.itertuples():
        key = flow_key(row.transport, (row.client_ip, row.client_port), (row.server_ip, row.server_port))
        out.setdefault(key, []).append(row)
    return out


def test_ndpi_applepush_flows_are_apns() -> None:
    checked = 0
    for out_file in sorted((CORPUS / "expected").glob("*.out")):
        apple_push = [f for f in ndpi_flows(out_file) if f.app.endswith("ApplePush")]
        if not apple_push:
            continue
        ours = by_key(flows_of(out_file.name.removesuffix(".out")))
        for flow in apple_push:
            rows = ours.get((flow.transport, flow.endpoints))
            assert rows, f"{out_file.name}: no flow {flow}"
            assert {r.category for r in rows} == {"apns"}, (out_file.name, flow, [(r.category, r.service) for r in rows])
            checked += 1
    assert checked == 6


@pytest.mark.parametrize("name", ["whatsapp_login_call.pcap", "wa_voice.pcap", "anyconnect-vpn.pcap"])
def test_courier_flows_are_apns_courier(name: str) -> None:
    flows = flows_of(name)
    courier = flows[(flows["server_port"] == 5223) & flows["server_ip"].str.startswith("17.")]
    assert len(courier) >= 1
    assert (courier["category"] == "apns").all() and (courier["service"] == "apns-courier").all(), \
        courier[["server_ip", "category", "service", "classified_by"]]


@pytest.mark.parametrize("name", ["jabber.pcap", "hpvirtgrp.pcap", "cloudflare-warp.pcap", "KakaoTalk_chat.pcap"])
def test_port_5223_that_is_not_apple_is_not_apns(name: str) -> None:
    flows = flows_of(name)
    on_5223 = flows[(flows["server_port"] == 5223) | (flows["client_port"] == 5223)]
    assert len(on_5223) >= 1
    assert not (on_5223["category"] == "apns").any(), on_5223[["server_ip", "sni", "category", "classified_by"]]


@pytest.mark.parametrize("name,port", [("afp.pcap", 548), ("smb_deletefile.pcap", 445),
                                       ("smb_frags.pcap", 445), ("smbv1.pcap", 445)])
def test_file_shares(name: str, port: int) -> None:
    flows = flows_of(name)
    shares = flows[flows["server_port"] == port]
    assert len(shares) >= 1
    assert (shares["category"] == "file_share").all()
    assert set(shares["service"]) == {"afp" if port == 548 else "smb"}
