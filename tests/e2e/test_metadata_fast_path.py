"""The compiled fast paths (decode/*_fast.py) against the reference parsers, payload by payload.

Every payload of the nDPI corpus that the collector could hand to a parser (TCP payloads that
start like TLS or HTTP, UDP and TCP DNS) and hypothesis-mutated ones: whatever a scan answers
must be exactly what dns.parse_dns / tls.parse_client_hello / tls.parse_server_flight /
http.parse_request / http.parse_response give (or the Malformed reason they raise), and what it
does not answer goes to them. The collector-level equality (flows, DNS records, malformed
counts over the whole corpus, fast path on and off) is the last test.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from conftest import CORPUS, SAMPLE_CAPTURES, collect_metadata, metadata_fast_paths, mutated
from dns_scan_check import check_dns, payload_column as _column
from apnstrace.decode import decode_chunk, dns, http, tls
from apnstrace.decode import http_fast, tls_fast, tls_flight
from apnstrace.decode.malformed import Malformed
from apnstrace.errors import CaptureError
from apnstrace.metadata import dns_feed, fast_streams
from apnstrace.reader import iter_batches
from apnstrace.stats import RunStats

PCAPS = sorted((CORPUS / "pcap").iterdir()) if (CORPUS / "pcap").is_dir() else []
SETTINGS = settings(max_examples=600, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
pytestmark = pytest.mark.skipif(not dns_feed.COMPILED, reason="the fast paths run only compiled")


# ---------------------------------------------------------------- one payload, both ways

def _reference_tls(p: bytes):
    """What the collector's _tls takes from a one-payload stream, or None when it would wait."""
    try:
        if p[5:6] == b"\x01":
            needed = tls.needed_length(p)
            if needed is None or needed > len(p):
                return None
            hello = tls.parse_client_hello(p)
            return "hello", hello.sni, ",".join(hello.alpn) or None
        flight = tls.parse_server_flight(p)
    except Malformed as bad:
        return bad.reason
    complete = flight.alert is not None or flight.version == "TLS 1.3" or flight.cert_issuer is not None \
        or flight.hello_done
    if not complete:
        return None
    return "flight", flight.version if flight.hello_seen else None, flight.alpn, flight.alert, flight.cert_issuer


def check_tls(payloads: list[bytes]) -> int:
    buf, off, cap = _column(payloads)
    scan = tls_fast.scan_tls(buf, off, cap)
    read = 0
    for j, p in enumerate(payloads):
        kind = int(scan.kind[j])
        if kind == tls_fast.FALLBACK:
            continue
        read += 1
        ref = _reference_tls(p)
        if kind == tls_fast.HELLO:
            s0, s1, a0, a1 = scan.sni_start[j], scan.sni_end[j], scan.alpn_start[j], scan.alpn_end[j]
            sni = tls.text(buf[s0:s1].tobytes()) if s0 >= 0 else None
            alpn = fast_streams._alpn_offered(buf[a0:a1].tobytes()) if a0 >= 0 else None
            assert ref == ("hello", sni, alpn), p
        else:
            version, alert, a0 = int(scan.version[j]), int(scan.alert[j]), scan.alpn_start[j]
            assert ref == ("flight", tls.version_name(version) if version >= 0 else None,
                           tls.text(buf[a0:scan.alpn_end[j]].tobytes()) if a0 >= 0 else None,
                           tls.alert_name(alert >> 8, alert & 0xFF) if alert >= 0 else None, None), p
    return read


def _reference_flight(p: bytes):
    try:
        f = tls.parse_server_flight(p)
    except Malformed as bad:
        return bad.reason
    return f.hello_seen, f.hello_done, f.version, f.alpn, f.alert, f.cert_issuer


