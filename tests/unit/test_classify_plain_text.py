"""_text's normalizing of printable-ASCII values in Python (classifier._plain) gives what Arrow's
Unicode functions give, and other values still go to Arrow."""
from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import apnstrace.classify.classifier as C

KINDS = ("name", "host", "path")
CASES = ["Example.COM.", " a.b ", "[::1]:80", "[fe80::1]", "host:8080", "host:", "a:b:1", ":80", "[x]:", "[]",
         "/p?q=1#f", "/p#x?y", "?", "", " ", "..", "A..", "x.:1", "[a]b", "[a]:1:2", "/a b"]


def _arrow(values: list[str], kind: str) -> list[str]:
    saved = C._plain
    C._plain = lambda distinct, kind: None
    try:
        text = C._text(pd.Series(pd.array(values, dtype="string")), len(values), kind)
    finally:
        C._plain = saved
    return [None if c < 0 else text.values[c] for c in text.codes.tolist()]


def _python(values: list[str], kind: str) -> list[str]:
    text = C._text(pd.Series(pd.array(values, dtype="string")), len(values), kind)
    assert isinstance(text.distinct, list)
    return [None if c < 0 else text.values[c] for c in text.codes.tolist()]


@pytest.mark.parametrize("kind", KINDS)
def test_cases(kind: str) -> None:
    assert _python(CASES, kind) == _arrow(CASES, kind)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12), min_size=1,
                max_size=20), st.sampled_from(KINDS))
def test_printable_ascii(values: list[str], kind: str) -> None:
    assert _python(values, kind) == _arrow(values, kind)


def test_other_values_go_to_arrow() -> None:
    for value in ("caf\u00e9", "a\tb", "x\x1c", "\u00a0y"):
        assert C._plain(pa.array([value, "plain"]), "name") is None
    assert C._plain(pa.array(["1.2.3.4"]), "address") is None
