"""The stream path's shortcuts (metadata/collect.py) against the checks they skip.

_feed calls _stream_start only for payloads whose first byte is in _TLS_FIRST or _OTHER_FIRST:
any other payload must be one _stream_start answers (None, 0) for.
"""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from conftest import mutated
from apnstrace.metadata import collect

STARTS = [b"GET / HTTP/1.1\r\n", b"HTTP/1.1 200 OK\r\n", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nGET / HTTP/1.1\r\n",
          b"\r\n\r\n\x00\r\nQUIT\n!\x00\x00\x00\x16\x03\x01\x00\x05", b"\x16\x03\x01\x02\x00\x01",
          b"\x15\x03\x03\x00\x02\x02\x30", b"OPTIONS * HTTP/1.1\r\n", b"DELETE /x HTTP/1.1\r\n", b"PUT /x HTTP/1.0\r\n",
          b"PATCH /x HTTP/1.1\r\n", b"HEAD / HTTP/1.1\r\n", b"CONNECT a:443 HTTP/1.1\r\n", b"POST / HTTP/1.1\r\n",
          b"\x17\x03\x03\x00\x10", b""]


def _starts_something(data: bytes) -> bool:
    return collect._stream_start(data) != (None, 0)


@settings(max_examples=3000, deadline=None, derandomize=True)
@given(st.one_of(mutated(STARTS), st.binary(max_size=24)))
def test_other_first_bytes_start_nothing(data: bytes) -> None:
    first = data[:1]
    if first not in collect._TLS_FIRST and first not in collect._OTHER_FIRST:
        assert not _starts_something(data)


def test_every_start_kind_is_reachable() -> None:
    """Each start the seeds hold passes the first-byte filter (the filter is not empty-handed)."""
    for data in STARTS:
        if _starts_something(data):
            assert data[:1] in collect._TLS_FIRST or data[:1] in collect._OTHER_FIRST
