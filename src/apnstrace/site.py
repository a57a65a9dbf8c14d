"""Site profile: what the network's own servers are. TOML -> frozen dataclass, checked when loaded.

    # site.toml
    mdm_hosts = ["mdm.example.com:8443"]                  # host[:port] or https://host[:port]/path
    sus_hosts = ["sus.example.com:8088"]
    distribution_points = ["smb://fs1.example.com/CasperShare", "https://dp.example.com", "10.0.5.20"]
    internal_subnets = ["10.0.0.0/8", "fd00::/8"]

A host is a DNS name, a glob (``*.mdm.example.com``) or an IP literal (``[2001:db8::5]:8443``).
Names are matched exactly (not as suffixes) against SNI, HTTP Host and DNS-derived server names.
Distribution points say their protocol with a scheme: smb (ports 445 and 139 unless given),
afp (548), http, https (any port unless given). A bare host[:port] means any of them: SMB and
AFP by their ports, anything else to that host counts as HTTP distribution.
"""
from __future__ import annotations

import difflib
import ipaddress
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .errors import ConfigError

FIELDS = ("mdm_hosts", "distribution_points", "sus_hosts", "internal_subnets")
DP_PROTOCOLS = ("http", "https", "smb", "afp")
DEFAULT_PORTS = {"smb": (445, 139), "afp": (548,)}
_HOST = re.compile(r"^[a-z0-9*?_-]+(\.[a-z0-9*?_-]+)*$")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One server from the profile: a host (name, glob or IP literal), optional ports and protocol."""

    host: str
    ports: tuple[int, ...] = ()          # empty = any port
    protocol: str | None = None          # http https smb afp, or None (mdm/sus hosts, bare DP hosts)
    entry: str = ""                      # as written, for messages

    @property
    def is_address(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True


class _Bad(ValueError):
    """A problem with one entry; the caller adds where it is."""


@dataclass(frozen=True)
class Site:
    """A site profile. Construct directly (lists of strings), or with from_toml / from_mdm_hosts.

    Every entry is checked here; a bad one raises ConfigError naming the source and the entry.
    """

    mdm_hosts: tuple[str, ...] = ()
    distribution_points: tuple[str, ...] = ()
    sus_hosts: tuple[str, ...] = ()
    internal_subnets: tuple[str, ...] = ()
    source: str = field(default="Site", repr=False, compare=False)   # file name, for messages
    mdm: tuple[Endpoint, ...] = field(init=False, repr=False, compare=False)
    sus: tuple[Endpoint, ...] = field(init=False, repr=False, compare=False)
    distribution: tuple[Endpoint, ...] = field(init=False, repr=False, compare=False)
    internal_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in FIELDS:
            object.__setattr__(self, name, _strings(getattr(self, name), self.source, name))
        parsed = {
            "mdm": _each(self, "mdm_hosts", lambda e: _endpoint(e, ("http", "https"))),
            "sus": _each(self, "sus_hosts", lambda e: _endpoint(e, ("http", "https"))),
            "distribution": _each(self, "distribution_points", lambda e: _endpoint(e, DP_PROTOCOLS, dp=True)),
            "internal_networks": _each(self, "internal_subnets", _network),
        }
        for name, value in parsed.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_toml(cls, path: str | Path) -> Site:
        """Read a site profile; every mistake is one ConfigError line naming the file and entry."""
        where = str(path)
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read site profile: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{where}: site profile is not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{where}: not valid TOML: {exc}") from None
        for key in data:
            if key not in FIELDS:
                hint = difflib.get_close_matches(key, FIELDS, n=1, cutoff=0.75)
                more = f" (did you mean '{hint[0]}'?)" if hint else f" (expected {', '.join(FIELDS)})"
                raise ConfigError(f"{where}: unknown key '{key}'{more}")
        return cls(**{k: data[k] for k in FIELDS if k in data}, source=where)

    @classmethod
    def from_mdm_hosts(cls, hosts: Iterable[str]) -> Site:
        """A profile with only MDM hosts, e.g. from repeated ``--mdm-host HOST[:PORT]`` options."""
        hosts = tuple(hosts)
        for entry in hosts:
            try:
                _endpoint(entry, ("http", "https"))
            except _Bad as bad:
                raise ConfigError(f"--mdm-host {entry!r}: {bad}") from None
        return cls(mdm_hosts=hosts, source="--mdm-host")

    def merged(self, other: Site) -> Site:
        """This profile plus another's entries (e.g. --site FILE plus --mdm-host options)."""
        return Site(**{k: getattr(self, k) + getattr(other, k) for k in FIELDS},
                    source=f"{self.source} + {other.source}")


def _strings(value: object, source: str, name: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ConfigError(f"{source}, {name}: expected a list of strings, got {value!r}")
    for i, entry in enumerate(value, 1):
        if not isinstance(entry, str):
            raise ConfigError(f"{source}, {name} entry {i}: expected a string, got {entry!r}")
    return tuple(value)


def _each(site: Site, name: str, parse):
    out = []
    for i, entry in enumerate(getattr(site, name), 1):
        try:
            out.append(parse(entry))
        except _Bad as bad:
            raise ConfigError(f"{site.source}, {name} entry {i} ({entry!r}): {bad}") from None
    return tuple(out)


def _endpoint(entry: str, schemes: tuple[str, ...], dp: bool = False) -> Endpoint:
    text = entry.strip()
    if not text:
        raise _Bad("empty host")
    protocol = None
    if "://" in text:
        parts = urlsplit(text)
        protocol = parts.scheme.lower()
        if protocol not in schemes:
            raise _Bad(f"scheme '{protocol}' is not one of {', '.join(schemes)}")
        try:
            port = parts.port
        except ValueError:
            raise _Bad(f"port in {parts.netloc!r} is not a number 1-65535") from None
        if port == 0:
            raise _Bad("port 0 is outside 1-65535")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise _Bad("no host")
        if not dp:
            protocol = None          # mdm/sus URLs: the scheme only tells us the port default
    else:
        host, port = _split_host_port(text)
    host = _host(host)
    if port is not None:
        ports: tuple[int, ...] = (port,)
    elif protocol in DEFAULT_PORTS:
        ports = DEFAULT_PORTS[protocol]
    else:
        ports = ()
    return Endpoint(host=host, ports=ports, protocol=protocol, entry=entry)


def _split_host_port(text: str) -> tuple[str, int | None]:
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise _Bad("missing ']' after an IPv6 address")
        if rest and not rest.startswith(":"):
            raise _Bad(f"unexpected {rest!r} after ']'")
        return host, _port(rest[1:]) if rest else None
    if text.count(":") > 1:                      # a bare IPv6 address, no port
        return text, None
    host, sep, port = text.partition(":")
    return host, _port(port) if sep else None


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise _Bad(f"port {text!r} is not a number 1-65535")
    return int(text)


def _host(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    name = host.lower().rstrip(".")
    if not _HOST.match(name):
        raise _Bad(f"{host!r} is not a host name, glob or IP address")
    return name


def _network(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        raise _Bad("not a CIDR network such as 10.0.0.0/8") from None
