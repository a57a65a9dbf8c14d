"""Whatever bytes reach the TLS, DNS and HTTP parsers, they return a result or raise Malformed:
never another exception, never a hang. Inputs are random bytes and mutations of the real
payloads the unit tests embed; example counts are bounded so the file runs in a few seconds."""
from __future__ import annotations

import contextlib
import importlib.util
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import mutated, python_lines
import numpy as np

from apnstrace.decode import dns, http, quic, tls
from apnstrace.decode.dns_fast import scan_dns
from apnstrace.decode.http_fast import scan_http
from apnstrace.decode.malformed import Malformed
from apnstrace.decode.tls_fast import scan_tls

SETTINGS = settings(max_examples=1000, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _unit(name: str):
    """A unit test module, loaded by path, for the real payloads it embeds."""
    path = Path(__file__).parents[1] / "unit" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_seeds_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_TLS, _DNS, _HTTP = _unit("test_parse_tls"), _unit("test_parse_dns"), _unit("test_parse_http")
_QUIC = _unit("test_parse_quic")
QUIC_SEEDS = [_QUIC.QUIC_V2, _QUIC.QUIC_T51, _QUIC.PACKET]
TLS_SEEDS = [_TLS.CODM_HELLO, _TLS.TLS13_SH, _TLS.SELFSIGNED_FLIGHT, _TLS.CURL_TO_LEAF, _TLS.ALERT, _TLS.CODM_SH]
DNS_SEEDS = [_DNS.DNS_CAPTIVE, _DNS.DNS_NX, _DNS.DNS_TCP_Q[2:], _DNS.DNS_TCP_R[2:]]
HTTP_SEEDS = [_HTTP.HTTP_GET, _HTTP.HTTP_200]


def _quic(data: bytes) -> None:
    got = quic.initial_crypto(data)
    if got is not None:
        quic.client_hello_from_crypto(list(got.pieces))
    quic.client_hello_from_crypto([(int.from_bytes(data[:2], "big"), data[2:])])


def run_all(data: bytes) -> None:
    """Every parser on the same bytes: each may only return or raise Malformed. The compiled
    scans read the bytes as the reader lays out a chunk (zero padding after it) and never raise."""
    calls = (tls.parse_client_hello, tls.parse_server_flight, tls.first_alert, tls.records, tls.needed_length,
             dns.parse_dns, lambda d: dns.parse_dns(d, over_tcp=True), http.parse_request, http.parse_response,
             _quic)
    for call in calls:
        with contextlib.suppress(Malformed):
            call(data)
    buf = np.zeros(len(data) + 128, np.uint8)
    buf[: len(data)] = np.frombuffer(data, np.uint8)
    off, cap = np.zeros(1, np.int64), np.full(1, len(data), np.int64)
    for scan in (scan_tls, scan_dns, scan_http):
        scan(buf, off, cap)




@SETTINGS
@given(st.binary(max_size=1600))
def test_random_bytes(data: bytes) -> None:
    run_all(data)


@SETTINGS
@given(st.binary(max_size=300).map(lambda tail: b"\x16\x03\x01" + struct.pack("!H", len(tail)) + tail))
def test_random_bytes_inside_a_handshake_record(data: bytes) -> None:
    run_all(data)


@SETTINGS
@given(mutated(TLS_SEEDS))
def test_mutated_tls(data: bytes) -> None:
    run_all(data)


@SETTINGS
@given(mutated(DNS_SEEDS))
def test_mutated_dns(data: bytes) -> None:
    run_all(data)
    run_all(struct.pack("!H", len(data)) + data)


@SETTINGS
@given(mutated(HTTP_SEEDS))
def test_mutated_http(data: bytes) -> None:
    run_all(data)


@SETTINGS
@given(mutated(QUIC_SEEDS))
def test_mutated_quic(data: bytes) -> None:
    run_all(data)


@SETTINGS
@given(mutated([_QUIC.HELLO]), st.integers(0, 3))
def test_mutated_quic_crypto_pieces(hello: bytes, cuts: int) -> None:
    """A ClientHello in CRYPTO pieces, damaged and split out of order: a hello, None or Malformed."""
    step = max(1, len(hello) // (cuts + 1))
    pieces = [(at, hello[at: at + step]) for at in range(0, len(hello), step)][::-1]
    with contextlib.suppress(Malformed):
        quic.client_hello_from_crypto(pieces)


# Hostile inputs, each built at a size `k` (k=4: ~64 KiB, the most a reassembled stream holds
# per parse): the most parser work per byte the formats allow.
def _one_byte_records(k: int) -> bytes:
    """A handshake message announced at 128 KiB, then 1-byte records: the most records per byte."""
    head = b"".join(b"\x16\x03\x01\x00\x01" + bytes([b]) for b in b"\x01\x01\xff\xff")
    return head + b"\x16\x03\x01\x00\x01\x00" * (2_750 * k)


def _tiny_messages(k: int) -> bytes:
    """Records of 4-byte empty handshake messages."""
    return (b"\x16\x03\x03\x40\x00" + b"\x00\x00\x00\x00" * 4096) * k


def _dns_pointer_chains(k: int) -> bytes:
    """A chain of 31 pointers (in an unknown record's data), then as many answers as fit, each
    owner name entering the chain at its deep end: the most pointer jumps per byte."""
    chain = b"\x00" + b"".join(struct.pack("!H", 0xC000 | (23 if i == 0 else 24 + 2 * (i - 1))) for i in range(31))
    first = b"\x00" + struct.pack("!HHIH", 0xFF00, 1, 0, len(chain)) + chain
    deep = struct.pack("!H", 0xC000 | (24 + 2 * 30)) + struct.pack("!HHIH", 0xFF00, 1, 0, 0)
    return struct.pack("!HHHHHH", 1, 0x8180, 0, 65535, 0, 0) + first + deep * (1_350 * k)


def _http_many_lines(k: int) -> bytes:
    return b"GET / HTTP/1.1\r\n" + b"X:\r\n" * (4_000 * k) + b"a" * 1000


HOSTILE = {"tls_1_byte_records": _one_byte_records, "tls_tiny_messages": _tiny_messages,
           "dns_pointer_chains": _dns_pointer_chains, "http_many_lines": _http_many_lines,
           "zeros": lambda k: bytes(16_384 * k), "ones": lambda k: b"\xff" * (16_384 * k),
           "tls_headers_only": lambda k: b"\x16\x03\x03\x48\x00" * (3_250 * k)}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_inputs_take_linear_work(name: str) -> None:
    """Four times the input may cost at most about four times the work: a quadratic loop (a
    pointer chain followed per name, a rescan per record) would cost sixteen."""
    small, large = HOSTILE[name](1), HOSTILE[name](4)
    assert 3.5 * len(small) <= len(large) <= 4.1 * len(small)
    work_small, work_large = python_lines(run_all, small), python_lines(run_all, large)
    assert work_large <= 4.5 * max(work_small, 1_000), (name, work_small, work_large)
