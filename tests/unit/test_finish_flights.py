"""collect.finish reads the server flights still open at the end all at once (flight_streams.
read_flights, compiled) and the rest in turn: the same metadata, malformed counts and log order
as parsing every open stream in Python, for flights the scan reads and those it leaves to the
reference (an encrypted alert, a malformed record), next to ClientHello and HTTP streams."""
from __future__ import annotations

import dataclasses

import pytest

from conftest import metadata_fast_paths
from test_parse_tls import (ALERT, CODM_HELLO, CODM_SH, CURL_TO_LEAF, ENCRYPTED_ALERT, SELF_NAME, SELFSIGNED_FLIGHT,
                            TLS13_SH)
from apnstrace.metadata import flight_streams
from apnstrace.metadata.collect import MetadataCollector, _Stream
from apnstrace.stats import RunStats

pytestmark = pytest.mark.skipif(not flight_streams.COMPILED, reason="compiled only with numba")

# (key, kind, segments at offsets from the stream's start): both directions of some flows
STREAMS = [
    (10, "tls", [CODM_HELLO[:300]]),                    # a ClientHello cut short (Python)
    (11, "tls", [CODM_SH]),                             # its server's flight
    (12, "tls", [SELFSIGNED_FLIGHT[:200], SELFSIGNED_FLIGHT[200:]]),
    (15, "tls", [ENCRYPTED_ALERT]),                     # nothing the scan reads: the reference
    (17, "tls", [CURL_TO_LEAF[:-1]]),
    (19, "tls", [TLS13_SH]),
    (21, "tls", [ALERT]),
    (23, "tls", [b"\x16\x03\x03\x00\x05\x02\x00\x00\x01\x00"]),   # a ServerHello too short: malformed
    (25, "tls", [b"\x15\x03\x03\x00"]),
    (26, "http", [b"GET /x HTTP/1.1\r\nHost: a\r\n"]),    # a head never completed (Python)
    (27, "tls", [SELFSIGNED_FLIGHT[:-40]]),
    (29, "http", [b"HTTP/1.1 200 OK\r\n"]),
]


def _finished(compiled: bool):
    stats = RunStats()
    collector = MetadataCollector(stats)
    collector.log.row("touch", 0)                     # writes before: the log's numbering goes on
    for key, kind, pieces in STREAMS:
        stream = collector.streams[key] = _Stream(kind, 1.0 + key, 1000)
        at = 1000
        for piece in pieces:
            stream.segments[at] = piece
            at += len(piece)
    with metadata_fast_paths(compiled):
        collector.finish()
    return ({u: dataclasses.asdict(m) for u, m in collector.flows.items()}, dict(stats.malformed),
            collector.log.seq, collector.streams, sorted(k for k, _, _ in STREAMS if k in collector.done["tls"]))


def test_finish_reads_open_flights_as_the_python_path_does(monkeypatch) -> None:
    left_to_python: list = []
    read = flight_streams.read_flights

    def spy(collector, flights):
        rest = read(collector, flights)
        left_to_python.extend(f[0] for f in rest)
        return rest
    monkeypatch.setattr("apnstrace.metadata.collect.read_flights", spy)
    got = _finished(True)
    assert sorted(left_to_python) == [15, 23, 25]    # the rest of the flights were read compiled
    assert got == _finished(False)
    flows, malformed, _, still_open, _ = got
    assert not still_open
    assert flows[6]["cert_issuer"] == SELF_NAME and flows[9]["tls_version"] == "TLS 1.3"
    assert flows[10]["tls_alert"] == "fatal/protocol_version" and flows[5]["server_alpn"] == "http/1.1"
    assert malformed == {"tls_handshake_truncated": 1, "tls_server_hello_bad_length": 1}
