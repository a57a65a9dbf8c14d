"""Classification vocabulary and rules: rules.toml (and a Site profile) -> frozen Rules, checked on load."""
from __future__ import annotations

import difflib
import ipaddress
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from importlib import resources

from ..errors import ConfigError
from ..site import Endpoint, Site

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Category(StrEnum):
    """Written to `category`."""

    APNS = "apns"
    MDM = "mdm"
    ENROLLMENT = "enrollment"
    SUS = "sus"
    FILE_SHARE = "file_share"
    HTTP_DISTRIBUTION = "http_distribution"
    APPLE = "apple"
    DNS = "dns"
    OTHER = "other"


class Evidence(StrEnum):
    """Written to `classified_by`: what decided the category."""

    SNI = "sni"               # the TLS ClientHello: server_name, or an APNs ALPN
    DNS = "dns"               # server_name from a DNS answer seen earlier, or a DNS flow's own query name
    HTTP_HOST = "http-host"   # the clear-text HTTP request: Host header or path
    SITE = "site"             # an entry of the site profile
    ADDRESS = "address"       # the server address (Apple space)
    PORT = "port"             # the server port (and transport) only


class Service(StrEnum):
    """Fixed `service` labels of built-in and site rules. Rules with service "auto" write a
    label from [services] in rules.toml ("https", "dns", ...) or "<transport>/<port>"."""

    APNS_COURIER = "apns-courier"          # device <-> APNs, 5223 or 443
    APNS_PROVIDER = "apns-provider"        # MDM server -> api.push.apple.com, 443 or 2197
    APNS_LEGACY = "apns-legacy"            # binary provider API 2195/2196 (retired)
    APNS_BOOTSTRAP = "apns-bootstrap"      # init-p01st.push.apple.com/bag
    APNS = "apns"                          # any other *.push.apple.com
    APNS_DNS = "apns-dns"                  # a DNS lookup of an APNs name (category apns)
    MDM = "mdm"
    ENROLLMENT = "enrollment"
    APPLE_UPDATE = "apple-update"          # Apple's software update hosts (category sus)
    SUS = "sus"                            # a local Software Update Service
    SMB = "smb"
    AFP = "afp"
    JCDS = "jcds"                          # Jamf Cloud Distribution Service
    HTTP = "http"
    HTTPS = "https"
    DNS = "dns"
    MDNS = "mdns"
    APPLE_CERTIFICATES = "apple-certificates"
    APPLE_CONTENT_CACHE = "apple-content-cache"
    APPLE_SETUP = "apple-setup"


NAME = "name"    # classified_by of a rule: evidence = the name column that matched
STRONGEST = "strongest"   # classified_by of a rule: sni, else http-host, else server_name's source, else port
AUTO = "auto"    # service of a rule: from the flow's transport/port (see [services])
TEXT_COLUMNS = ("sni", "alpn", "server_name", "http_host", "http_path", "dns_query")
HOST_KEYS = ("names", "http_host", "dns_query")     # keys whose patterns are host names
RULE_KEYS = ("name", "category", "service", "classified_by", "transport", "server_ports",
             "server_nets", "names", "http_host", "dns_query", "alpn", "http_path", "absent", "note")
_RULE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_LABEL = re.compile(r"^[a-z0-9][a-z0-9/_-]*$")
_HOST_GLOB = re.compile(r"^[a-z0-9*?_-]+(\.[a-z0-9*?_-]+)*$")


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule: every listed condition must hold; empty conditions are not checked."""

    name: str
    category: Category
    service: str
    classified_by: str                            # an Evidence value, NAME or STRONGEST
    transport: tuple[str, ...] = ()
    server_ports: tuple[int, ...] = ()
    port_ranges: tuple[tuple[int, int], ...] = ()
    server_nets: tuple[str, ...] = ()             # as written: network list names or CIDRs
    networks: tuple[IPNetwork, ...] = ()          # server_nets resolved
    names: tuple[str, ...] = ()
    http_host: tuple[str, ...] = ()
    dns_query: tuple[str, ...] = ()
    alpn: tuple[str, ...] = ()
    http_path: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    note: str = ""
    origin: str = ""                              # "rules.toml, rule 3" / "site.toml, mdm_hosts entry 1"
    exact_names: bool = False                     # site rules: a plain name matches only itself
    names_re: re.Pattern | None = field(default=None, compare=False, repr=False)
    http_host_re: re.Pattern | None = field(default=None, compare=False, repr=False)
    dns_query_re: re.Pattern | None = field(default=None, compare=False, repr=False)
    alpn_re: re.Pattern | None = field(default=None, compare=False, repr=False)
    http_path_re: re.Pattern | None = field(default=None, compare=False, repr=False)

    @property
    def is_catch_all(self) -> bool:
        return not (self.transport or self.server_ports or self.port_ranges or self.networks or self.names
                    or self.http_host or self.dns_query or self.alpn or self.http_path or self.absent)


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Rules in match order, the named networks and the port -> service table for "auto"."""

    rules: tuple[Rule, ...]
    networks: Mapping[str, tuple[IPNetwork, ...]]
    services: Mapping[tuple[str, int], str]

    def with_site(self, site: Site | None) -> RuleSet:
        """Site rules first, then these."""
        if site is None:
            return self
        return RuleSet(site_rules(site) + self.rules, self.networks, self.services)


