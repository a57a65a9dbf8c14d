"""site.py: a site profile from TOML or options; every mistake is one line naming file and entry."""
from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from apnstrace.errors import ConfigError
from apnstrace.site import Endpoint, Site


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_from_toml(tmp_path: Path) -> None:
    path = write(tmp_path, '''
mdm_hosts = ["MDM.Example.com.:8443", "https://mdm2.example.com:9443/mdm/server"]
sus_hosts = ["sus.example.com:8088"]
distribution_points = ["smb://fs1.example.com/CasperShare", "https://dp.example.com", "afp://10.0.0.5",
                       "dp3.example.com:8080"]
internal_subnets = ["10.0.0.0/8", "fd00::/8"]
''')
    site = Site.from_toml(path)
    assert site.mdm == (Endpoint("mdm.example.com", (8443,), None, "MDM.Example.com.:8443"),
                        Endpoint("mdm2.example.com", (9443,), None, "https://mdm2.example.com:9443/mdm/server"))
    assert site.sus[0].host == "sus.example.com" and site.sus[0].ports == (8088,)
    assert [(d.protocol, d.host, d.ports) for d in site.distribution] == [
        ("smb", "fs1.example.com", (445, 139)), ("https", "dp.example.com", ()), ("afp", "10.0.0.5", (548,)),
        (None, "dp3.example.com", (8080,))]
    assert site.distribution[2].is_address and not site.distribution[0].is_address
    assert site.internal_networks == (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))
    assert site.source == str(path)


def test_constructor_takes_lists_and_is_frozen() -> None:
    site = Site(mdm_hosts=["mdm.example.com:8443"])
    assert site.mdm_hosts == ("mdm.example.com:8443",)
    assert site == Site(mdm_hosts=("mdm.example.com:8443",))
    with pytest.raises(AttributeError):
        site.mdm_hosts = ()          # type: ignore[misc]


def test_from_mdm_hosts() -> None:
    site = Site.from_mdm_hosts(["mdm.example.com:8443", "[2001:db8::1]:443", "10.1.1.1", "*.mdm.example.org"])
    assert [(e.host, e.ports) for e in site.mdm] == [("mdm.example.com", (8443,)), ("2001:db8::1", (443,)),
                                                     ("10.1.1.1", ()), ("*.mdm.example.org", ())]


@pytest.mark.parametrize(("entry", "problem"), [
    ("mdm.example.com:99999", "port '99999' is not a number 1-65535"),
    ("mdm.example.com:", "port '' is not a number 1-65535"),
    ("mdm example.com", "'mdm example.com' is not a host name, glob or IP address"),
    ("[2001:db8::1:443", "missing ']' after an IPv6 address"),
    ("ftp://mdm.example.com", "scheme 'ftp' is not one of http, https"),
    ("", "empty host"),
])
def test_from_mdm_hosts_errors(entry: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        Site.from_mdm_hosts([entry])
    assert str(err.value) == f"--mdm-host {entry!r}: {problem}"


@pytest.mark.parametrize(("text", "message"), [
    ('mdm_hosts = ["ok.example.com", "mdm.example.com:0"]',
     "mdm_hosts entry 2 ('mdm.example.com:0'): port '0' is not a number 1-65535"),
    ('distribution_points = ["nfs://fs.example.com"]',
     "distribution_points entry 1 ('nfs://fs.example.com'): scheme 'nfs' is not one of http, https, smb, afp"),
    ('distribution_points = ["smb://fs.example.com:70000/x"]',
     "distribution_points entry 1 ('smb://fs.example.com:70000/x'): port in 'fs.example.com:70000' is not a number 1-65535"),
    ('internal_subnets = ["10.0.0.0/33"]',
     "internal_subnets entry 1 ('10.0.0.0/33'): not a CIDR network such as 10.0.0.0/8"),
    ('sus_hosts = ["sus_host!:8088"]', "sus_hosts entry 1 ('sus_host!:8088'): 'sus_host!' is not a host name, glob or IP address"),
    ('mdm_hosts = "mdm.example.com"', "mdm_hosts: expected a list of strings, got 'mdm.example.com'"),
    ('mdm_hosts = ["a.example.com", 8443]', "mdm_hosts entry 2: expected a string, got 8443"),
    ('mdm_host = ["a.example.com"]', "unknown key 'mdm_host' (did you mean 'mdm_hosts'?)"),
    ('servers = ["a.example.com"]',
     "unknown key 'servers' (expected mdm_hosts, distribution_points, sus_hosts, internal_subnets)"),
])
def test_toml_errors_name_file_and_entry(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text + "\n")
    with pytest.raises(ConfigError) as err:
        Site.from_toml(path)
    sep = ": " if message.startswith("unknown key") else ", "
    assert str(err.value) == f"{path}{sep}{message}"


def test_invalid_toml_and_missing_file_are_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "mdm_hosts = [\n")
    with pytest.raises(ConfigError) as err:
        Site.from_toml(path)
    assert str(err.value).startswith(f"{path}: not valid TOML: ") and "\n" not in str(err.value)
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as err:
        Site.from_toml(missing)
    assert str(err.value) == f"{missing}: cannot read site profile: No such file or directory"


def test_constructor_errors_say_site() -> None:
    with pytest.raises(ConfigError) as err:
        Site(internal_subnets=["nope"])
    assert str(err.value) == "Site, internal_subnets entry 1 ('nope'): not a CIDR network such as 10.0.0.0/8"


def test_merged() -> None:
    site = Site(sus_hosts=["sus.example.com"], source="site.toml").merged(Site.from_mdm_hosts(["m.example.com"]))
    assert site.sus_hosts == ("sus.example.com",) and site.mdm_hosts == ("m.example.com",)
