"""classify/rules.py: the shipped rules load, and every mistake in a rules file is one exact line."""
from __future__ import annotations

import pytest

from apnstrace.classify import AUTO, Category, Evidence, Service, builtin_rules, load_rules
from apnstrace.classify.rules import compile_patterns
from apnstrace.errors import ConfigError

GOOD = '''
name = "x"
category = "apns"
service = "apns-courier"
classified_by = "port"
'''


def rules_text(body: str, head: str = "") -> str:
    return head + "\n[[rule]]\n" + body


def test_builtin_rules_load_and_use_only_known_values() -> None:
    rs = builtin_rules()
    assert len(rs.rules) >= 25
    assert rs.rules[-1].name == "other" and rs.rules[-1].is_catch_all
    assert {r.category for r in rs.rules} == set(Category)
    for rule in rs.rules:
        assert rule.service == AUTO or rule.service in set(Service)
        assert rule.classified_by in ("name", "strongest") or rule.classified_by in set(Evidence)
    assert rs.services[("tcp", 443)] == "https"
    assert [str(n) for n in rs.networks["apple"][:4]] == ["17.0.0.0/8", "2620:149::/32", "2403:300::/32",
                                                          "2a01:b740::/32"]


def test_vocabulary_values_are_what_gets_written() -> None:
    assert [c.value for c in Category] == ["apns", "mdm", "enrollment", "sus", "file_share",
                                           "http_distribution", "apple", "dns", "other"]
    assert [e.value for e in Evidence] == ["sni", "dns", "http-host", "site", "address", "port"]
    assert Category.APNS == "apns" and Evidence.HTTP_HOST == "http-host"


def test_a_good_rule_loads() -> None:
    rs = load_rules(rules_text(GOOD + 'server_ports = [5223, "49152-65535"]\nserver_nets = ["10.0.0.0/8"]\n'))
    (rule,) = rs.rules
    assert rule.server_ports == (5223,) and rule.port_ranges == ((49152, 65535),)
    assert [str(n) for n in rule.networks] == ["10.0.0.0/8"]
    assert rule.origin == "rules.toml, rule 1 (x)"


@pytest.mark.parametrize(("extra", "message"), [
    ('category = "apn"', "rules.toml, rule 2 (x): unknown category 'apn'"),
    ('classified_by = "ip"', "rules.toml, rule 2 (x): unknown classified_by 'ip'"),
    ('service = "apns-courrier"',
     "rules.toml, rule 2 (x): unknown service 'apns-courrier' (use one of apnstrace.classify.Service, or \"auto\")"),
    ('port = [5223]', "rules.toml, rule 2 (x): unknown key 'port'"),
    ('server_port = [5223]', "rules.toml, rule 2 (x): unknown key 'server_port' (did you mean 'server_ports'?)"),
    ('server_ports = [70000]',
     "rules.toml, rule 2 (x): server_ports entry 70000 is not a port 1-65535 or a 'lo-hi' range"),
    ('server_ports = ["9-3"]',
     "rules.toml, rule 2 (x): server_ports entry '9-3' is not a port 1-65535 or a 'lo-hi' range"),
    ('server_nets = ["17.0.0.0/33"]',
     "rules.toml, rule 2 (x): server_nets entry '17.0.0.0/33' is neither a [networks] name nor a CIDR"),
    ('server_nets = ["aple"]',
     "rules.toml, rule 2 (x): server_nets entry 'aple' is neither a [networks] name nor a CIDR"),
    ('names = ["re:(courier"]',
     "rules.toml, rule 2 (x): names entry 're:(courier' is not a valid regular expression: "
     "missing ), unterminated subpattern at position 0"),
    ('names = ["courier push"]', "rules.toml, rule 2 (x): names entry 'courier push' is not a host name or glob"),
    ('names = ["a..b"]', "rules.toml, rule 2 (x): names entry 'a..b' is not a host name or glob"),
    ('http_path = ["pkg"]', "rules.toml, rule 2 (x): http_path entry 'pkg' is not a path glob (it must start with / or *)"),
    ('alpn = ["h2,http/1.1"]', "rules.toml, rule 2 (x): alpn entry 'h2,http/1.1' is not an ALPN glob"),
    ('transport = ["sctp"]', "rules.toml, rule 2 (x): transport entry 'sctp' is not tcp or udp"),
    ('absent = ["sni_name"]',
     "rules.toml, rule 2 (x): absent entry 'sni_name' is not one of sni, alpn, server_name, http_host, http_path, "
     "dns_query"),
    ('dns_query = ["courier push"]',
     "rules.toml, rule 2 (x): dns_query entry 'courier push' is not a host name or glob"),
    ('dns_query = ["re:("]',
     "rules.toml, rule 2 (x): dns_query entry 're:(' is not a valid regular expression: "
     "missing ), unterminated subpattern at position 0"),
    ('dns_querys = ["a.com"]', "rules.toml, rule 2 (x): unknown key 'dns_querys' (did you mean 'dns_query'?)"),
    ('names = "a.com"\nclassified_by = "name"\nhttp_host = [1]', "rules.toml, rule 2 (x): http_host must be a list of non-empty strings"),
    ('note = 3', "rules.toml, rule 2 (x): note must be a string"),
])
def test_each_rule_mistake_is_one_exact_line(extra: str, message: str) -> None:
    lines = [line for line in GOOD.strip().splitlines()
             if line.split(" = ")[0] not in [e.split(" = ")[0] for e in extra.splitlines()]]
    first = rules_text(GOOD + 'server_ports = [1]\n').replace('name = "x"', 'name = "first"')
    text = first + "\n[[rule]]\n" + "\n".join(lines) + "\n" + extra + "\n"
    with pytest.raises(ConfigError) as err:
        load_rules(text)
    assert str(err.value) == message


