"""classify() evaluates the rules once per distinct evidence tuple and broadcasts the answer:
it must give every row what evaluating the rules on that row alone gives (distinct=False), on
the corpus's and the samples' flows, with and without a site profile, and on random mixes of
the evidence the rules read."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import apnstrace
from apnstrace.classify import builtin_rules
from apnstrace.classify.classifier import INPUT_COLUMNS, OUTPUT_COLUMNS, _match, _strings
from apnstrace.metadata import attach

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "conformance"))
from conftest import collect_metadata  # noqa: E402
from corpus import PCAPS  # noqa: E402

SITE = apnstrace.Site(mdm_hosts=["mdm.example.com:8443"], distribution_points=["http://dp.example.com/"],
                      sus_hosts=["sus.example.com:8088"], internal_subnets=["10.20.0.0/16", "fd00:20::/64"])


def _outputs(flows: pd.DataFrame, site, distinct: bool) -> pd.DataFrame:
    ruleset = builtin_rules().with_site(site)
    found = _match(flows, ruleset, distinct=distinct)
    out = pd.DataFrame({c: _strings(labels, codes) for c, (labels, codes) in zip(OUTPUT_COLUMNS, found.outputs(ruleset))})
    out["_named_by"] = found.named_by[found.group]
    return out


def _same(flows: pd.DataFrame, site=None) -> None:
    pd.testing.assert_frame_equal(_outputs(flows, site, True), _outputs(flows, site, False), check_exact=True)


def _captures() -> list[Path]:
    samples = sorted(p for p in (REPO / "sample_pcaps").glob("*.pcap*") if not p.name.endswith(".json"))
    return samples + sorted(PCAPS.glob("*"))


def _attached(path: Path) -> pd.DataFrame:
    """The flows as classify() gets them: flow table + metadata, attached."""
    table, collector, _ = collect_metadata(path, tolerate=True)
    return attach(table.finish(), collector)


def test_distinct_equals_per_row_on_real_flows() -> None:
    frames = [_attached(path)[list(INPUT_COLUMNS)] for path in _captures()]
    every = pd.concat(frames, ignore_index=True)
    assert len(every) > 9000 and every["server_name_source"].notna().sum() > 1000
    _same(every)
    _same(every, SITE)


_VALUES = {
    "transport": ["tcp", "udp", "TCP", "sctp", None],
    "server_ip": ["17.57.146.20", "17.253.5.207", "10.20.0.10", "10.21.0.1", "2620:149:a44::10", "fd00:20::5",
                  "2001:db8::1", "17.0.0.1", "1.2.3.4", "not an address", "", None, " 17.57.146.22 "],
    "server_port": [5223, 443, 80, 53, 5353, 445, 548, 8443, 8088, 2197, 2195, 123, -1, 70000, None],
    "sni": ["courier.push.apple.com", "Courier.Push.Apple.Com.", "mdm.example.com", "gateway.icloud.com",
            "deviceenrollment.apple.com", "www.example.com", "", None],
    "alpn": ["apns-security-v3", "h2", "http/1.1", "apns-pack-v1:4096:4096", "h2,http/1.1", " apns-security-v3 ,h2",
             "", None],
    "server_name": ["api.push.apple.com", "swcdn.apple.com", "dp.example.com", "sus.example.com",
                    "fs.example.com", "example.jamfcloud.com", "12-courier.push.apple.com", "", None],
    "http_host": ["dp.example.com", "sus.example.com:8088", "[2001:db8::1]:80", "swscan.apple.com.", "HOST", "", None],
    "http_path": ["/index.sucatalog", "/pkgs/Office.pkg?x=1", "/a.plist#f", "/", "", None],
    "dns_query": ["1-courier.push.apple.com", "mdm.example.com", "_services._dns-sd._udp.local", "", None],
    "server_name_source": ["sni", "http-host", "dns", "", None],
}


@pytest.mark.parametrize("seed", range(6))
def test_distinct_equals_per_row_on_random_evidence(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 4000
    columns = {}
    for name, values in _VALUES.items():
        pick = rng.integers(0, len(values), n)
        column = [values[i] for i in pick]
        if name == "server_port":
            columns[name] = pd.array(column, dtype="Int64")
        else:
            columns[name] = pd.array(column, dtype="string" if seed % 2 else object)
    flows = pd.DataFrame(columns)
    if seed == 5:
        flows = flows.drop(columns=["server_name_source", "alpn"])
    _same(flows)
    _same(flows, SITE)
