"""--anonymize: keyed pseudonyms for internal addresses, MAC-derived IPv6 and device names."""
from __future__ import annotations

import ipaddress
import re

import pytest
from conftest import SAMPLES

import apnstrace
from apnstrace.anonymize import Anonymizer
from apnstrace.cli import cli
from apnstrace.site import Site

CAPTURE = SAMPLES / "sequences_site.pcap"
PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
                                             "169.254.0.0/16", "fc00::/7", "fe80::/10")]


def _internal(text: str) -> bool:
    addr = ipaddress.ip_address(text)
    return any(addr.version == n.version and addr in n for n in PRIVATE)


@pytest.mark.parametrize("address", ["10.20.5.37", "172.20.1.2", "192.168.1.10", "100.64.3.4", "169.254.10.20",
                                     "fd12:3456:789a::1", "fc00::5"])
def test_internal_addresses_stay_in_their_network(address):
    anon = Anonymizer("k")
    got = anon.address(address)
    assert got != address
    net = next(n for n in PRIVATE if ipaddress.ip_address(address) in n)
    assert ipaddress.ip_address(got) in net
    assert Anonymizer("k").address(address) == got            # same key, same pseudonym
    assert Anonymizer("other").address(address) != got


def test_link_local_v6_keeps_its_prefix_and_eui64_loses_the_mac():
    anon = Anonymizer("k")
    got = ipaddress.ip_address(anon.address("fe80::1c2b:3cff:fe4d:5e6f"))
    assert int(got) >> 64 == 0xFE80 << 48 and str(got) != "fe80::1c2b:3cff:fe4d:5e6f"
    eui = "2001:db8:20:5:1c2b:3cff:fe4d:5e6f"        # a global address carrying a MAC
    got = ipaddress.ip_address(anon.address(eui))
    assert got != ipaddress.ip_address(eui) and int(got) >> 64 == int(ipaddress.ip_address(eui)) >> 64
    assert "3cff:fe4d" not in str(got)


@pytest.mark.parametrize("address", ["17.57.146.50", "8.8.8.8", "2620:149:a44::50", "2001:db8:20:5:8d2e:51c0:4f7a:e213",
                                     "not an address", "1.2.3"])
def test_public_addresses_and_other_text_are_kept(address):
    assert Anonymizer("k").address(address) == address


def test_global_v6_device_addresses_lose_their_interface_id():
    privacy = "2001:db8:20:5:8d2e:51c0:4f7a:e213"          # a random (privacy) interface ID, not EUI-64
    anon = Anonymizer("k", devices=[privacy, "10.0.0.5", "not an address"])
    got = ipaddress.ip_address(anon.address(privacy))
    assert got != ipaddress.ip_address(privacy)
    assert int(got) >> 64 == int(ipaddress.ip_address(privacy)) >> 64       # the site's /64 stays
    assert Anonymizer("k", devices=[privacy]).address(privacy) == str(got)
    assert anon.address("2620:149:a44::50") == "2620:149:a44::50"           # not a device: kept


def test_result_v6_clients_are_anonymized_and_keep_their_prefix(result):
    v6 = result.flows["client_ip"].str.contains(":") & result.flows["client_ip"].str.startswith("2001:")
    assert v6.sum() >= 2
    anon = result.anonymized(key="k")
    before, after = result.flows.loc[v6, "client_ip"], anon.flows.loc[v6, "client_ip"]
    assert (before != after).all()
    prefix = [int(ipaddress.ip_address(a)) >> 64 for a in before]
    assert prefix == [int(ipaddress.ip_address(a)) >> 64 for a in after]


def test_no_two_addresses_share_a_pseudonym():
    """A bijection per network: every address of a /20 site subnet maps to a distinct one in it."""
    net = ipaddress.ip_network("203.0.112.0/20")
    anon = Anonymizer("k", internal=[str(net)])
    got = {anon.address(str(a)) for a in net}
    assert len(got) == net.num_addresses and all(ipaddress.ip_address(g) in net for g in got)
    assert anon.address("203.0.128.1") == "203.0.128.1"          # outside the site's subnet: public, kept


