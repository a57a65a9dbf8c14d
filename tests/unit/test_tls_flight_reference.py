"""tls_flight.scan_flights against parse_server_flight (tls.py, the reference), flight by flight.

The scan reads the handshake messages where they lie, across records of any size, copying only
the ServerHello's body and the leaf: whatever it reads plainly must be what the reference reads,
for real flights reframed into records of every size and for mutated ones.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import mutated
from apnstrace.decode import tls, tls_flight
from apnstrace.decode.malformed import Malformed
from apnstrace.metadata.dns_feed import COMPILED
from test_parse_tls import ALERT, CODM_SH, CURL_TO_LEAF, SELFSIGNED_FLIGHT, TLS13_SH, handshake_layer, record

SEEDS = [SELFSIGNED_FLIGHT, CURL_TO_LEAF, TLS13_SH, ALERT, CODM_SH]
pytestmark = pytest.mark.skipif(not COMPILED, reason="the scan runs only compiled")


def _reference(stream: bytes):
    try:
        f = tls.parse_server_flight(stream)
    except Malformed as bad:
        return bad.reason
    return f.hello_seen, f.hello_done, f.version, f.alpn, f.alert, f.cert_issuer


def _read(streams: list[bytes]) -> list:
    """Per stream: the scan's answers as the reference gives them, None when it falls back."""
    length = np.array([len(s) for s in streams], np.int64)
    buf = np.frombuffer(b"".join(streams) or b"\0", np.uint8)
    # hs filled with junk: the answers must come from what the scan wrote there
    hs = np.full(max(len(buf), 1), 0xEE, np.uint8)
    scan = tls_flight.scan_flights(buf, np.concatenate([[0], np.cumsum(length)[:-1]]).astype(np.int64), length, hs)
    out = []
    for j in range(len(streams)):
        if scan.kind[j] == tls_flight.FALLBACK:
            out.append(None)
            continue
        version, alert, a0, leaf = int(scan.version[j]), int(scan.alert[j]), scan.alpn_start[j], scan.leaf_start[j]
        out.append((bool(scan.hello_seen[j]), bool(scan.hello_done[j]),
                    tls.version_name(version) if version >= 0 else None,
                    tls.text(scan.hs[a0:scan.alpn_end[j]].tobytes()) if a0 >= 0 else None,
                    tls.alert_name(alert >> 8, alert & 0xFF) if alert >= 0 else None,
                    tls._x509_names(scan.hs[leaf:scan.leaf_end[j]].tobytes())[1] if leaf >= 0 else None))
    return out


def _reframed(stream: bytes, sizes: list[int]) -> bytes:
    """The stream's handshake layer in records of the given sizes (the last size repeated)."""
    layer, out, at, k = handshake_layer(stream), [], 0, 0
    while at < len(layer):
        size = sizes[min(k, len(sizes) - 1)]
        out.append(record(22, layer[at:at + size]))
        at, k = at + size, k + 1
    return b"".join(out)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6, 7, 10, 33, 100, 1000, 16384])
def test_flights_reframed_into_records_of_any_size_read_as_the_reference(size: int) -> None:
    streams = [_reframed(s, [size]) for s in (SELFSIGNED_FLIGHT, CURL_TO_LEAF, CODM_SH)]
    streams += [s[:cut] for s in streams for cut in (len(s) // 3, len(s) - 1)]
    got = _read(streams)
    assert got[0] is not None and got[0][5] is not None        # read, leaf named: the check has teeth
    for s, g in zip(streams, got):
        assert g is None or g == _reference(s), s


@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.one_of(mutated(SEEDS), st.builds(_reframed, st.sampled_from(SEEDS[:2] + SEEDS[4:]),
                                                    st.lists(st.integers(1, 400), min_size=1, max_size=12))),
                min_size=1, max_size=4))
def test_mutated_and_reframed_flights_read_as_the_reference(streams: list[bytes]) -> None:
    for s, g in zip(streams, _read(streams)):
        assert g is None or g == _reference(s), s