def check_flights(streams: list[bytes]) -> tuple[int, int]:
    """tls_flight.scan_flights (reassembled server streams) against parse_server_flight: how many
    it read, how many of those with a leaf certificate."""
    buf, off, cap = _column(streams)
    scan = tls_flight.scan_flights(buf, off, cap)
    read = 0
    for j, p in enumerate(streams):
        if scan.kind[j] == tls_flight.FALLBACK:
            continue
        read += 1
        version, alert, a0, leaf = int(scan.version[j]), int(scan.alert[j]), scan.alpn_start[j], scan.leaf_start[j]
        issuer = tls._x509_names(scan.hs[leaf:scan.leaf_end[j]].tobytes())[1] if leaf >= 0 else None
        assert _reference_flight(p) == (
            bool(scan.hello_seen[j]), bool(scan.hello_done[j]), tls.version_name(version) if version >= 0 else None,
            tls.text(scan.hs[a0:scan.alpn_end[j]].tobytes()) if a0 >= 0 else None,
            tls.alert_name(alert >> 8, alert & 0xFF) if alert >= 0 else None, issuer), p
    return read, int(((scan.kind == tls_flight.READ) & (scan.leaf_start >= 0)).sum())


def _reference_http(p: bytes):
    try:
        if p.startswith(b"HTTP/"):
            return "response", http.parse_response(p)
        if b"\r\n\r\n" not in p:
            return None
        r = http.parse_request(p)
    except Malformed as bad:
        return bad.reason
    return "request", r.method, r.host, r.path, r.user_agent


def check_http(payloads: list[bytes]) -> int:
    buf, off, cap = _column(payloads)
    scan = http_fast.scan_http(buf, off, cap)
    read = 0
    for j, p in enumerate(payloads):
        kind = int(scan.kind[j])
        if kind == http_fast.FALLBACK:
            continue
        read += 1
        ref = _reference_http(p)
        if kind == http_fast.RESPONSE:
            assert ref == ("response", int(scan.status[j])), p
            continue

        def text(a, b):
            return tls.text(buf[a:b].tobytes()) if a >= 0 else None
        assert ref == ("request", buf[off[j]:scan.method_end[j]].tobytes().decode(),
                       text(scan.host_start[j], scan.host_end[j]), text(scan.target_start[j], scan.target_end[j]),
                       text(scan.agent_start[j], scan.agent_end[j])), p
    return read


# ---------------------------------------------------------------- the corpus, payload by payload

def _payloads(path: Path) -> tuple[list[bytes], list[bytes], list[bytes], list[bytes]]:
    """(TLS-looking, HTTP-looking, DNS) payloads of one capture, and the first dozen TCP payloads
    of each flow direction that starts like a TLS server flight, joined in capture order."""
    tls_p, http_p, dns_p = [], [], []
    directions: dict[tuple, list[bytes]] = {}
    stats = RunStats()
    try:
        for raw in iter_batches(path, stats):
            pk, _ = decode_chunk(raw, stats)
            buf = np.asarray(raw.buf)
            for i in np.flatnonzero(pk.payload_cap > 0).tolist():
                p = buf[pk.payload_off[i]:pk.payload_off[i] + pk.payload_cap[i]].tobytes()
                port53 = 53 in (pk.port_a[i], pk.port_b[i]) or 5353 in (pk.port_a[i], pk.port_b[i])
                if pk.proto[i] == 17 and port53:
                    dns_p.append(p)
                elif pk.proto[i] == 6:
                    if port53 and len(p) > 2:
                        dns_p.append(p[2:])
                    if p[:1] in (b"\x16", b"\x15") and p[1:2] == b"\x03":
                        tls_p.append(p)
                    elif p[:4] in (b"GET ", b"POST", b"HEAD", b"PUT ", b"DELE", b"OPTI", b"PATC", b"CONN", b"HTTP"):
                        http_p.append(p)
                    flow = (pk.a_hi[i], pk.a_lo[i], pk.b_hi[i], pk.b_lo[i], pk.port_a[i], pk.port_b[i],
                            pk.direction[i])
                    got = directions.setdefault(flow, [])
                    if len(got) < 12:
                        got.append(p)
    except CaptureError:
        pass
    flights = [b"".join(got) for got in directions.values()
               if got[0][:1] in (b"\x16", b"\x15") and got[0][1:2] == b"\x03" and got[0][5:6] != b"\x01"]
    return tls_p, http_p, dns_p, flights