@cache
def builtin_rules() -> RuleSet:
    """The rules shipped in apnstrace/classify/rules.toml (loaded and checked once)."""
    text = resources.files(__package__).joinpath("rules.toml").read_text(encoding="utf-8")
    return load_rules(text, "rules.toml")


def load_rules(text: str, source: str = "rules.toml") -> RuleSet:
    """Parse and check a rules file; a mistake raises one ConfigError line naming the rule."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    for key in data:
        if key not in ("networks", "services", "rule"):
            raise ConfigError(f"{source}: unknown table '{key}' (expected networks, services, rule)")
    networks = _networks(data.get("networks", {}), source)
    services = _services(data.get("services", {}), source)
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list):
        raise ConfigError(f"{source}: 'rule' must be an array of tables ([[rule]])")
    rules: list[Rule] = []
    seen: set[str] = set()
    for number, raw in enumerate(raw_rules, 1):
        where = f"{source}, rule {number}"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a table")
        name = raw.get("name")
        if isinstance(name, str) and name:
            where = f"{where} ({name})"
        try:
            rule = _rule(raw, networks, where)
        except _Bad as bad:
            raise ConfigError(f"{where}: {bad}") from None
        if rule.name in seen:
            raise ConfigError(f"{where}: duplicate rule name")
        if rules and rules[-1].is_catch_all:
            raise ConfigError(f"{where}: unreachable, rule {number - 1} ({rules[-1].name}) matches every flow")
        seen.add(rule.name)
        rules.append(rule)
    return RuleSet(tuple(rules), networks, services)


class _Bad(ValueError):
    """A problem inside one rule; load_rules adds which."""


def _networks(table: object, source: str) -> dict[str, tuple[IPNetwork, ...]]:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [networks] must be a table")
    out = {}
    for name, cidrs in table.items():
        if not isinstance(cidrs, list) or not cidrs:
            raise ConfigError(f"{source}, networks.{name}: expected a non-empty list of CIDRs")
        nets = []
        for cidr in cidrs:
            try:
                nets.append(ipaddress.ip_network(cidr))
            except (ValueError, TypeError):
                raise ConfigError(f"{source}, networks.{name}: bad CIDR {cidr!r}") from None
        out[name] = tuple(nets)
    return out


def _services(table: object, source: str) -> dict[tuple[str, int], str]:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [services] must be a table")
    out = {}
    for key, label in table.items():
        transport, _, port = key.partition("/")
        if transport not in ("tcp", "udp") or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ConfigError(f"{source}, services: key {key!r} is not tcp/PORT or udp/PORT")
        if not isinstance(label, str) or not _LABEL.match(label):
            raise ConfigError(f"{source}, services.{key}: bad service label {label!r}")
        out[(transport, int(port))] = label
    return out


def _rule(raw: dict, networks: Mapping[str, tuple[IPNetwork, ...]], where: str) -> Rule:
    for key in raw:
        if key not in RULE_KEYS:
            hint = difflib.get_close_matches(key, RULE_KEYS, n=1, cutoff=0.75)
            raise _Bad(f"unknown key '{key}'" + (f" (did you mean '{hint[0]}'?)" if hint else ""))
    for key in ("name", "category", "service", "classified_by"):
        if key not in raw:
            raise _Bad(f"missing key '{key}'")
    name = _string(raw, "name")
    if not _RULE_NAME.match(name):
        raise _Bad(f"rule name {name!r} must be lower-case letters, digits, '-', '_' or '.'")
    category = _string(raw, "category")
    if category not in Category.__members__.values():
        raise _Bad(f"unknown category '{category}'")
    service = _string(raw, "service")
    if service != AUTO and service not in Service.__members__.values():
        raise _Bad(f"unknown service '{service}' (use one of apnstrace.classify.Service, or \"auto\")")
    evidence = _string(raw, "classified_by")
    if evidence not in (NAME, STRONGEST) and evidence not in Evidence.__members__.values():
        raise _Bad(f"unknown classified_by '{evidence}'")
    if evidence == NAME and "names" not in raw:
        raise _Bad("classified_by 'name' needs names")
    transport = _strings(raw, "transport")
    for t in transport:
        if t not in ("tcp", "udp"):
            raise _Bad(f"transport entry '{t}' is not tcp or udp")
    ports, ranges = _ports(raw.get("server_ports", []))
    nets_written = _strings(raw, "server_nets")
    resolved: list[IPNetwork] = []
    for entry in nets_written:
        if entry in networks:
            resolved.extend(networks[entry])
            continue
        try:
            resolved.append(ipaddress.ip_network(entry))
        except ValueError:
            raise _Bad(f"server_nets entry '{entry}' is neither a [networks] name nor a CIDR") from None
    absent = _strings(raw, "absent")
    for column in absent:
        if column not in TEXT_COLUMNS:
            raise _Bad(f"absent entry '{column}' is not one of {', '.join(TEXT_COLUMNS)}")
    note = raw.get("note", "")
    if not isinstance(note, str):
        raise _Bad("note must be a string")
    names = _strings(raw, "names")
    http_host = _strings(raw, "http_host")
    dns_query = _strings(raw, "dns_query")
    alpn = _strings(raw, "alpn")
    http_path = _strings(raw, "http_path")
    return Rule(
        name=name, category=Category(category), service=service, classified_by=evidence,
        transport=transport, server_ports=ports, port_ranges=ranges, server_nets=nets_written,
        networks=tuple(resolved), names=names, http_host=http_host, dns_query=dns_query, alpn=alpn,
        http_path=http_path, absent=absent, note=note, origin=where,
        names_re=compile_patterns(names, "names"), http_host_re=compile_patterns(http_host, "http_host"),
        dns_query_re=compile_patterns(dns_query, "dns_query"),
        alpn_re=compile_patterns(alpn, "alpn"), http_path_re=compile_patterns(http_path, "http_path"))


def _string(raw: dict, key: str) -> str:
    value = raw[key]
    if not isinstance(value, str) or not value:
        raise _Bad(f"{key} must be a non-empty string")
    return value


def _strings(raw: dict, key: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _Bad(f"{key} must be a list of non-empty strings")
    return tuple(value)


def _ports(value: object) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
    if not isinstance(value, list):
        raise _Bad("server_ports must be a list of ports or 'lo-hi' ranges")
    ports, ranges = [], []
    for entry in value:
        if isinstance(entry, int) and not isinstance(entry, bool) and 1 <= entry <= 65535:
            ports.append(entry)
            continue
        if isinstance(entry, str):
            lo, sep, hi = entry.partition("-")
            if sep and lo.isdigit() and hi.isdigit() and 1 <= int(lo) <= int(hi) <= 65535:
                ranges.append((int(lo), int(hi)))
                continue
        raise _Bad(f"server_ports entry {entry!r} is not a port 1-65535 or a 'lo-hi' range")
    return tuple(ports), tuple(ranges)


# ---------------------------------------------------------------- patterns

def compile_patterns(patterns: tuple[str, ...], key: str, exact: bool = False) -> re.Pattern | None:
    """One case-insensitive regex for a list of patterns, used with .search().

    names/http_host/dns_query: "apple.com" = the name or a subdomain (exact=True: only the name);
    globs (* ?) match the whole name; "re:..." is searched as written.
    alpn: globs match one whole ALPN entry. http_path: globs match the whole path.
    """
    if not patterns:
        return None
    parts = []
    for pattern in patterns:
        if pattern.startswith("re:"):
            body = pattern[3:]
            try:
                re.compile(body)
            except re.error as exc:
                raise _Bad(f"{key} entry {pattern!r} is not a valid regular expression: {exc}") from None
            if not body:
                raise _Bad(f"{key} entry {pattern!r} is an empty regular expression")
            parts.append(body)
            continue
        parts.append(_glob(pattern, key, exact))
    return re.compile("|".join(f"(?:{p})" for p in parts), re.IGNORECASE)


def _glob(pattern: str, key: str, exact: bool) -> str:
    if key in HOST_KEYS:
        name = pattern.lower().rstrip(".")
        if not _HOST_GLOB.match(name):
            raise _Bad(f"{key} entry {pattern!r} is not a host name or glob")
        body = _translate(name)
        if "*" in name or "?" in name or exact:
            return f"^{body}$"
        return f"(?:^|\\.){body}$"
    if key == "http_path":
        if any(c.isspace() for c in pattern) or not pattern.startswith(("/", "*")):
            raise _Bad(f"{key} entry {pattern!r} is not a path glob (it must start with / or *)")
        return f"^{_translate(pattern)}$"
    if any(c.isspace() for c in pattern) or "," in pattern:       # alpn
        raise _Bad(f"{key} entry {pattern!r} is not an ALPN glob")
    return f"^{_translate(pattern)}$"


def is_plain(pattern: str) -> bool:
    """A names/http_host/dns_query pattern that is a bare name (suffix match), not a glob or regex."""
    return not pattern.startswith("re:") and "*" not in pattern and "?" not in pattern


def _translate(glob: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)


# ---------------------------------------------------------------- site profile -> rules

def site_rules(site: Site) -> tuple[Rule, ...]:
    """A Site's entries as rules (evidence "site"): MDM hosts, then SUS hosts, then distribution points."""
    rules: list[Rule] = []
    for i, ep in enumerate(site.mdm, 1):
        rules.append(_site_rule(ep, f"site-mdm-{i}", Category.MDM, Service.MDM,
                                f"{site.source}, mdm_hosts entry {i}"))
    for i, ep in enumerate(site.sus, 1):
        rules.append(_site_rule(ep, f"site-sus-{i}", Category.SUS, Service.SUS,
                                f"{site.source}, sus_hosts entry {i}"))
    for i, ep in enumerate(site.distribution, 1):
        origin = f"{site.source}, distribution_points entry {i}"
        name = f"site-dp-{i}"
        if ep.protocol in ("smb", "afp"):
            rules.append(_site_rule(ep, name, Category.FILE_SHARE, Service(ep.protocol), origin))
        elif ep.protocol in ("http", "https"):
            rules.append(_site_rule(ep, name, Category.HTTP_DISTRIBUTION, Service(ep.protocol), origin))
        elif ep.ports:                        # bare host:port: the port says which protocol
            port = ep.ports[0]
            if port in (445, 139):
                rules.append(_site_rule(ep, name, Category.FILE_SHARE, Service.SMB, origin))
            elif port == 548:
                rules.append(_site_rule(ep, name, Category.FILE_SHARE, Service.AFP, origin))
            else:
                rules.append(_site_rule(ep, name, Category.HTTP_DISTRIBUTION, AUTO, origin))
        else:                                 # bare host: SMB, AFP by port, else HTTP(S)
            rules.append(_site_rule(ep, f"{name}-smb", Category.FILE_SHARE, Service.SMB, origin, (445, 139)))
            rules.append(_site_rule(ep, f"{name}-afp", Category.FILE_SHARE, Service.AFP, origin, (548,)))
            rules.append(_site_rule(ep, name, Category.HTTP_DISTRIBUTION, AUTO, origin))
    return tuple(rules)


def _site_rule(ep: Endpoint, name: str, category: Category, service: str, origin: str,
               ports: tuple[int, ...] | None = None) -> Rule:
    ports = ep.ports if ports is None else ports
    common = dict(name=name, category=category, service=str(service), classified_by=str(Evidence.SITE),
                  transport=("tcp",), server_ports=ports, note=f"site entry {ep.entry!r}", origin=origin)
    if ep.is_address:
        net = ipaddress.ip_network(ep.host)
        return Rule(**common, server_nets=(str(net),), networks=(net,))
    names = (ep.host,)
    return Rule(**common, names=names, exact_names=True, names_re=compile_patterns(names, "names", exact=True))
