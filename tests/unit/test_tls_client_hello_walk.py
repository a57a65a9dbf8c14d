"""tls._client_hello walks the extensions inline: the same answer, and the same Malformed
reason, as the generator walk (tls._extensions) it replaced, on built and mutated hellos."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from conftest import mutated
from apnstrace.decode import tls
from apnstrace.decode.malformed import Malformed


def _reference(msg: bytes) -> tls.ClientHello:
    """The ClientHello loop as it was: tls._extensions' generator."""
    if msg[0] != tls.CLIENT_HELLO:
        raise Malformed("tls_not_client_hello")
    end = len(msg)
    bad = "tls_client_hello_bad_length"
    if end < 4 + 2 + 32 + 1:
        raise Malformed(bad)
    legacy = msg[4] << 8 | msg[5]
    pos = 38
    pos += 1 + msg[pos]
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
    return tls.ClientHello(sni, alpn, tls.version_name(legacy), versions)


def _ext(kind: int, body: bytes) -> bytes:
    return kind.to_bytes(2, "big") + len(body).to_bytes(2, "big") + body


def _hello(exts: bytes | None, session: bytes = b"") -> bytes:
    body = b"\x03\x03" + bytes(range(32)) + bytes([len(session)]) + session + b"\x00\x02\x13\x01" + b"\x01\x00"
    if exts is not None:
        body += len(exts).to_bytes(2, "big") + exts
    return b"\x01" + len(body).to_bytes(3, "big") + body


def _sni(*names: bytes, kind: int = 0) -> bytes:
    entries = b"".join(bytes([kind]) + len(n).to_bytes(2, "big") + n for n in names)
    return _ext(0, len(entries).to_bytes(2, "big") + entries)


_ALPN = _ext(16, b"\x00\x0c\x02h2\x08http/1.1")
SEEDS = [_hello(None), _hello(b""), _hello(_sni(b"example.org") + _ALPN + _ext(43, b"\x04\x1a\x1a\x03\x04")),
         _hello(_ext(0x0a0a, b"") + _sni(b"a.b", b"c.d") + _ext(43, b"\x06\x03\x04\x03\x03\x7f\x1c") + _ALPN),
         _hello(_ext(0, b"") + _ext(21, bytes(40)), session=bytes(32)), _hello(_sni(b"x\xffy") + _ext(16, b"\x00\x00")),
         _hello(_ext(43, b"\x02\x03\x04") + _sni(b"only.example"))]


def _answer(fn, msg: bytes):
    try:
        return fn(msg)
    except Malformed as bad:
        return bad.reason


def test_client_hello_on_the_seeds() -> None:
    for msg in SEEDS:
        assert _answer(tls._client_hello, msg) == _answer(_reference, msg)


@settings(max_examples=1500, deadline=None, derandomize=True)
@given(mutated(SEEDS))
def test_client_hello_on_mutated_hellos(msg: bytes) -> None:
    if msg:
        assert _answer(tls._client_hello, msg) == _answer(_reference, msg)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from([_sni(b"a.example"), _ALPN, _ext(43, b"\x02\x03\x04"), _ext(21, b"\x00"),
                                 _ext(0, b"\x00"), _ext(16, b"\x00\x03\x02h2"), b"\x00", b"\x00\x10\x00"]),
                max_size=6), st.integers(0, 8))
def test_client_hello_on_shuffled_extensions(parts: list[bytes], cut: int) -> None:
    msg = _hello(b"".join(parts))
    msg = msg[:len(msg) - cut] if cut else msg
    assert _answer(tls._client_hello, msg) == _answer(_reference, msg)
