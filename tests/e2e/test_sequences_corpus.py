"""Pushes on the corpus's real APNs courier flows (whatsapp_login_call.pcap, wa_voice.pcap),
checked against tshark's view of the same records: the push rule of docs/sequences.md applied
to tshark's per-packet fields must find exactly the pushes apnstrace finds.

Both captures hold an iPhone's courier to 17.x:5223 (no SNI: classified by address). tshark
shows every server record there arriving 25-270 ms after the device's own record (connect,
filter and keepalive exchanges), so neither holds a push: the expected list is empty, and the
test says so by computing it rather than by writing it down.
"""
from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

import apnstrace
from apnstrace.options import SequenceOptions

CORPUS = Path(__file__).resolve().parents[3] / "shared/corpus/ndpi/pcap"
CAPTURES = {"whatsapp_login_call.pcap": ("17.110.229.14", 5223), "wa_voice.pcap": ("17.242.60.84", 5223)}
if shutil.which("tshark") is None:
    raise RuntimeError("tshark is missing: `make test` installs it (apt-get install tshark)")


def tshark_pushes(capture: Path, server: str, port: int, options: SequenceOptions) -> tuple[list[float], int]:
    """(push times, server bursts) by the docs/sequences.md rule over tshark's payload packets."""
    out = subprocess.run(["tshark", "-r", str(capture), "-Y", f"tcp.port=={port} && tcp.len>0 && ip.addr=={server}",
                          "-T", "fields", "-e", "frame.time_epoch", "-e", "ip.src", "-e", "tcp.len"],
                         capture_output=True, text=True, check=True).stdout
    packets = [(float(t), src == server, int(n)) for t, src, n in (line.split("\t") for line in out.splitlines())]
    pushes, bursts, last_device, last = [], 0, -float("inf"), None
    for ts, from_server, _ in packets:
        if not from_server:
            last_device, last = ts, "device"
            continue
        new_burst = last != "server" or ts - last_ts >= options.record_gap_s
        if new_burst:
            bursts += 1
            if last_device < ts - options.keepalive_window_s:
                pushes.append(ts)
        last, last_ts = "server", ts
    return pushes, bursts


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_pushes_on_real_courier_flows_match_tshark(name: str) -> None:
    capture = CORPUS / name
    options = SequenceOptions()
    expected, bursts = tshark_pushes(capture, *CAPTURES[name], options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = apnstrace.analyze([capture])
    courier = result.flows[result.flows["service"] == "apns-courier"]
    assert list(courier["server_ip"]) == [CAPTURES[name][0]]           # the one courier flow
    found = sorted(result.sequences["push_ts"].dropna())
    assert found == pytest.approx(expected, abs=1e-6)
    assert bursts >= 3                       # server records were there: all answers, none a push
    print(f"{name}: {bursts} server bursts, {len(expected)} pushes")