def test_text_cells_and_device_names():
    anon = Anonymizer("k")
    text = ("TCP 8443 to 10.20.0.10 (mdm, mdm.example.com:8443): from Johns-iPhone.local and John's iPhone, "
            "via fe80::1 and 17.57.146.50.")
    got = anon.text(text)
    for secret in ("10.20.0.10", "Johns-iPhone", "John's iPhone", "fe80::1 "):
        assert secret not in got
    assert "mdm.example.com:8443" in got and "17.57.146.50." in got
    assert re.search(r"host-[0-9a-f]{8}\.local", got) and re.search(r"device-[0-9a-f]{8}", got)
    assert f"to {anon.address('10.20.0.10')} (" in got          # the same pseudonym as in its own column
    assert anon.text("courier.push.apple.com iPhone OS 17") == "courier.push.apple.com iPhone OS 17"


@pytest.fixture(scope="module")
def result() -> apnstrace.Result:
    return apnstrace.analyze(CAPTURE)


def _every_text(result: apnstrace.Result) -> str:
    parts = []
    for name in ("flows", "blocked", "sequences", "timing", "courier", "icmp_errors"):
        frame = getattr(result, name)
        parts.append(frame.astype(str).to_csv(index=False))
    return "\n".join(parts)


def _internal_addresses(result: apnstrace.Result) -> set[str]:
    """What must not survive: internal addresses, and every IPv6 address a device used as a client."""
    found = set(result.flows["client_ip"]) | set(result.flows["server_ip"])
    return {a for a in found if _internal(a)} | {a for a in result.flows["client_ip"] if ":" in a}


def _absent(addresses: set[str], text: str) -> list[str]:
    return [a for a in addresses if re.search(rf"(?<![\w.:]){re.escape(a)}(?![\w:]|\.\d)", text)]


def test_result_anonymized_everywhere(result):
    secrets = _internal_addresses(result)
    assert len(secrets) >= 10
    anon = result.anonymized(key="k")
    assert _absent(secrets, _every_text(anon)) == []
    assert _absent(secrets, _every_text(result)) != []            # the check can fail
    assert len(anon.flows) == len(result.flows) and anon.flows["client_ip"].nunique() == result.flows["client_ip"].nunique()
    apple = result.flows["server_ip"].str.startswith("17.")
    assert (anon.flows.loc[apple, "server_ip"] == result.flows.loc[apple, "server_ip"]).all()
    assert [v.text for v in anon.verdicts] != [] and not _absent(secrets, " ".join(v.text for v in anon.verdicts))
    again = result.anonymized(key="k")
    assert again.flows.equals(anon.flows) and again.blocked.equals(anon.blocked)
    assert not result.anonymized().flows.equals(anon.flows)        # no key: a random one


def test_site_internal_subnets_are_anonymized(result):
    site = Site(internal_subnets=("17.57.146.0/24",))
    anon = result.anonymized(key="k", site=site)
    courier = result.flows["server_ip"].str.startswith("17.57.146.")
    assert courier.any()
    assert (anon.flows.loc[courier, "server_ip"] != result.flows.loc[courier, "server_ip"]).all()
    assert anon.flows.loc[courier, "server_ip"].str.startswith("17.57.146.").all()


@pytest.mark.parametrize("command", ["flows", "sequences", "blocked", "timing"])
def test_cli_anonymize_is_stable_and_complete(command, result, runner, tmp_path):
    secrets = _internal_addresses(result)
    args = [command, str(CAPTURE), "--format", "csv", "--anonymize-key", "shared-key"]
    first, second = runner.invoke(cli, args), runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert first.output == second.output and first.output.count("\n") > 1
    assert _absent(secrets, first.output) == []
    plain = runner.invoke(cli, [command, str(CAPTURE), "--format", "csv"])
    assert _absent(secrets, plain.output) != []
    random_key = runner.invoke(cli, [command, str(CAPTURE), "--format", "csv", "--anonymize"])
    assert random_key.exit_code == 0 and _absent(secrets, random_key.output) == []


def test_analyze_report_folder_is_anonymized(result, runner, tmp_path):
    secrets = _internal_addresses(result)
    got = runner.invoke(cli, ["analyze", str(CAPTURE), "-o", str(tmp_path / "r"), "--anonymize-key", "k"])
    assert got.exit_code == 0, got.output
    assert _absent(secrets, got.output) == []
    checked = 0
    for path in (tmp_path / "r").rglob("*"):
        if path.suffix in (".html", ".csv", ".json"):
            assert _absent(secrets, path.read_text(encoding="utf-8")) == [], path.name
            checked += 1
    assert checked >= 6
