"""requirements.py: the shipped data loads with a source per row, mistakes are one exact line, and
check_requirements marks rows reachable / blocked / not_seen from flows and DNS failures."""
from __future__ import annotations

import pandas as pd
import pytest

import apnstrace
from apnstrace.errors import ConfigError
from apnstrace.requirements import (BLOCKED, CHECK, GROUPS, NOT_SEEN, REACHABLE, check_requirements, checklist,
                                    load_requirements)
from apnstrace.schema import names

from conftest import SAMPLES

GOOD = '''
[[requirement]]
group = "APNs"
hosts = ["*-courier.push.apple.com"]
transport = "tcp"
ports = [5223]
purpose = "courier"
required_for = ["devices"]
confidence = "V"
source = "apple-traffic.md 1.1"
'''


def flows(*rows: dict) -> pd.DataFrame:
    """A flows frame with the columns check_requirements reads; defaults: an unblocked TCP flow."""
    base = dict(transport="tcp", client_ip="10.0.0.1", server_ip="17.57.146.20", server_port=443,
                server_name=None, service="https", category="apple", state="SF", blocked=None, block_reason=None)
    frame = pd.DataFrame([{**base, "flow_id": i, **row} for i, row in enumerate(rows)],
                         columns=["flow_id", *base])
    return frame.astype({"blocked": "boolean", "server_name": "string", "block_reason": "string",
                         "server_port": "int32"})


def row(out: pd.DataFrame, host: str, port: int, group: str | None = None) -> pd.Series:
    sel = out[(out["host"] == host) & (out["port"] == port)]
    if group is not None:
        sel = sel[sel["group"] == group]
    assert len(sel) == 1, (host, port, sel)
    return sel.iloc[0]


# ---------------------------------------------------------------- the data file

def test_shipped_requirements_load_with_a_source_per_row() -> None:
    reqs = load_requirements()
    assert load_requirements() is reqs                     # loaded once
    table = checklist()
    assert len(table) == sum(len(r.hosts) * len(r.ports) for r in reqs) >= 60
    assert table["source"].str.startswith("apple-traffic.md ").all()
    assert (table["purpose"].str.len() > 0).all()
    assert list(table["group"].unique()) == list(GROUPS)
    courier = row(table, "*-courier.push.apple.com", 5223)
    assert "443 is the fallback" in courier["notes"] and courier["required_for"] == "devices"
    assert row(table, "api.push.apple.com", 2197)["required_for"] == "MDM server"
    assert row(table, "time.apple.com", 123)["transport"] == "udp"
    assert set(row(table, "ocsp.apple.com", 80)[["group", "confidence"]]) == {"Certificate validation", "V"}


@pytest.mark.parametrize(("edit", "message"), [
    (('group = "APNs"', 'group = "APN"'),
     "x.toml, requirement 2 (*-courier.push.apple.com): unknown group 'APN' (expected one of: "
     + ", ".join(GROUPS) + ")"),
    (('ports = [5223]', 'port = [5223]'),
     "x.toml, requirement 2 (*-courier.push.apple.com): unknown key 'port' (did you mean 'ports'?)"),
    (('ports = [5223]', 'ports = [70000]'),
     "x.toml, requirement 2 (*-courier.push.apple.com): ports must be a non-empty list of ports 1-65535, "
     "not [70000]"),
    (('source = "apple-traffic.md 1.1"\n', ''),
     "x.toml, requirement 2 (*-courier.push.apple.com): missing key 'source'"),
    (('hosts = ["*-courier.push.apple.com"]', 'hosts = ["courier push"]'),
     "x.toml, requirement 2 (courier push): hosts entry 'courier push' is not a host name or glob"),
    (('transport = "tcp"', 'transport = "sctp"'),
     "x.toml, requirement 2 (*-courier.push.apple.com): transport 'sctp' is not tcp or udp"),
    (('required_for = ["devices"]', 'required_for = ["phones"]'),
     "x.toml, requirement 2 (*-courier.push.apple.com): required_for must list some of: devices, MDM server, "
     "content cache (got ['phones'])"),
    (('confidence = "V"', 'confidence = "high"'),
     "x.toml, requirement 2 (*-courier.push.apple.com): confidence 'high' is not V, P or U"),
    (('confidence = "V"', 'confidence = "V"\nservice = "apns-courrier"'),
     "x.toml, requirement 2 (*-courier.push.apple.com): unknown service 'apns-courrier' "
     "(use one of apnstrace.classify.Service)"),
])
def test_a_mistake_names_the_file_and_the_entry(edit: tuple[str, str], message: str) -> None:
    first = GOOD.replace("*-courier.push.apple.com", "api.push.apple.com")
    with pytest.raises(ConfigError) as info:
        load_requirements(first + GOOD.replace(*edit), "x.toml")
    assert str(info.value) == message


