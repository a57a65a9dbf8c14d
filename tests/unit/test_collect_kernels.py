"""The collector's small compiled picks (metadata/collect.py) against what they stand for.

_start_kind: the compiled peek at a payload's first 4 bytes against the numpy expression it
replaced. _quic_version_known: a payload it leaves out is one quic.initial_crypto would answer
None for, without reading further (so not handing it over changes nothing).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import mutated
from apnstrace.decode import quic
from apnstrace.decode.malformed import Malformed
from apnstrace.metadata import collect
from apnstrace.metadata.dns_feed import COMPILED

STARTS = [b"GET / HTTP/1.1\r\n", b"HTTP/1.1 200 OK\r\n", b"PROXY TCP4 1.2.3.4\r\n", b"\r\n\r\n\x00\r\nQUIT\n!",
          b"\x16\x03\x01\x02\x00\x01", b"\x15\x03\x03\x00\x02\x02\x30", b"\x16\x03\x05\x00", b"\x17\x03\x03\x00",
          b"POSX", b"\x16\x02\x01", b"", b"GE"]
# A QUIC v1 client Initial's first bytes (RFC 9001 A.2), and long headers of other versions.
QUIC_V1 = bytes.fromhex("c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11d242b123dc9bd8ba")
LONG_HEADERS = [QUIC_V1, bytes.fromhex("c0ff00001d08") + bytes(40), bytes.fromhex("c0faceb00208") + bytes(40),
                bytes.fromhex("c05130343308") + bytes(40), bytes.fromhex("c00000000008") + bytes(40),
                bytes.fromhex("c06b3343cf08") + bytes(40), bytes.fromhex("c01a2a3a4a08") + bytes(40)]


def _column(payloads: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    buf = np.frombuffer(b"".join(p + b"\xAA" * 8 for p in payloads) + b"\0" * 8, np.uint8)
    cap = np.array([len(p) for p in payloads], np.int64)
    off = np.concatenate([[0], np.cumsum(cap + 8)[:-1]]).astype(np.int64)
    return buf, off, cap


def _numpy_start_kind(buf, off, cap) -> np.ndarray:
    saved = collect.COMPILED
    collect.COMPILED = False
    try:
        return collect._start_kind(buf, off, cap)
    finally:
        collect.COMPILED = saved


@pytest.mark.skipif(not COMPILED, reason="compiled only with numba")
def test_start_kind_compiled_equals_numpy_on_every_kind_of_start() -> None:
    buf, off, cap = _column(STARTS)
    got = collect._start_kind(buf, off, cap)
    assert got.tolist() == _numpy_start_kind(buf, off, cap).tolist() == [2, 2, 3, 3, 1, 1, 0, 0, 0, 0, 0, 0]


@pytest.mark.skipif(not COMPILED, reason="compiled only with numba")
@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(mutated(STARTS[:8]), min_size=1, max_size=8))
def test_start_kind_compiled_equals_numpy_on_mutated_payloads(payloads: list[bytes]) -> None:
    buf, off, cap = _column(payloads)
    assert collect._start_kind(buf, off, cap).tolist() == _numpy_start_kind(buf, off, cap).tolist()


def _left_out_is_none(payloads: list[bytes]) -> None:
    buf, off, _ = _column(payloads)
    known = collect._quic_version_known(buf, off)
    for p, k in zip(payloads, known.tolist()):
        assert k == (len(p) >= 5 and p[1:5] != b"\0\0\0\0" and quic.is_supported_version(int.from_bytes(p[1:5], "big")))
        if not k:
            try:
                assert quic.initial_crypto(p) is None, p
            except Malformed:
                assert len(p) < 7, p           # only a header too short to hold a version raises first


def test_quic_payloads_left_out_are_ones_initial_crypto_reads_as_none() -> None:
    _left_out_is_none(LONG_HEADERS)
    buf, off, _ = _column(LONG_HEADERS)
    assert collect._quic_version_known(buf, off).tolist() == [True, True, True, False, False, True, True]


@settings(max_examples=400, deadline=None, derandomize=True)
@given(mutated(LONG_HEADERS))
def test_quic_payloads_left_out_are_none_on_mutated_headers(data: bytes) -> None:
    if len(data) >= 20 and data[0] & 0xC0 == 0xC0:        # what the collector considers at all
        _left_out_is_none([data])


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=12), st.data())
def test_text_column_compiled_equals_numpy_and_tls_text(ranges: list[bytes], data) -> None:
    from apnstrace.decode import tls
    from apnstrace.metadata import text_columns
    buf, off, cap = _column(ranges)
    valid = np.array([data.draw(st.booleans()) for _ in ranges])
    start = np.where(valid, off, -1)
    end = off + cap
    got = text_columns.text_column(buf, start, end)
    saved = text_columns.COMPILED
    text_columns.COMPILED = False
    try:
        plain = text_columns.text_column(buf, start, end)
    finally:
        text_columns.COMPILED = saved
    assert got.to_pylist() == plain.to_pylist() == [tls.text(r) if v else None for r, v in zip(ranges, valid)]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.one_of(st.none(), st.lists(st.sampled_from([b"h2", b"http/1.1", b"apns-security-v3", b"\x00\xff", b""]),
                                                max_size=3)), min_size=1, max_size=10))
def test_alpn_column_equals_alpn_offered(lists) -> None:
    from apnstrace.metadata import fast_streams
    raws = [b"".join(bytes([len(n)]) + n for n in names) if names is not None else b"" for names in lists]
    buf, off, cap = _column(raws)
    start = np.array([o if names is not None else -1 for o, names in zip(off.tolist(), lists)], np.int64)
    got = fast_streams._alpn_column(buf, start, off + cap).to_pylist()
    assert got == [fast_streams._alpn_offered(r) if names is not None else None for r, names in zip(raws, lists)]


@pytest.mark.skipif(not COMPILED, reason="compiled only with numba")
def test_alpn_column_past_the_table_of_known_lists(monkeypatch) -> None:
    # Lists are learnt into a table the compiled lookup searches; more distinct lists than it
    # holds are named per call instead: the same names either way, in every call.
    from apnstrace.metadata import fast_streams
    monkeypatch.setattr(fast_streams, "_LISTS", fast_streams._AlpnLists())
    monkeypatch.setattr(fast_streams, "_LISTS_MAX", 6)

    def check(raws: list[bytes], null: int) -> None:
        buf, off, cap = _column(raws)
        start = off.copy()
        start[null] = -1
        got = fast_streams._alpn_column(buf, start, off + cap).to_pylist()
        assert got == [fast_streams._alpn_offered(r) if j != null else None for j, r in enumerate(raws)]
    check([b"\x02h2", b"", b"\x02h2", b"\x08http/1.1"], 3)          # learnt
    assert len(fast_streams._LISTS.off) == 3
    for first in range(0, 40, 4):                                       # too many to learn
        check([bytes([4]) + b"p%03d" % ((first + j) % 9) for j in range(6)] + [b"", b"\x02h2"], 3)
    check([b"", b"\x02h2", b"\x02h2", b"\x03abc"], 3)
    assert len(fast_streams._LISTS.off) == 3


def _holdable_plain(k, tls, http, open_keys) -> list[bool]:
    """_hold's rule, one key at a time with Python sets."""
    t, h, o = (set(np.flatnonzero(tls).tolist()), set(np.flatnonzero(http).tolist()), set(open_keys.tolist()))
    return [((x ^ 1) in t or (x ^ 1) in h or (x ^ 1) in o) and x not in o and not (x in t and x in h)
            for x in k.tolist()]


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(st.integers(0, 24), max_size=60), st.lists(st.booleans(), max_size=24),
       st.lists(st.booleans(), max_size=24), st.lists(st.integers(0, 24), max_size=12, unique=True),
       st.integers(0, 1 << 20))
