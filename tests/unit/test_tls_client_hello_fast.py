"""tls.parse_client_hello_message (its cached ALPN and supported_versions lists, slot setters)
against the plain reading it replaced, written out here as the reference: the same ClientHello
or the same Malformed reason for any message, well formed or not; and quic's
client_hello_from_crypto one-piece shortcut against the reassembly it skips."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import mutated
from test_parse_quic import client_hello
from apnstrace.decode import quic, tls
from apnstrace.decode.malformed import Malformed
from apnstrace.decode.tls import MAX_CLIENT_HELLO, ClientHello, parse_client_hello_message

SETTINGS = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _outcome(read, *args):
    try:
        return "ok", read(*args)
    except Malformed as bad:
        return "malformed", bad.reason


def _plain(msg: bytes) -> ClientHello:
    """The reading before: the generator over extensions, each list read every time."""
    if len(msg) < 4 or 4 + (msg[1] << 16 | msg[2] << 8 | msg[3]) != len(msg):
        raise Malformed("tls_handshake_truncated" if len(msg) < 4 else "tls_client_hello_bad_length")
    if msg[0] != 1:
        raise Malformed("tls_not_client_hello")
    end, bad = len(msg), "tls_client_hello_bad_length"
    if end < 39:
        raise Malformed(bad)
    pos = 39 + msg[38]
    if pos + 2 > end:
        raise Malformed(bad)
    pos += 2 + (msg[pos] << 8 | msg[pos + 1])
    if pos + 1 > end:
        raise Malformed(bad)
    pos += 1 + msg[pos]
    if pos > end:
        raise Malformed(bad)
    sni, alpn, versions = None, (), ()
    for etype, start, stop in tls._extensions(msg, pos, end, bad):
        if etype == tls.EXT_SERVER_NAME:
            sni = tls._server_name(msg, start, stop)
        elif etype == tls.EXT_ALPN:
            alpn = tls._alpn_list(msg, start, stop)
        elif etype == tls.EXT_SUPPORTED_VERSIONS:
            versions = tls._offered_versions(msg, start, stop)
    return ClientHello(sni, alpn, tls.version_name(msg[4] << 8 | msg[5]), versions)


def _u16(n: int) -> bytes:
    return (n & 0xFFFF).to_bytes(2, "big")


@st.composite
def _extension(draw, sloppy: bool) -> bytes:
    off = (lambda: draw(st.sampled_from([0] * 8 + [1, -1, 300]))) if sloppy else (lambda: 0)
    kind = draw(st.sampled_from([0, 0, 16, 16, 43, 43, 21, 0x0A0A, 0x1000, 0x0010, 0x2B00, 0xFFFF]))
    if kind == 0 and draw(st.integers(0, 3)):                       # a server_name list
        names = draw(st.lists(st.tuples(st.sampled_from([0, 0, 1]), st.binary(max_size=12)), max_size=3))
        entries = b"".join(bytes([t]) + _u16(len(n) + off()) + n for t, n in names)
        body = _u16(len(entries) + off()) + entries
    elif kind == 16 and draw(st.integers(0, 3)):                    # a protocol name list
        protos = draw(st.lists(st.binary(max_size=6), max_size=4))
        entries = b"".join(bytes([(len(p) + off()) & 0xFF]) + p for p in protos)
        body = _u16(len(entries) + off()) + entries
    elif kind == 43 and draw(st.integers(0, 3)):                    # supported versions
        versions = draw(st.lists(st.sampled_from([0x0304, 0x0303, 0x7F1C, 0x0A0A, 0xFAFA, 0x1234]), max_size=4))
        entries = b"".join(_u16(v) for v in versions)
        body = bytes([(len(entries) + off()) & 0xFF]) + entries
    else:
        body = draw(st.binary(max_size=10))
    return _u16(kind) + _u16(max(len(body) + off(), 0)) + body


@st.composite
def _hello_message(draw) -> bytes:
    """ClientHello messages, well formed or (sloppy) with lengths a little off here and there."""
    sloppy = draw(st.booleans())
    off = (lambda: draw(st.sampled_from([0] * 8 + [1, -1, 200]))) if sloppy else (lambda: 0)
    body = _u16(draw(st.sampled_from([0x0303, 0x0301, 0x7F1C, 0x0A0A])))
    body += draw(st.binary(min_size=32, max_size=32))
    session = draw(st.binary(max_size=33))
    body += bytes([len(session)]) + session
    suites = draw(st.binary(max_size=8))
    body += _u16(len(suites) + off()) + suites
    body += draw(st.sampled_from([b"\x01\x00", b"\x02\x00\x01"] + ([b"\x01", b""] if sloppy else [])))
    if draw(st.integers(0, 5)):
        exts = b"".join(draw(st.lists(_extension(sloppy), max_size=8)))
        if sloppy:
            exts += draw(st.sampled_from([b""] * 6 + [b"\x00", b"\x00\x10", b"\x00\x00\x00", b"\x00\x2b\x00\x00"]))
        body += _u16(len(exts) + off()) + exts
    if sloppy:
        body += draw(st.sampled_from([b"", b"", b"", b"\x00", b"\x00\x00\x05"]))
    kind = draw(st.sampled_from([1] * 8 + ([2] if sloppy else [])))
    return bytes([kind]) + max(len(body) + off(), 0).to_bytes(3, "big") + body


def _check(msg: bytes, cold: bool) -> None:
    if cold:
        tls._ALPN_LISTS.clear()
        tls._VERSION_LISTS.clear()
    assert _outcome(parse_client_hello_message, msg) == _outcome(_plain, msg)
    assert _outcome(parse_client_hello_message, msg) == _outcome(_plain, msg)   # lists cached now


@SETTINGS
@given(_hello_message(), st.booleans())
def test_hello_reads_as_tls_does(msg: bytes, cold: bool) -> None:
    _check(msg, cold)


SEEDS = [client_hello("example.org", ("h3", "h3-29")), client_hello("x\x00y.example", ("h3",), pad=20)]


@SETTINGS
@given(mutated(SEEDS), st.booleans())
def test_damaged_real_shaped_hellos_read_as_tls_does(msg: bytes, cold: bool) -> None:
    _check(msg, cold)


def _by_reassembly(data: bytes):
    """What client_hello_from_crypto gives for one piece at offset 0, written out plainly."""
    if len(data) < 4:
        return "ok", None
    if data[0] != 1:
        return "malformed", "quic_crypto_not_client_hello"
    need = 4 + int.from_bytes(data[1:4], "big")
    if need > MAX_CLIENT_HELLO:
        return "malformed", "tls_handshake_too_long"
    if len(data) < need:
        return "ok", None
    return _outcome(_plain, data[:need])


@SETTINGS
@given(_hello_message(), st.binary(max_size=6), st.integers(0, 3), st.one_of(st.integers(0, 8), st.integers(0, 400)))
def test_one_piece_as_the_reassembly(msg: bytes, tail: bytes, offset: int, cut: int) -> None:
    data = (msg + tail)[:cut] if cut < 300 else msg + tail
    got = _outcome(quic.client_hello_from_crypto, [(offset, data)])
    assert got == (_by_reassembly(data) if offset == 0 else ("ok", None))
    if offset == 0 and len(data) > 1:                  # the same bytes in two pieces: the long way
        split = [(1, data[1:]), (0, data[:1])]
        assert _outcome(quic.client_hello_from_crypto, split) == got
