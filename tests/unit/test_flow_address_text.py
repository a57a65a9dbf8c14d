"""The flows' address text (flows/finalize.address_codes), written by the compiled pass that also
writes DNS answers (decode/address_text.py): IPv4 (held mapped) as dotted quads, IPv6 as inet_ntop."""
from __future__ import annotations

import socket

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from apnstrace.flows.finalize import address_codes

V4_MAPPED = 0xFFFF << 32


def _halves(raw: bytes) -> tuple[int, int]:
    return int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:], "big")


def _expected(hi: int, lo: int) -> str:
    if hi == 0 and lo >> 32 == 0xFFFF:
        return socket.inet_ntoa((lo & 0xFFFFFFFF).to_bytes(4, "big"))
    return socket.inet_ntop(socket.AF_INET6, hi.to_bytes(8, "big") + lo.to_bytes(8, "big"))


group = st.sampled_from([0, 0, 0, 1, 0xFFFF]) | st.integers(0, 0xFFFF)
ipv6 = st.lists(group, min_size=8, max_size=8).map(lambda g: _halves(b"".join(x.to_bytes(2, "big") for x in g)))
ipv4 = st.integers(0, 2**32 - 1).map(lambda a: (0, V4_MAPPED | a))


@settings(max_examples=200, deadline=None)
@given(st.lists(ipv4 | ipv6, min_size=1, max_size=40))
def test_each_address_text_is_inet_ntop(addresses) -> None:
    hi = np.array([h for h, _ in addresses], np.uint64)
    lo = np.array([l for _, l in addresses], np.uint64)
    codes, text = address_codes(hi, lo)
    assert str(text.type) == "string"
    assert text.to_numpy(zero_copy_only=False)[codes].tolist() == [_expected(h, l) for h, l in addresses]
    assert len(set(text.to_pylist())) == len(text)          # each distinct address once


def test_ipv4_only_and_empty() -> None:
    codes, text = address_codes(np.zeros(3, np.uint64), np.array([V4_MAPPED | 0x11223344, V4_MAPPED, V4_MAPPED | 0x11223344], np.uint64))
    assert text.to_numpy(zero_copy_only=False)[codes].tolist() == ["17.34.51.68", "0.0.0.0", "17.34.51.68"]
    codes, text = address_codes(np.empty(0, np.uint64), np.empty(0, np.uint64))
    assert len(codes) == 0 and len(text) == 0