def test_missing_key_names_the_rule_by_number() -> None:
    with pytest.raises(ConfigError, match=r"^rules\.toml, rule 1: missing key 'name'$"):
        load_rules(rules_text('category = "apns"\nservice = "apns"\nclassified_by = "port"\n'))
    with pytest.raises(ConfigError, match=r"^rules\.toml, rule 1 \(x\): missing key 'classified_by'$"):
        load_rules(rules_text('name = "x"\ncategory = "apns"\nservice = "apns"\n'))


def test_name_evidence_needs_names() -> None:
    with pytest.raises(ConfigError) as err:
        load_rules(rules_text(GOOD.replace('"port"', '"name"')))
    assert str(err.value) == "rules.toml, rule 1 (x): classified_by 'name' needs names"


def test_duplicate_and_unreachable_rules() -> None:
    twice = rules_text(GOOD + "server_ports = [1]\n") + rules_text(GOOD + "server_ports = [2]\n")
    with pytest.raises(ConfigError) as err:
        load_rules(twice)
    assert str(err.value) == "rules.toml, rule 2 (x): duplicate rule name"
    after_catch_all = rules_text(GOOD) + rules_text(GOOD.replace('"x"', '"y"'))
    with pytest.raises(ConfigError) as err:
        load_rules(after_catch_all)
    assert str(err.value) == "rules.toml, rule 2 (y): unreachable, rule 1 (x) matches every flow"


def test_file_level_mistakes() -> None:
    with pytest.raises(ConfigError) as err:
        load_rules("[[rules]]\nname = 'x'\n")
    assert str(err.value) == "rules.toml: unknown table 'rules' (expected networks, services, rule)"
    with pytest.raises(ConfigError) as err:
        load_rules('[networks]\napple = ["17.0.0.0/8", "2620:149::/300"]\n')
    assert str(err.value) == "rules.toml, networks.apple: bad CIDR '2620:149::/300'"
    with pytest.raises(ConfigError) as err:
        load_rules('[services]\n"tcp/http" = "http"\n')
    assert str(err.value) == "rules.toml, services: key 'tcp/http' is not tcp/PORT or udp/PORT"
    with pytest.raises(ConfigError) as err:
        load_rules("[[rule]\n", source="custom.toml")
    assert str(err.value).startswith("custom.toml: not valid TOML: ")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("patterns", "name", "hit"), [
    (("apple.com",), "apple.com", True),
    (("apple.com",), "swcdn.apple.com", True),
    (("apple.com",), "notapple.com", False),
    (("apple.com",), "apple.com.evil.org", False),
    (("courier.push.apple.com",), "1-courier.push.apple.com", False),
    (("*.jamfcloud.com",), "a.b.jamfcloud.com", True),
    (("*.jamfcloud.com",), "jamfcloud.com", False),
    (("*-jcds.services.jamfcloud.com",), "use1-jcds.services.jamfcloud.com", True),
    ((r"re:^\d+-courier\.push\.apple\.com$",), "23-courier.push.apple.com", True),
    ((r"re:^\d+-courier\.push\.apple\.com$",), "x-courier.push.apple.com", False),
])
def test_name_patterns(patterns: tuple[str, ...], name: str, hit: bool) -> None:
    assert bool(compile_patterns(patterns, "names").search(name)) is hit


@pytest.mark.parametrize(("name", "hit"), [
    ("24-courier.push.apple.com", True),
    ("1-courier.sandbox.push.apple.com", True),
    ("courier.push.apple.com", True),
    ("init-p01st.push.apple.com", True),
    ("api.push.apple.com", True),
    ("push.apple.com.example.net", False),
    ("www.example.com", False),
])
def test_apns_dns_rule_patterns(name: str, hit: bool) -> None:
    (rule,) = [r for r in builtin_rules().rules if r.name == "apns-dns"]
    assert bool(rule.dns_query_re.search(name)) is hit
    assert rule.category == Category.APNS and rule.service == Service.APNS_DNS and rule.classified_by == Evidence.DNS
    names = [r.name for r in builtin_rules().rules]
    assert names.index("apns-dns") + 1 == names.index("dns")


def test_exact_names_for_site_entries() -> None:
    rx = compile_patterns(("mdm.example.com",), "names", exact=True)
    assert rx.search("mdm.example.com") and not rx.search("a.mdm.example.com")
