"""dotted_quads (classify/server_nets.py) reads IPv4 addresses as the Arrow expression it
replaced: the regex ^\\d{1,3}(\\.\\d{1,3}){3}$, a split on the dots and a cast of the groups."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apnstrace.classify.classifier import _addresses
from apnstrace.classify.server_nets import COMPILED, dotted_quads

pytestmark = pytest.mark.skipif(not COMPILED, reason="the compiled pass runs only with numba")

CASES = ["17.57.146.20", "0.0.0.0", "255.255.255.255", "256.1.1.1", "999.999.999.999", "1.2.3", "1.2.3.4.5",
         "01.002.3.4", "1..2.3", ".1.2.3", "1.2.3.", "1.2.3.4\n", " 1.2.3.4", "1.2.3.4 ", "1234.1.1.1", "",
         "::ffff:1.2.3.4", "2001:db8::1", "fe80::1%en0", "a.b.c.d", "1.2.3.\u0664", "\u0661.2.3.4", "1.2.3.45"]


def _reference(values: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    text = pa.array(values, pa.string())
    quad = pc.match_substring_regex(text, r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$").to_numpy(zero_copy_only=False)
    word = np.zeros(len(values), np.uint64)
    good = np.zeros(len(values), bool)
    if quad.any():
        octets = pc.list_flatten(pc.split_pattern(text.filter(pa.array(quad)), ".")).cast(pa.uint64())
        octets = octets.to_numpy().reshape(-1, 4)
        word[quad] = (octets[:, 0] << 24) | (octets[:, 1] << 16) | (octets[:, 2] << 8) | octets[:, 3]
        good[quad] = (octets <= 255).all(axis=1)
    return quad, word, good


def _check(values: list[str]) -> None:
    quad, word, good = dotted_quads(pa.array(values, pa.string()))
    r_quad, r_word, r_good = _reference(values)
    assert quad.tolist() == r_quad.tolist()
    assert word[good].tolist() == r_word[good].tolist()          # a group past 255: no word
    assert good[quad].tolist() == r_good[quad].tolist()


def test_reads_dotted_quads_as_the_arrow_expression() -> None:
    _check(CASES)
    sliced = pa.array(["x"] + CASES, pa.string()).slice(1)          # an offset into the buffers
    quad, word, _ = dotted_quads(sliced)
    assert quad.tolist() == _reference(CASES)[0].tolist()
    assert dotted_quads(pa.array(CASES, pa.large_string()))[0].tolist() == quad.tolist()


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.text(alphabet="0123456789.:af% \n\u0661", max_size=17), max_size=12))
def test_reads_any_text_as_the_arrow_expression(values: list[str]) -> None:
    _check(values)


def test_addresses_are_numbers_in_the_ipv4_mapped_space() -> None:
    hi, lo, ok = _addresses(pa.array(["17.57.146.20", "256.0.0.1", "2001:db8::1", "nonsense"], pa.string()))
    assert ok.tolist() == [True, False, True, False]
    assert (int(hi[0]), int(lo[0])) == (0, (0xFFFF << 32) | 0x11399214)
    assert (int(hi[2]), int(lo[2])) == (0x20010DB800000000, 1)
