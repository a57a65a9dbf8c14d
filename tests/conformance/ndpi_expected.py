"""Read nDPI's expected output (../shared/corpus/ndpi/expected/<capture>.out): flows and labels."""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

FLOW_LINE = re.compile(
    r"^\s+\d+\s+(?P<proto>TCP|UDP) (?P<a>\S+) (?:<->|->) (?P<b>\S+) (?:\[VLAN: \d+\])?\s*\[proto: (?P<label>[^\]]+)\]")
SNI = re.compile(r"\[Hostname/SNI: (?P<sni>[^\]]*)\]")


@dataclass(frozen=True)
class NdpiFlow:
    transport: str
    endpoints: frozenset            # {(address text, port), (address text, port)}
    label: str                      # e.g. "238/ApplePush", "5.238/DNS.ApplePush", "91.140/TLS.Apple"
    sni: str | None

    @property
    def app(self) -> str:
        return self.label.split("/", 1)[1]


def _endpoint(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return str(ipaddress.ip_address(host.strip("[]"))), int(port)


def ndpi_flows(out_file: Path) -> list[NdpiFlow]:
    flows = []
    for line in out_file.read_text(errors="replace").splitlines():
        m = FLOW_LINE.match(line)
        if not m:
            continue
        sni = SNI.search(line)
        try:
            endpoints = frozenset((_endpoint(m["a"]), _endpoint(m["b"])))
        except ValueError:          # nDPI prints some fuzzed IPv6 addresses that are not valid
            continue
        flows.append(NdpiFlow(m["proto"].lower(), endpoints, m["label"], sni["sni"] if sni else None))
    return flows


def flow_key(transport: str, client: tuple[str, int], server: tuple[str, int]) -> tuple:
    return transport, frozenset((client, server))