def test_file_level_mistakes() -> None:
    with pytest.raises(ConfigError, match=r"^x.toml: not valid TOML: "):
        load_requirements("[[requirement]\n", "x.toml")
    with pytest.raises(ConfigError, match=r"^x.toml: unknown table 'rule' \(expected \[\[requirement\]\]\)$"):
        load_requirements("[[rule]]\nname = 'x'\n", "x.toml")
    with pytest.raises(ConfigError, match=r"^x.toml, requirement 2 \(\*-courier.push.apple.com\): "
                                          r"\*-courier.push.apple.com tcp/5223 is already in x.toml, requirement 1"):
        load_requirements(GOOD + GOOD, "x.toml")


# ---------------------------------------------------------------- checking flows

def test_reachable_blocked_and_not_seen() -> None:
    out = check_requirements(flows(
        dict(client_ip="10.0.0.1", server_name="gdmf.apple.com", server_ip="17.1.1.1"),
        dict(client_ip="10.0.0.2", server_name="GDMF.apple.com.", blocked=True, block_reason="reset",
             state="REJ"),
        dict(client_ip="10.0.0.2", server_name="albert.apple.com", blocked=True, block_reason="no_response",
             state="S0", server_ip="17.2.2.2"),
        dict(server_name="ocsp.apple.com", server_port=443),            # ocsp.apple.com is required on 80
        dict(server_name="x.gdmf.apple.com"),                           # exact names: not gdmf.apple.com
    ))
    assert list(out.columns) == names(CHECK)
    assert len(out) == len(checklist())
    gdmf = row(out, "gdmf.apple.com", 443, "Device management / enrollment")
    assert (gdmf["status"], gdmf["flows"]) == (REACHABLE, 2)
    assert gdmf["evidence"] == ("2 flows from 2 devices, e.g. 10.0.0.1 -> 17.1.1.1 (gdmf.apple.com) SF; "
                                "1 blocked (reset)")
    albert = row(out, "albert.apple.com", 443)
    assert (albert["status"], albert["flows"]) == (BLOCKED, 1)
    assert albert["evidence"] == ("1 flow from 1 device, all blocked: no_response: "
                                  "10.0.0.2 -> 17.2.2.2 (albert.apple.com) S0")
    assert row(out, "ocsp.apple.com", 80)["status"] == NOT_SEEN
    assert (out["status"] == NOT_SEEN).sum() == len(out) - 3       # gdmf in two groups, and albert
    assert (out.loc[out["status"] == NOT_SEEN, "evidence"] == "").all()


def test_blocked_evidence_uses_the_blocked_tables_sentence() -> None:
    sentence = "TCP 443 to 17.2.2.2 (https): 3 SYNs over 3.0 s, no answer"
    out = check_requirements(
        flows(dict(server_name="albert.apple.com", blocked=True, block_reason="no_response", state="S0")),
        pd.DataFrame([dict(ts=1.0, flow_id=0, server_name="albert.apple.com", reason="no_response",
                           sentence=sentence)]))
    evidence = row(out, "albert.apple.com", 443)["evidence"]
    assert evidence == f"1 flow from 1 device, all blocked: no_response: {sentence}"


def test_courier_matches_by_sni_by_dns_name_and_by_service() -> None:
    out = check_requirements(flows(
        # the bare SNI is not *-courier.push.apple.com, but it is the courier
        dict(server_port=5223, server_name="courier.push.apple.com", service="apns-courier"),
        # a numbered DNS name on the 443 fallback
        dict(server_port=443, server_name="7-courier.push.apple.com", service="apns-courier", client_ip="10.0.0.2"),
        # no name at all: classified by address and port
        dict(server_port=5223, server_name=None, service="apns-courier", client_ip="10.0.0.3", blocked=True,
             block_reason="no_response", state="S0"),
        # the sandbox courier is *.push.apple.com's, not the production courier's
        dict(server_port=5223, server_name="courier.sandbox.push.apple.com", service="apns-courier"),
        # a provider on 2197 seen only by address
        dict(server_port=2197, server_name=None, service="apns-provider", client_ip="10.9.9.9"),
    ))
    c5223 = row(out, "*-courier.push.apple.com", 5223)
    assert (c5223["status"], c5223["flows"]) == (REACHABLE, 2)
    assert c5223["evidence"] == ("2 flows from 2 devices, e.g. 10.0.0.1 -> 17.57.146.20 (courier.push.apple.com) SF; "
                                 "1 blocked (no_response)")
    assert row(out, "*-courier.push.apple.com", 443)["flows"] == 1
    assert row(out, "*.push.apple.com", 5223)["flows"] == 2        # by name only: the bare SNI and sandbox
    provider = row(out, "api.push.apple.com", 2197)
    assert provider["status"] == REACHABLE
    assert provider["evidence"].startswith("1 flow from 1 client, e.g. 10.9.9.9 -> ")
    assert row(out, "api.push.apple.com", 443)["status"] == NOT_SEEN


