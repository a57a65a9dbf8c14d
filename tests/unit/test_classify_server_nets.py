"""server_nets (classify/server_nets.py): which rules' networks hold each distinct server address,
read in one compiled pass, agrees with the plain path (Arrow trim, dotted_quads, colon_hex,
inet_pton, a range test per network) on odd values too."""
from __future__ import annotations

import ipaddress

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import apnstrace.classify.classifier as C
from apnstrace.classify.rules import Category, Rule
from apnstrace.classify.server_nets import COMPILED

pytestmark = pytest.mark.skipif(not COMPILED, reason="the compiled pass runs only with numba")

NETS = ["17.0.0.0/8", "17.249.0.0/16", "10.0.0.0/24", "0.0.0.0/0", "2620:149::/32", "2620:149:a44::/48",
        "::/0", "::ffff:0:0/96", "fe80::/10", "192.168.1.7/32", "2001:db8::/127"]
VALUES = ["17.1.2.3", "17.249.9.9", "10.0.0.5", "10.0.1.5", "192.168.1.7", "1.2.3.256", "01.2.3.4", "1.2.3",
          "2620:149:a44::1", "2620:149::5", "fe80::1%en0", "::ffff:17.1.2.3", "::ffff:1.2.3.4", " 17.1.2.3",
          "17.1.2.3 ", "\t2620:149::1\n", "\u00a017.0.0.1", "2001:db8::1", "2001:db8::2", "", "x", "::", "::1",
          "1::2::3", "17.1.2.3.4", "FE80::A", "1.2.3.4\x1c", None,
          # led by a first group and a dot (left unread when no span comes near that group)
          "300.1.2.3", "9.9.9.9", "9.9.9.9 ", "9.x", "9.", "0017.1.2.3", "017.1.2.3", "10.0.0.255", "11.0.0.1",
          "255.255.255.255", "192.168.1.7x", "16.255.255.255", "18.0.0.0", "1.2.3.4%en0"]


def _rule(i: int, nets: list[str]) -> Rule:
    return Rule(name=f"r{i}", category=Category.OTHER, service="auto", classified_by="port",
                server_nets=tuple(nets), networks=tuple(ipaddress.ip_network(n) for n in nets))


def _both(values: list, rules: tuple[Rule, ...]):
    column = pd.Series(pd.array(values, dtype="string"))
    fast = C._ServerNets(column, len(values), rules)
    saved = C.NETS
    C.NETS = False
    try:
        plain = C._ServerNets(column, len(values), rules)
    finally:
        C.NETS = saved
    return fast, plain


def _check(values: list, rules: tuple[Rule, ...]) -> None:
    fast, plain = _both(values, rules)
    assert fast.mask is not None and plain.mask is None
    rows = np.arange(len(values))
    for index, rule in enumerate(rules):
        if rule.networks:
            assert fast.holds(index, rows).tolist() == plain.holds(index, rows).tolist(), rule.server_nets
    a, b = fast.code[fast.ip.factored()[1]][fast.ip.rows], plain.code[plain.ip.factored()[1]][plain.ip.rows]
    pairs = set(zip(a.tolist(), b.tolist()))          # the same partition of the rows
    assert len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))
    assert fast.count >= len(set(a.tolist())) and plain.count >= len(set(b.tolist()))


def test_cases() -> None:
    rules = tuple(_rule(i, NETS[i:i + 3]) for i in range(0, len(NETS), 2)) + (_rule(99, []),)
    _check(VALUES * 2, rules)
    _check(VALUES[::-1], rules[::-1])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(VALUES), st.ip_addresses().map(str),
                          st.text(alphabet="0123456789abcdefABCDEF:.% \t", max_size=20)), max_size=40),
       st.lists(st.lists(st.sampled_from(NETS), min_size=0, max_size=4), min_size=1, max_size=5))
def test_random_values_and_rules(values: list, nets: list) -> None:
    _check(values, tuple(_rule(i, n) for i, n in enumerate(nets)))


@pytest.mark.parametrize("nets", [["17.0.0.0/8"], ["17.249.0.0/16", "10.0.0.0/24"], ["192.168.1.7/32"],
                                  ["16.0.0.0/7", "2620:149::/32"], ["::ffff:0:0/96"], ["fe80::/10"]])
def test_first_groups_outside_every_span(nets: list) -> None:
    """Dotted quads whose first group no span comes near are left unread: the same as read."""
    values = [f"{d}.{d % 7}.1.{d % 3}" for d in range(0, 300, 3)] + [f"{d}.1.2" for d in range(0, 40)] + VALUES
    _check(values, (_rule(0, nets), _rule(1, ["10.0.0.0/24"])))


def test_many_classes_fall_back_to_factorize() -> None:
    values = [f"10.0.{k // 256}.{k % 256}" for k in range(300)]      # address k held by the rules of k's bits
    rules = tuple(_rule(j, [f"{v}/32" for k, v in enumerate(values) if k >> j & 1]) for j in range(9))
    _check(values + values[::7], rules)
