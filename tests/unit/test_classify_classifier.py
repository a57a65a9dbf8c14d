"""classify(): one hand-made flow per category, the port-5223 cases, IPv6, site rules, explain."""
from __future__ import annotations


import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apnstrace.classify import INPUT_COLUMNS, classify, explain, load_rules
from apnstrace.site import Site


def flow(server_ip: str = "203.0.113.9", server_port: int = 443, transport: str = "tcp", **text) -> dict:
    return {"transport": transport, "server_ip": server_ip, "server_port": server_port, **text}


def one(row: dict, site: Site | None = None) -> tuple[str, str, str]:
    out = classify(pd.DataFrame([row]), site)
    return tuple(out.loc[0, ["category", "service", "classified_by"]])


CASES = [
    # APNs
    ("courier by address", flow("17.57.144.10", 5223), ("apns", "apns-courier", "address")),
    ("courier SNI on 443 to a CDN address", flow("23.45.67.89", 443, sni="courier.push.apple.com"),
     ("apns", "apns-courier", "sni")),
    ("sandbox courier SNI", flow("17.188.138.71", 443, sni="Courier.Sandbox.Push.Apple.com."),
     ("apns", "apns-courier", "sni")),
    ("courier by DNS name", flow("198.51.100.7", 5223, server_name="3-courier.push.apple.com",
                                 server_name_source="dns"), ("apns", "apns-courier", "dns")),
    ("courier ALPN only", flow("198.51.100.8", 443, alpn="apns-security-v3"), ("apns", "apns-courier", "sni")),
    ("provider", flow("17.188.143.34", 443, sni="api.push.apple.com", alpn="h2"), ("apns", "apns-provider", "sni")),
    ("provider 2197 by address", flow("17.188.143.34", 2197), ("apns", "apns-provider", "address")),
    ("development provider", flow("17.188.143.35", 443, sni="api.development.push.apple.com"),
     ("apns", "apns-provider", "sni")),
    ("legacy gateway", flow("17.188.1.1", 2195), ("apns", "apns-legacy", "address")),
    ("legacy gateway by name", flow("198.51.100.9", 2195, server_name="gateway.push.apple.com"),
     ("apns", "apns-legacy", "dns")),
    ("bootstrap bag", flow("17.1.1.1", 80, http_host="init-p01st.push.apple.com", http_path="/bag"),
     ("apns", "apns-bootstrap", "http-host")),
    # enrollment
    ("ADE", flow("17.32.194.1", 443, sni="deviceenrollment.apple.com"), ("enrollment", "enrollment", "sni")),
    ("ABM profile host", flow("17.32.194.2", 443, sni="iprofiles.apple.com"), ("enrollment", "enrollment", "sni")),
    # software update
    ("Apple update host on a CDN address", flow("23.1.1.1", 443, sni="updates.cdn-apple.com"),
     ("sus", "apple-update", "sni")),
    ("swcdn over http", flow("23.1.1.2", 80, http_host="swcdn.apple.com",
                             http_path="/content/downloads/11/22/001-1/x/InstallAssistant.pkg"),
     ("sus", "apple-update", "http-host")),
    ("local SUS catalog", flow("10.0.0.5", 8088, http_host="sus.corp:8088", http_path="/index.sucatalog"),
     ("sus", "sus", "http-host")),
    ("local SUS download", flow("10.0.0.5", 80, http_path="/content/downloads/a/b/c.pkg"),
     ("sus", "sus", "http-host")),
    ("8088 with nothing visible", flow("10.0.0.5", 8088), ("sus", "sus", "port")),
    ("8088 web UI is not SUS", flow("10.0.0.5", 8088, http_host="10.0.0.5:8088", http_path="/login"),
     ("other", "http", "http-host")),
    ("8088 TLS is not SUS", flow("10.0.0.5", 8088, sni="router.example.net"), ("other", "tcp/8088", "sni")),
    # file shares and distribution
    ("SMB", flow("10.0.0.6", 445), ("file_share", "smb", "port")),
    ("NetBIOS SMB", flow("10.0.0.6", 139), ("file_share", "smb", "port")),
    ("AFP", flow("10.0.0.6", 548), ("file_share", "afp", "port")),
    ("package over HTTP", flow("10.0.0.7", 80, http_host="dp.corp", http_path="/CasperShare/Packages/App.PKG?x=1"),
     ("http_distribution", "http", "http-host")),
    ("OTA manifest", flow("10.0.0.7", 80, http_path="/apps/manifest.plist"),
     ("http_distribution", "http", "http-host")),
    ("JCDS", flow("13.32.1.1", 443, sni="use1-jcds.services.jamfcloud.com"),
     ("http_distribution", "jcds", "sni")),
    # MDM
    ("Jamf Cloud", flow("52.1.1.1", 443, sni="acme.jamfcloud.com"), ("mdm", "mdm", "sni")),
    ("Intune", flow("52.1.1.2", 443, sni="fef.msua06.manage.microsoft.com"), ("mdm", "mdm", "sni")),
    ("8443 by port", flow("10.0.0.8", 8443), ("mdm", "mdm", "port")),
    ("8443 to an Apple name is Apple", flow("17.1.1.1", 8443, sni="x.apple.com"), ("apple", "tcp/8443", "sni")),
    # DNS
    ("DNS udp", flow("10.0.0.1", 53, "udp"), ("dns", "dns", "port")),
    ("DNS tcp", flow("10.0.0.1", 53, "tcp"), ("dns", "dns", "port")),
    ("mDNS", flow("224.0.0.251", 5353, "udp"), ("dns", "mdns", "port")),
    ("courier lookup", flow("10.0.0.1", 53, "udp", dns_query="24-courier.push.apple.com"),
     ("apns", "apns-dns", "dns")),
    ("sandbox courier lookup", flow("10.0.0.1", 53, "udp", dns_query="1-courier.sandbox.push.apple.com"),
     ("apns", "apns-dns", "dns")),
    ("bootstrap lookup over TCP", flow("10.0.0.1", 53, "tcp", dns_query="init-p01st.push.apple.com"),
     ("apns", "apns-dns", "dns")),
    ("provider lookup", flow("10.0.0.1", 53, "udp", dns_query="api.push.apple.com"), ("apns", "apns-dns", "dns")),
    ("other lookup", flow("10.0.0.1", 53, "udp", dns_query="www.example.com"), ("dns", "dns", "port")),
    ("other Apple lookup", flow("10.0.0.1", 53, "udp", dns_query="swcdn.apple.com"), ("dns", "dns", "port")),
    ("mDNS query", flow("224.0.0.251", 5353, "udp", dns_query="_companion-link._tcp.local"),
     ("dns", "mdns", "port")),
    # other Apple
    ("OCSP", flow("17.253.1.1", 80, http_host="ocsp.apple.com", http_path="/ocsp-devid02"),
     ("apple", "apple-certificates", "http-host")),
    ("iCloud name on a CDN", flow("23.2.2.2", 443, sni="p33-caldav.icloud.com"), ("apple", "https", "sni")),
    ("mzstatic", flow("23.2.2.3", 443, sni="is1-ssl.mzstatic.com"), ("apple", "https", "sni")),
    ("Apple address, no name", flow("17.253.144.10", 443), ("apple", "https", "address")),
    ("Apple address over QUIC", flow("17.253.144.10", 443, "udp"), ("apple", "quic", "address")),
    # other
    ("plain web", flow("93.184.216.34", 443, sni="example.com"), ("other", "https", "sni")),
    ("plain web over IPv6", flow("2001:db8:80::1", 443, sni="www.example.com"), ("other", "https", "sni")),
    ("web named by DNS", flow("93.184.216.34", 443, server_name="example.com", server_name_source="dns"),
     ("other", "https", "dns")),
    ("ntp", flow("162.159.200.1", 123, "udp"), ("other", "ntp", "port")),
    ("odd port", flow("198.51.100.1", 31337), ("other", "tcp/31337", "port")),
]


