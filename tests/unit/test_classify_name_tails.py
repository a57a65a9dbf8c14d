"""_Names.table: values whose last two labels end no bare-name suffix are not tried suffix by
suffix; the table stays what trying every suffix of every value gives."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import apnstrace.classify.classifier as C
from apnstrace.classify.rules import Category, Rule, compile_patterns

LABELS = ["apple", "com", "push", "courier", "a", "b-c", "net", "x1"]
label = st.sampled_from(LABELS)
name = st.lists(label, min_size=1, max_size=5).map(".".join)


def _rule(i: int, names: tuple[str, ...], exact: bool) -> Rule:
    return Rule(name=f"r{i}", category=Category.OTHER, service="auto", classified_by="name", names=names,
                exact_names=exact, names_re=compile_patterns(names, "names", exact=exact))


def _plain_table(names: C._Names, text: C._Text) -> np.ndarray:
    saved = names.tails
    names.tails = None                 # every suffix of every value tried
    names._tables.clear()
    try:
        return names.table(text).copy()
    finally:
        names.tails = saved
        names._tables.clear()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.lists(name, min_size=1, max_size=3), st.booleans()), min_size=1, max_size=4),
       st.lists(st.one_of(name, name.map(lambda v: v + "."), name.map(lambda v: "." + v),
                          name.map(lambda v: v.replace(".", "..", 1)), st.just("")), max_size=30))
def test_table_as_every_suffix_tried(rules: list, values: list) -> None:
    built = tuple(_rule(i, tuple(ns), exact) for i, (ns, exact) in enumerate(rules))
    names = C._Names(built, "names")
    text = C._Text(np.arange(len(values), dtype=np.int64), list(values))
    got = names.table(text)
    assert got.tolist() == _plain_table(names, text).tolist()


def test_one_label_suffix_tries_every_value() -> None:
    names = C._Names((_rule(0, ("com",), False), _rule(1, ("apple.com",), False)), "names")
    assert names.tails is None
    text = C._Text(np.arange(3, dtype=np.int64), ["x.apple.com", "com", "net"])
    assert names.table(text)[:, 0].tolist() == [True, True, False, False]
    assert names.table(text)[:, 1].tolist() == [True, False, False, False]


def test_tails_skip_values_that_cannot_match() -> None:
    names = C._Names((_rule(0, ("push.apple.com", "apple.com"), False),), "names")
    assert names.tails == {"apple.com"}
    values = ["courier.push.apple.com", "apple.com", "xapple.com", "apple.com.net", "push.apple.com.", "com"]
    text = C._Text(np.arange(len(values), dtype=np.int64), values)
    assert names.table(text)[:-1, 0].tolist() == [True, True, False, False, False, False]
