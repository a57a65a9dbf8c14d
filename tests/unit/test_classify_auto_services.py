"""_Found._auto_services (Arrow calls) names each transport/port pair as the plain per-pair
reading does: "http", a [services] label, "<transport>/<port>", the transport, or "unknown"."""
from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from apnstrace.classify import builtin_rules
from apnstrace.classify.classifier import _match
from apnstrace.classify.rules import RuleSet

TRANSPORTS = ["tcp", "udp", "TCP ", " Udp", "", None, "sctp", "tcp."]
PORTS = [-1, 0, 53, 80, 443, 5223, 8080, 65535, 65536, 70000]
SERVICES = {("tcp", 80): "http", ("tcp", 443): "https", ("udp", 443): "quic", ("udp", 53): "dns",
            ("tcp", -1): "no-port", ("sctp", 65535): "edge", ("tcp", 70000): "far", ("", 53): "bare"}


def _plain(found, ruleset, auto):
    """The per-pair reading (as it was, value by value)."""
    f = found.flows
    rows = found.rows[auto]
    http = (f.text["http_host"].at(rows) >= 0) | (f.text["http_path"].at(rows) >= 0)
    span = max(65537, int(f.port.max()) + 2) if f.n else 65537
    key = np.where(http, -1, (f.transport.at(rows) + 1) * span + f.port[rows] + 1)
    codes, uniq = pd.factorize(key)
    labels = []
    for k in uniq.tolist():
        if k < 0:
            labels.append("http")
            continue
        t, port = divmod(int(k), span)
        t, port = t - 1, port - 1
        transport = f.transport.values[t] if t >= 0 else ""
        if (transport, port) in ruleset.services:
            labels.append(ruleset.services[(transport, port)])
        elif transport and port >= 0:
            labels.append(f"{transport}/{port}")
        else:
            labels.append(transport or "unknown")
    return labels, codes


@st.composite
def _flows(draw):
    n = draw(st.integers(1, 40))
    pick = lambda values: draw(st.lists(st.sampled_from(values), min_size=n, max_size=n))  # noqa: E731
    return pd.DataFrame({
        "transport": pd.array(pick(TRANSPORTS), dtype="string"),
        "server_ip": ["192.0.2.1"] * n,
        "server_port": np.array(pick(PORTS), np.int32),
        "http_host": pd.array(pick([None, None, "example.com", ""]), dtype="string"),
        "http_path": pd.array(pick([None, None, None, "/x"]), dtype="string"),
    })


@settings(max_examples=200, deadline=None)
@given(_flows(), st.booleans())
def test_auto_services_as_read_pair_by_pair(flows, extra) -> None:
    rules = builtin_rules()
    ruleset = RuleSet(rules.rules, rules.networks, {**rules.services, **SERVICES} if extra else rules.services)
    found = _match(flows, ruleset)
    auto = np.ones(len(found.rows), bool)
    labels, codes = found._auto_services(ruleset, auto)
    want_labels, want_codes = _plain(found, ruleset, auto)
    assert labels.to_pylist() == want_labels
    assert np.array_equal(codes, want_codes)