@pytest.mark.parametrize(("row", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_category(row: dict, expected: tuple[str, str, str]) -> None:
    assert one(row) == expected, explain(row)


def test_every_category_is_covered() -> None:
    assert {c[2][0] for c in CASES} == {"apns", "mdm", "enrollment", "sus", "file_share", "http_distribution",
                                         "apple", "dns", "other"}


# ---------------------------------------------------------------- 5223 is not only APNs

def test_5223_to_apple_address_is_apns() -> None:
    assert one(flow("17.242.60.84", 5223)) == ("apns", "apns-courier", "address")


def test_courier_sni_on_443_to_cdn_looking_address_is_apns() -> None:
    assert one(flow("104.86.10.10", 443, sni="courier.push.apple.com")) == ("apns", "apns-courier", "sni")


def test_xmpp_on_5223_is_other() -> None:
    assert one(flow("203.0.113.5", 5223, sni="chat.example.org")) == ("other", "tcp/5223", "sni")


def test_kakaotalk_on_5223_without_a_name_is_other() -> None:
    assert one(flow("54.255.253.199", 5223)) == ("other", "tcp/5223", "port")


def test_5223_to_non_apple_address_named_by_dns_is_apns() -> None:
    row = flow("203.0.113.6", 5223, server_name="3-courier.push.apple.com", server_name_source="dns")
    assert one(row) == ("apns", "apns-courier", "dns")
    assert "server_name '3-courier.push.apple.com' (from dns)" in explain(row)


def test_server_name_source_is_inferred_when_missing() -> None:
    assert one(flow("203.0.113.6", 5223, server_name="3-courier.push.apple.com")) == ("apns", "apns-courier", "dns")


def test_443_to_apple_address_alone_is_not_apns() -> None:
    assert one(flow("17.57.144.10", 443))[0] == "apple"


def test_courier_name_on_another_port_is_not_the_courier() -> None:
    assert one(flow("17.57.144.10", 8080, sni="courier.push.apple.com"))[:2] == ("apns", "apns")


def test_a_non_courier_sni_beats_a_dns_courier_name() -> None:
    row = flow("203.0.113.5", 5223, sni="chat.example.org", server_name="chat.example.org",
               server_name_source="sni")
    assert one(row)[0] == "other"


# ---------------------------------------------------------------- DNS lookups of APNs names

@pytest.mark.parametrize("query", ["24-courier.push.apple.com", "1-courier.sandbox.push.apple.com",
                                   "courier.push.apple.com", "courier.sandbox.push.apple.com",
                                   "init-p01st.push.apple.com", "api.push.apple.com", "push.apple.com",
                                   "24-Courier.Push.Apple.COM."])
def test_apns_lookups_are_apns(query: str) -> None:
    assert one(flow("10.0.0.1", 53, "udp", dns_query=query)) == ("apns", "apns-dns", "dns")


@pytest.mark.parametrize("query", ["www.example.com", "push.apple.com.evil.org", "notpush.apple.com",
                                   "courier-push-apple.com.akadns.net", "apple.com", ""])
def test_other_lookups_stay_dns(query: str) -> None:
    assert one(flow("10.0.0.1", 53, "udp", dns_query=query)) == ("dns", "dns", "port")


def test_mdns_of_an_apns_name_is_mdns() -> None:
    assert one(flow("224.0.0.251", 5353, "udp", dns_query="24-courier.push.apple.com")) == ("dns", "mdns", "port")


def test_dns_query_is_tried_on_dns_query_only() -> None:
    # a courier name in the name columns of a port-53 flow is not an APNs lookup, and a
    # dns_query on a non-DNS port does not make the flow APNs
    assert one(flow("10.0.0.1", 53, "udp", server_name="www.example.com", http_host="www.example.com")) == \
        ("dns", "dns", "port")
    assert one(flow("198.51.100.1", 31337, dns_query="24-courier.push.apple.com")) == \
        ("other", "tcp/31337", "port")


def test_dns_query_column_missing_or_null() -> None:
    flows = pd.DataFrame({"transport": ["udp", "udp"], "server_ip": ["10.0.0.1", "10.0.0.1"],
                          "server_port": [53, 53]})
    assert list(classify(flows)["category"]) == ["dns", "dns"]
    flows["dns_query"] = pd.array(["24-courier.push.apple.com", None], dtype="string")
    out = classify(flows)
    assert list(out["category"]) == ["apns", "dns"]
    assert list(out["service"]) == ["apns-dns", "dns"]


def test_explain_shows_the_query() -> None:
    text = explain(flow("10.0.0.1", 53, "udp", dns_query="24-courier.push.apple.com"))
    assert "(apns-dns): apns / apns-dns, classified_by dns [transport udp; server_port 53 in 53; " \
           "dns_query '24-courier.push.apple.com' matches courier.push.apple.com" in text
    assert "no rule" not in explain(flow("10.0.0.1", 53, "udp", dns_query="www.example.com"))


def test_custom_dns_query_rule() -> None:
    rules = load_rules('[[rule]]\nname = "mine"\ncategory = "mdm"\nservice = "mdm"\nclassified_by = "dns"\n'
                       'dns_query = ["*.jamfcloud.com", "re:^mdm[0-9]+\\\\.corp$", "example.org"]\n')
    queries = ["acme.jamfcloud.com", "jamfcloud.com", "mdm7.corp", "mdmx.corp", "a.example.org", None]
    flows = pd.DataFrame([flow("10.0.0.1", 53, "udp", dns_query=q) for q in queries])
    out = classify(flows, rules=rules)
    assert list(out["category"]) == ["mdm", "other", "mdm", "other", "mdm", "other"]
    assert rules.rules[0].dns_query and not rules.rules[0].is_catch_all


# ---------------------------------------------------------------- IPv6

@pytest.mark.parametrize("address", ["2620:149:a44::10", "2403:300:a42::1", "2403:300:a51:ffff::1",
                                     "2a01:b740:a42::5", "2620:149:1::1", "2a01:b740:ffff::1"])
def test_apple_ipv6_prefixes_on_5223(address: str) -> None:
    assert one(flow(address, 5223)) == ("apns", "apns-courier", "address")


@pytest.mark.parametrize("address", ["2001:db8::17", "2620:14a::1", "::ffff:18.0.0.1", "2a01:b741::1"])
def test_other_ipv6_on_5223_is_other(address: str) -> None:
    assert one(flow(address, 5223))[0] == "other"


def test_ipv4_mapped_apple_address_counts() -> None:
    assert one(flow("::ffff:17.57.144.10", 5223))[0] == "apns"


def test_ipv4_boundaries() -> None:
    assert one(flow("17.0.0.0", 5223))[0] == "apns"
    assert one(flow("17.255.255.255", 5223))[0] == "apns"
    assert one(flow("16.255.255.255", 5223))[0] == "other"
    assert one(flow("18.0.0.0", 5223))[0] == "other"
    assert one(flow("17.300.1.1", 5223))[0] == "other"          # not an address


# ---------------------------------------------------------------- site rules

def test_site_mdm_host_wins_over_builtin_rules() -> None:
    site = Site.from_mdm_hosts(["acme.jamfcloud.com:8443", "mdm.example.com"])
    assert one(flow("52.1.1.1", 8443, sni="acme.jamfcloud.com"), site) == ("mdm", "mdm", "site")
    assert one(flow("52.1.1.1", 443, sni="acme.jamfcloud.com"), site) == ("mdm", "mdm", "sni")   # other port
    assert one(flow("10.1.1.1", 443, server_name="mdm.example.com", server_name_source="dns"), site) == \
        ("mdm", "mdm", "site")
    assert one(flow("10.1.1.1", 443, sni="a.mdm.example.com"), site) == ("other", "https", "sni")  # exact names


def test_site_can_override_even_apns() -> None:
    site = Site(sus_hosts=["17.1.2.3"])
    assert one(flow("17.1.2.3", 5223), site) == ("sus", "sus", "site")


def test_site_literal_addresses_v4_and_v6() -> None:
    site = Site(mdm_hosts=["10.9.9.9:8443", "[2001:db8::5]:443"])
    assert one(flow("10.9.9.9", 8443), site) == ("mdm", "mdm", "site")
    assert one(flow("10.9.9.9", 443), site) == ("other", "https", "port")
    assert one(flow("2001:db8::5", 443), site) == ("mdm", "mdm", "site")


def test_site_distribution_points() -> None:
    site = Site(distribution_points=["smb://fs.example.com/CasperShare", "https://dp.example.com",
                                     "afp://10.0.0.40", "dp2.example.com"])
    named = {"server_name": "fs.example.com", "server_name_source": "dns"}
    assert one(flow("10.0.0.30", 445, **named), site) == ("file_share", "smb", "site")
    assert one(flow("10.0.0.30", 139, **named), site) == ("file_share", "smb", "site")
    assert one(flow("10.0.0.30", 443, **named), site)[0] == "other"          # smb DP: only SMB ports
    assert one(flow("10.0.0.31", 443, sni="dp.example.com"), site) == ("http_distribution", "https", "site")
    assert one(flow("10.0.0.40", 548), site) == ("file_share", "afp", "site")
    bare = {"server_name": "dp2.example.com"}
    assert one(flow("10.0.0.41", 445, **bare), site) == ("file_share", "smb", "site")
    assert one(flow("10.0.0.41", 548, **bare), site) == ("file_share", "afp", "site")
    assert one(flow("10.0.0.41", 80, http_host="dp2.example.com", http_path="/"), site) == \
        ("http_distribution", "http", "site")


def test_explain_names_the_site_entry() -> None:
    site = Site(mdm_hosts=["mdm.example.com:8443"])
    text = explain(flow("10.0.0.9", 8443, sni="mdm.example.com"), site)
    assert text.startswith("Site, mdm_hosts entry 1: mdm / mdm, classified_by site [")
    assert "sni 'mdm.example.com' matches names mdm.example.com" in text


# ---------------------------------------------------------------- frame handling

def test_sample_capture_truth_agrees() -> None:
    """sample_pcaps/site_categories.pcap.truth.json: category and classified_by of every flow."""
    import json
    from pathlib import Path
    truth = Path(__file__).resolve().parents[2] / "sample_pcaps" / "site_categories.pcap.truth.json"
    if not truth.exists():
        pytest.skip("site_categories truth file not generated")
    rows = pd.DataFrame(json.loads(truth.read_text())["flows"])
    if "dns_query" not in rows:       # older truth files: the query name is in "what" ("DNS A <name> ...")
        query = rows["what"].str.extract(r"^DNS [A-Z]+ (\S+)", expand=False)
        rows["dns_query"] = query.where(rows["server_port"].isin([53, 5353]))
    out = classify(rows)
    got = list(zip(out["category"], out["classified_by"]))
    assert got == list(zip(rows["category"], rows["classified_by"]))


def test_explain_names_rule_and_values() -> None:
    text = explain(pd.Series(flow("17.57.144.10", 5223)))
    assert text.startswith("rules.toml, rule 3 (apns-courier-address): apns / apns-courier, classified_by address "
                           "[transport tcp; server_port 5223 in 5223; server_ip 17.57.144.10 in apple]")


def test_output_columns_and_input_unchanged() -> None:
    flows = pd.DataFrame([flow("17.57.144.10", 5223), flow("10.0.0.1", 53, "udp")])
    before = flows.copy()
    out = classify(flows)
    pd.testing.assert_frame_equal(flows, before)
    for column in ("category", "service", "classified_by"):
        assert out[column].dtype == "string"
        assert out[column].notna().all()
    assert list(out.columns[:3]) == ["transport", "server_ip", "server_port"]


def test_empty_frame() -> None:
    out = classify(pd.DataFrame({c: pd.array([], dtype="string") for c in INPUT_COLUMNS}))
    assert len(out) == 0 and out["category"].dtype == "string"


def test_missing_columns_and_nulls() -> None:
    out = classify(pd.DataFrame({"server_port": [5223, None]}))
    assert list(out["category"]) == ["other", "other"]
    assert list(out["service"]) == ["unknown", "unknown"]


def test_schema_dtypes_with_nulls_and_empty_strings() -> None:
    flows = pd.DataFrame({
        "transport": pd.array(["tcp", "tcp", None], dtype="string"),
        "server_ip": pd.array(["17.57.144.1", "198.51.100.2", None], dtype="string"),
        "server_port": pd.array([5223, 443, None], dtype="Int32"),
        "sni": pd.array([None, "", None], dtype="string"),
        "http_host": pd.array([None, "", None], dtype="string"),
        "http_path": pd.array([None, "", None], dtype="string"),
    })
    out = classify(flows)
    assert list(out["category"]) == ["apns", "other", "other"]
    assert list(out["service"]) == ["apns-courier", "https", "unknown"]


def test_unknown_server_name_source_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="server_name_source 'tls'"):
        classify(pd.DataFrame([flow(server_name="x", server_name_source="tls")]))


def test_custom_rules() -> None:
    rules = load_rules('[[rule]]\nname = "mine"\ncategory = "mdm"\nservice = "mdm"\nclassified_by = "port"\n'
                       'server_ports = ["9000-9010"]\n')
    out = classify(pd.DataFrame([flow(server_port=9005), flow(server_port=9011)]), rules=rules)
    assert list(out["category"]) == ["mdm", "other"]
    assert list(out["classified_by"]) == ["port", "port"]


def test_200k_flows_all_classified() -> None:
    rng = np.random.default_rng(7)
    n = 200_000
    names = np.array(["courier.push.apple.com", "swcdn.apple.com", "acme.jamfcloud.com", None] +
                     [f"h{i}.example.com" for i in range(2000)], dtype=object)
    ips = np.array([f"17.57.{i // 256}.{i % 256}" for i in range(5000)] +
                   [f"198.51.{i // 256}.{i % 256}" for i in range(5000)], dtype=object)
    flows = pd.DataFrame({
        "transport": pd.array(np.where(rng.random(n) < 0.9, "tcp", "udp"), dtype="string"),
        "server_ip": pd.array(ips[rng.integers(0, len(ips), n)], dtype="string"),
        "server_port": rng.choice([5223, 443, 80, 53, 445, 8443, 8088], n).astype(np.int32),
        "sni": pd.array(names[rng.integers(0, len(names), n)], dtype="string"),
        "dns_query": pd.array(names[rng.integers(0, len(names), n)], dtype="string"),
    })
    out = classify(flows)      # its speed is measured by bench/bench_classify.py, not here
    assert out["category"].notna().all() and len(out) == n


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=8), min_size=1, max_size=10), st.data())
def test_output_strings_are_the_labels_taken(labels: list, data) -> None:
    """_strings (a compiled gather) gives what Arrow's take of the labels gives."""
    from apnstrace.classify.classifier import _strings
    codes = np.array(data.draw(st.lists(st.integers(0, len(labels) - 1), max_size=40)), np.int64)
    got = _strings(labels, codes)
    want = pd.array(pa.array(labels, pa.large_string()).take(pa.array(codes)), dtype="string")
    assert got.dtype == want.dtype and got.equals(want)