def test_holdable_is_the_rule_per_key(k, tls, http, open_keys, base) -> None:
    """Small keys (every case meets: a key open, its other direction read, both kinds read),
    shifted by an even base (a chunk's keys start far from 0; x ^ 1 stays the other direction)."""
    base *= 2
    k, open_keys = np.array(k, np.int64) + base, np.array(open_keys, np.int64) + base
    tls, http = np.concatenate([np.zeros(base, bool), tls]), np.concatenate([np.zeros(base, bool), http])
    want = _holdable_plain(k, tls, http, open_keys)
    assert collect._holdable(k, tls, http, open_keys).tolist() == want
    assert collect._holdable_numpy(k, tls, http, open_keys).tolist() == want
    assert collect._holdable(k, tls, http, open_keys).tolist() == want        # the shared table left all False


SEALED = [b"\x15\x03\x03\x00\x1a" + bytes(range(26)), b"\x15\x03\x01\x00\x02\x02\x28", b"\x15\x03\x03\x00\x02\x09\x09",
          b"\x15\x03\x03\x00\x00", b"\x15\x03\x03\x48\x01" + bytes(0x4801), b"\x15\x03\x03\x48\x00" + bytes(0x4800),
          b"\x15\x02\x03\x00\x01\x00", b"\x15\x03\x03\x00\x01\x00\x17\x03\x03\x00\x00", b"\x16\x03\x03\x00\x01\x00"]


