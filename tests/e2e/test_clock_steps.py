"""Captures whose time steps back: flows go on as tshark's conversations do, instead of every
frame after the step becoming a flow of its own (flows/table.py, the idle rule by the clock).

Each capture here steps back by more than the UDP timeout (checked), and none of its
conversations is idle past a timeout by its own frames' times, so apnstrace's flows are
exactly the tshark reference's conversations. Two stepping captures are left out because they
do have such gaps (our flows split where tshark, which never splits by time, does not):
ipsec_isakmp_esp.pcap (94 flows, 24 conversations) and agora-sd-rtn.pcap (28, 26).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import apnstrace
from apnstrace.reader import iter_batches
from apnstrace.stats import RunStats

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "ndpi"
STEPPING = ["c1222.pcapng", "cassandra.pcap", "codm.pcap", "discord.pcap", "gaijin_mobile_mixed.pcap",
            "gaijin_warthunder.pcap", "jsonrpc.pcap", "netease_games.pcapng", "steam.pcapng", "syncthing.pcap",
            "tftp.pcap", "trdp.pcapng", "yandex.pcapng"]


def _largest_step_back(path: Path) -> float:
    ts = np.concatenate([raw.ts for raw in iter_batches(path, RunStats())])
    return float(np.max(np.maximum.accumulate(ts) - ts))


@pytest.mark.parametrize("name", STEPPING)
def test_flows_are_tshark_conversations_when_time_steps_back(name: str) -> None:
    path = CORPUS / "pcap" / name
    assert _largest_step_back(path) > apnstrace.FlowOptions().udp_timeout
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flows = apnstrace.analyze([path], sequences=False).flows
    conversations = len((CORPUS / "tshark-flows" / f"{name}.flows.csv").read_text().splitlines()) - 1
    assert len(flows) == conversations
