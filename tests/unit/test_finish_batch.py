"""finish() writes the flight rows of streams fed nothing since their last write as one batch:
the log must resolve exactly as with _final_parse per stream (the plain reference)."""
from __future__ import annotations

import copy

import numpy as np
from hypothesis import given, settings, strategies as st

from apnstrace.metadata.collect import MetadataCollector, _Stream
from apnstrace.stats import RunStats

PAYLOADS = [
    b"\x15\x03\x03\x00\x02\x02\x30",                          # a plain alert record
    b"\x15\x03\x03\x00\x1a" + bytes(26),                      # a sealed alert
    b"\x16\x03\x03\x00\x04\x02\x00\x00\x00",                  # a cut ServerHello
    b"\x16\x03\x01\x00\x08\x01\x00\x00\x04\x03\x03",          # a cut ClientHello
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: b.example\r\nUser-Agent: c\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: y",
]
TEXT = st.one_of(st.none(), st.sampled_from(["TLS 1.2", "TLS 1.3", "h2", "unknown_ca", "Issuer A", "é"]))
WRITTEN = st.one_of(st.none(), st.tuples(st.one_of(st.none(), st.floats(0, 1e9)), TEXT, TEXT, TEXT, TEXT))
STREAM = st.tuples(st.integers(0, 30), st.sampled_from(["tls", "http"]), st.floats(0, 1e9), WRITTEN,
                   st.integers(0, 12), st.booleans(),
                   st.one_of(st.sampled_from(PAYLOADS), st.binary(max_size=40).map(lambda b: b"\x16\x03" + b)))


def _collector(spec) -> MetadataCollector:
    col = MetadataCollector(RunStats())
    col.log.row("touch", 999)                 # rows written before finish keep their place
    for k, kind, ts, written, seen, same, data in spec:
        s = _Stream(kind, ts, 100, {100: data}, seen=seen, held=len(data))
        if written is not None:
            s.kind, s.written, s.written_seen = "tls", written, seen if same else seen + 1
        col.streams[k] = s
    return col


def _state(col: MetadataCollector):
    t = col.log.resolve()
    return (t.uid.tolist(), {n: t.column(n).to_pylist() for n in t.sources},
            {kind: np.flatnonzero(ks.bits).tolist() for kind, ks in col.done.items()},
            dict(col.stats.malformed), list(col.streams), [int(h) for h in col.hellos])


@settings(max_examples=300, deadline=None)
@given(st.lists(STREAM, max_size=25, unique_by=lambda s: s[0]))
def test_finish_resolves_as_final_parse_per_stream(spec) -> None:
    col = _collector(spec)
    ref = copy.deepcopy(col)
    for k in list(ref.streams):
        ref._final_parse(k)
    col.finish()
    assert _state(col) == _state(ref)
    col.log.row("touch", 998)                 # and writes after it come after all of its
    ref.log.row("touch", 998)
    assert _state(col) == _state(ref)