def test_reachable_example_prefers_an_established_flow() -> None:
    out = check_requirements(flows(dict(server_name="albert.apple.com", state="RSTRH", server_ip="17.0.0.1"),
                                   dict(server_name="albert.apple.com", state="SF", server_ip="17.0.0.2")))
    assert row(out, "albert.apple.com", 443)["evidence"].endswith("-> 17.0.0.2 (albert.apple.com) SF")


def test_dns_failure_blocks_a_row_no_flow_reached() -> None:
    blocked = pd.DataFrame([
        dict(ts=5.0, flow_id=1, transport="udp", server_port=53, server_name="3-courier.push.apple.com",
             reason="dns_nxdomain", sentence="DNS 3-courier.push.apple.com: NXDOMAIN"),
        dict(ts=2.0, flow_id=2, transport="udp", server_port=53, server_name="mesu.apple.com",
             reason="dns_sinkhole", sentence="DNS mesu.apple.com: answered 0.0.0.0"),
        dict(ts=3.0, flow_id=3, transport="udp", server_port=53, server_name="courier.push.apple.com",
             reason="dns_nxdomain", sentence="bare name, asked by a test script"),
        dict(ts=1.0, flow_id=9, transport="tcp", server_port=443, server_name="gg.apple.com",
             reason="no_response", sentence="not a DNS failure"),
    ])
    out = check_requirements(flows(dict(server_name="mesu.apple.com", server_port=443)), blocked)
    for port in (5223, 443):
        courier = row(out, "*-courier.push.apple.com", port)
        assert (courier["status"], courier["flows"]) == (BLOCKED, 0)
        assert courier["evidence"] == ("DNS failure dns_nxdomain for 3-courier.push.apple.com: "
                                       "DNS 3-courier.push.apple.com: NXDOMAIN")
    assert row(out, "mesu.apple.com", 443)["status"] == REACHABLE      # a flow got there anyway
    mesu80 = row(out, "mesu.apple.com", 80)
    assert mesu80["status"] == BLOCKED and mesu80["evidence"].startswith("DNS failure dns_sinkhole for mesu")
    assert row(out, "gg.apple.com", 443)["status"] == NOT_SEEN         # only DNS failures count without flows


def test_no_flows_and_missing_columns() -> None:
    empty = flows().iloc[0:0]
    out = check_requirements(empty)
    assert (out["status"] == NOT_SEEN).all() and (out["flows"] == 0).all()
    with pytest.raises(ValueError, match="flows lacks columns: server_name"):
        check_requirements(empty.drop(columns="server_name"))


# ---------------------------------------------------------------- end to end

def check_sample(path: str) -> pd.DataFrame:
    result = apnstrace.analyze(SAMPLES / path)
    return check_requirements(result.flows, result.blocked)


def with_status(out: pd.DataFrame, status: str) -> set[tuple[str, int]]:
    return {(r.host, r.port) for r in out.itertuples() if r.status == status}


def test_site_categories_sample() -> None:
    out = check_sample("site_categories.pcap")
    # The provider script on 2197 offers only RC4/3DES and gets a fatal handshake_failure (truth.json).
    assert with_status(out, REACHABLE) == {
        ("*-courier.push.apple.com", 5223),      # SNI courier.push.apple.com, and 12-courier by DNS
        ("*.push.apple.com", 5223),
        ("*.push.apple.com", 443),               # api.push.apple.com
        ("api.push.apple.com", 443),
        ("deviceenrollment.apple.com", 443),
        ("iprofiles.apple.com", 443),
        ("swscan.apple.com", 443),
    }
    assert with_status(out, BLOCKED) == {("api.push.apple.com", 2197)}
    assert row(out, "*-courier.push.apple.com", 5223)["flows"] == 2
    assert row(out, "api.push.apple.com", 2197)["evidence"].startswith(
        "1 flow from 1 client, all blocked: tls_alert: TCP 2197 to 17.188.143.34")


def test_courier_push_sample() -> None:
    out = check_sample("courier_push.pcap")
    assert with_status(out, REACHABLE) == {("*-courier.push.apple.com", 5223), ("*.push.apple.com", 5223)}
    assert with_status(out, BLOCKED) == set()


def test_blocked_syn_sample_courier_falls_back_to_443() -> None:
    out = check_sample("blocked_syn.pcap")
    assert row(out, "*-courier.push.apple.com", 5223)["status"] == BLOCKED     # SYNs to 5223, no answer
    assert row(out, "*-courier.push.apple.com", 443)["status"] == REACHABLE    # the 443 fallback worked