@settings(max_examples=600, deadline=None, derandomize=True)
@given(mutated(SEALED))
def test_one_sealed_alert_is_an_empty_server_flight(data: bytes) -> None:
    """Where collect._one_sealed_alert answers for it, parse_server_flight reads the same
    empty flight (and raises nothing)."""
    from apnstrace.decode import tls
    if collect._one_sealed_alert(data):
        assert tls.parse_server_flight(data) == collect._EMPTY_FLIGHT


def test_one_sealed_alert_takes_the_usual_ones() -> None:
    assert [collect._one_sealed_alert(d) for d in SEALED] == [True, False, False, True, False, True, False, False,
                                                             False]


def _contiguous_signed(segments: dict[int, bytes], start: int) -> bytes:
    """collect._contiguous as it was: signed offsets, the negative ones skipped."""
    if len(segments) == 1 and start in segments:
        return segments[start]
    ahead = sorted((collect._signed(seq - start), data) for seq, data in segments.items())
    out = bytearray()
    for offset, data in ahead:
        if offset < 0:
            continue
        if offset > len(out):
            break
        out += data[len(out) - offset:]
    return bytes(out)


@settings(max_examples=800, deadline=None, derandomize=True)
@given(st.integers(0, (1 << 32) - 1), st.lists(st.tuples(st.integers(-40, 60), st.binary(min_size=0, max_size=30)),
                                                 max_size=8))
def test_contiguous_is_the_signed_walk(start: int, pieces: list[tuple[int, bytes]]) -> None:
    """Segments around the stream's start (before it, overlapping, past a gap), the seq
    wrapping around 2**32."""
    segments: dict[int, bytes] = {}
    for offset, data in pieces:
        segments.setdefault((start + offset) & 0xFFFFFFFF, data)
    assert collect._contiguous(segments, start) == _contiguous_signed(segments, start)


def _stream_start_plain(data: bytes):
    """collect._stream_start without its TLS fast path."""
    skip = 0
    if data.startswith(collect.PROXY_V1):
        end = data.find(b"\r\n")
        skip = end + 2 if 0 < end <= 107 else 0
    elif data.startswith(collect.PROXY_V2) and len(data) >= 16:
        skip = 16 + int.from_bytes(data[14:16], "big")
    rest = data[skip:]
    if rest[:4] in collect.HTTP_STARTS:
        return "http", skip
    if collect._tls_start(rest):
        return "tls", skip
    return None, 0


@settings(max_examples=1000, deadline=None, derandomize=True)
@given(mutated(STARTS[:-2] + [b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n\x16\x03\x01\x00\x05", b"\x15\x03", b"\x16\x04\x01"]))
def test_stream_start_is_the_plain_checks(data: bytes) -> None:
    assert collect._stream_start(data) == _stream_start_plain(data)