@pytest.mark.skipif(not PCAPS, reason="nDPI corpus not present")
def test_scans_equal_the_parsers_on_every_corpus_payload() -> None:
    read = {"tls": 0, "http": 0, "dns": 0, "flights": 0, "certificates": 0}
    for path in PCAPS:
        tls_p, http_p, dns_p, flights = _payloads(path)
        got = check_flights(flights + tls_p)
        read["flights"] += got[0]
        read["certificates"] += got[1]
        read["tls"] += check_tls(tls_p)
        read["http"] += check_http(http_p)
        read["dns"] += check_dns(dns_p)
    assert min(read.values()) > 100, read          # the fast paths did read the corpus


def _unit(name: str):
    import importlib.util
    path = Path(__file__).parents[1] / "unit" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_fast_seeds_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_TLS, _DNS, _HTTP = _unit("test_parse_tls"), _unit("test_parse_dns"), _unit("test_parse_http")
TLS_SEEDS = [_TLS.CODM_HELLO, _TLS.TLS13_SH, _TLS.SELFSIGNED_FLIGHT, _TLS.CURL_TO_LEAF, _TLS.ALERT, _TLS.CODM_SH]
# A query whose name parse_dns escapes: a dot, a backslash, a control byte and capitals in labels.
DNS_ESCAPED = bytes.fromhex("12340100000100000000000004") + b"a.\\\x01" + b"\x03WWW\x00" + bytes.fromhex("00010001")
# An mDNS announcement: no question, so each address is named by its (compressed, escaped) owner name.
MDNS_ANNOUNCE = (bytes.fromhex("000084000000000300000000")
                 + b"\x05MyMac\x05local\x00" + bytes.fromhex("0001800100000078" "0004" "c0a80102")
                 + bytes.fromhex("c00c" "001c800100000078" "0010" "fe800000000000000000000000000001")
                 + b"\x03a.\x01" + bytes.fromhex("c012" "0001800100000078" "0004" "0a000001"))
DNS_SEEDS = [_DNS.DNS_CAPTIVE, _DNS.DNS_NX, _DNS.DNS_TCP_Q[2:], _DNS.DNS_TCP_R[2:], DNS_ESCAPED, MDNS_ANNOUNCE]


def test_dns_scan_names_announced_addresses_by_their_owner_names() -> None:
    assert check_dns([MDNS_ANNOUNCE]) == 1
    names = [(a.value, a.name) for a in dns.parse_dns(MDNS_ANNOUNCE).answers]
    assert names == [("192.168.1.2", "mymac.local"), ("fe80::1", "mymac.local"), ("10.0.0.1", "a\\x2e\\x01.local")]
HTTP_SEEDS = [_HTTP.HTTP_GET, _HTTP.HTTP_200]


@SETTINGS
@given(mutated(TLS_SEEDS))
def test_tls_scan_equals_the_parsers_on_mutated_payloads(data: bytes) -> None:
    check_tls([data])


@SETTINGS
@given(mutated([_TLS.SELFSIGNED_FLIGHT, _TLS.CURL_TO_LEAF, _TLS.TLS13_SH, _TLS.ALERT, _TLS.CODM_SH]))
def test_flight_scan_equals_parse_server_flight_on_mutated_streams(data: bytes) -> None:
    check_flights([data])


@SETTINGS
@given(mutated(DNS_SEEDS))
def test_dns_scan_equals_parse_dns_on_mutated_payloads(data: bytes) -> None:
    check_dns([data])


@SETTINGS
@given(mutated(HTTP_SEEDS))
def test_http_scan_equals_the_parsers_on_mutated_payloads(data: bytes) -> None:
    check_http([data])


# ---------------------------------------------------------------- the collector, fast path on and off

def _collected(path: Path, fast: bool) -> tuple:
    with metadata_fast_paths(fast):
        _, collector, stats = collect_metadata(path, 65536, tolerate=True)   # small chunks: more chunk edges
    flows = {uid: dataclasses.asdict(meta) for uid, meta in collector.flows.items()}
    return flows, collector.dns, dict(stats.malformed)


@pytest.mark.skipif(not PCAPS, reason="nDPI corpus not present")
def test_collector_gives_the_same_with_and_without_the_fast_paths() -> None:
    for path in PCAPS + SAMPLE_CAPTURES:
        assert _collected(path, True) == _collected(path, False), path.name
