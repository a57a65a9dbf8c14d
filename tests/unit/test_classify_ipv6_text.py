"""colon_hex (classify/server_nets.py) reads exactly what socket.inet_pton reads, or leaves the value
to it: every value it accepts has inet_pton's number."""
from __future__ import annotations

import ipaddress
import socket

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apnstrace.classify.classifier import _addresses
from apnstrace.classify.server_nets import COMPILED, colon_hex

pytestmark = pytest.mark.skipif(not COMPILED, reason="the compiled pass runs only with numba")

CASES = ["::", "::1", "1::", "2001:db8::1", "2001:DB8::A", "fe80::1%en0", "::ffff:1.2.3.4", "1:2:3:4:5:6:7:8",
         "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8::", "1::2::3", ":::", ":1::", "1:", ":1", "1::2:",
         "12345::1", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "g::1", "", "0:0:0:0:0:0:0:0", "ffff:ffff:ffff:ffff:ffff:"
         "ffff:ffff:ffff", "1.2.3.4", " ::1", "::1 ", "0001:02:003::0004", "1:::2"]


def _pton(value: str) -> tuple[int, int] | None:
    try:
        packed = socket.inet_pton(socket.AF_INET6, value)
    except (OSError, ValueError):
        return None
    return int.from_bytes(packed[:8], "big"), int.from_bytes(packed[8:], "big")


def _check(values: list[str]) -> None:
    read, hi, lo = colon_hex(pa.array(values, pa.string()), np.ones(len(values), bool))
    for value, r, h, l in zip(values, read.tolist(), hi.tolist(), lo.tolist()):
        if r:
            assert _pton(value) == (h, l), value


def test_cases() -> None:
    _check(CASES)
    read, _, _ = colon_hex(pa.array(CASES, pa.string()), np.ones(len(CASES), bool))
    accepted = {v for v, r in zip(CASES, read.tolist()) if r}
    # the form inet_ntop writes is read here; dotted tails, zones and malformed values are not
    assert {"::", "::1", "1::", "2001:db8::1", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::"} <= accepted
    assert not accepted & {"fe80::1%en0", "::ffff:1.2.3.4", "1::2::3", ":::", "1:", "12345::1", "1:2:3:4:5:6:7:8::"}


def test_only_wanted_rows_are_read() -> None:
    read, _, _ = colon_hex(pa.array(["::1", "::2"], pa.large_string()), np.array([False, True]))
    assert read.tolist() == [False, True]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="0123456789abcdefABCDEF:.%", max_size=45), max_size=40))
def test_random_text_agrees_with_inet_pton(values: list[str]) -> None:
    _check(values)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, (1 << 128) - 1), min_size=1, max_size=40))
def test_inet_ntop_text_is_read(numbers: list[int]) -> None:
    values = [str(ipaddress.IPv6Address(n)) for n in numbers]
    values += [socket.inet_ntop(socket.AF_INET6, n.to_bytes(16, "big")) for n in numbers]
    _check(values)
    read, hi, lo = colon_hex(pa.array(values, pa.string()), np.ones(len(values), bool))
    plain = [i for i, v in enumerate(values) if "." not in v]
    assert read[plain].all()


def test_addresses_match_inet_pton_for_every_value() -> None:
    values = CASES + ["17.57.146.20", "2a01:b740::1", "fe80::1"]
    hi, lo, ok = _addresses(pa.array(values, pa.string()))
    for value, h, l, good in zip(values, hi.tolist(), lo.tolist(), ok.tolist()):
        if "." in value and ":" not in value:
            continue                       # dotted quads: test_classify_dotted_quads.py
        want = _pton(value.split("%", 1)[0])
        assert (want is not None) == good, value
        if good:
            assert (h, l) == want, value
