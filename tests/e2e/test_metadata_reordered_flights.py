"""Server flights whose segments arrive out of order, next to their ClientHello in one chunk:
take_flights (metadata/flight_streams.py) reads them in arrays, and the collector must find
exactly what its Python stream path finds with the fast paths off."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from conftest import collect_metadata, keys_fed_to_python, metadata_fast_paths, sample_generator

# Per flow: the order the server flight's segments are sent in (indices into its segments).
ORDERS = ([1, 0], [1, 0, 1], [0, 1], [2, 0, 1], [1, 2, 0], [2, 1, 0, 2])


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> Path:
    gen = sample_generator()
    cap = gen.Capture("reordered_flights", [(gen.LT_ETHERNET, 6)])
    rng = cap.rng
    link = gen.Link("eth")
    t = 1.0
    for i, order in enumerate(ORDERS):
        fl = gen.TcpFlow(cap, "192.168.7.23", 50100 + i, "17.57.146.20", 5223, link, "reordered flight")
        t = fl.handshake(t, 0.02) + 0.001
        fl.send(t, True, gen.client_hello(rng, "courier.push.apple.com", ["apns-security-v3"], tls13=True))
        flight = gen.server_flight_tls12(rng, "apns-pack-v1:4096:4096", gen.courier_certs(rng))
        mss = -(-len(flight) // (max(order) + 1))
        pieces = [flight[j:j + mss] for j in range(0, len(flight), mss)]
        assert len(pieces) == max(order) + 1, len(pieces)
        base = fl.s.nxt
        t += 0.02
        for j, piece in enumerate(order):
            fl.seg(t + j * 0.0001, False, "A", pieces[piece], seq=(base + piece * mss) & 0xFFFFFFFF)
        fl.s.nxt = (base + len(flight)) & 0xFFFFFFFF
        fl.ack(t + 0.001, True)
        t += 0.05
    path = tmp_path_factory.mktemp("reordered") / "reordered_flights.pcap"
    path.write_bytes(cap.pcap_bytes())
    return path


def _collected(path: Path, fast: bool) -> tuple:
    """The finished flows' metadata, the malformed counts, and the keys that reached Python."""
    with metadata_fast_paths(fast), keys_fed_to_python() as fed:
        _, collector, stats = collect_metadata(path)
    return {uid: dataclasses.asdict(meta) for uid, meta in collector.flows.items()}, dict(stats.malformed), fed


def test_reordered_flights_give_what_the_stream_path_gives(capture: Path) -> None:
    *slow, slow_fed = _collected(capture, False)
    *fast, fast_fed = _collected(capture, True)
    assert fast == slow
    flows, malformed = fast
    assert len(flows) == len(ORDERS) and not malformed
    for meta in flows.values():
        assert meta["sni"] == "courier.push.apple.com"
        assert meta["tls_version"] == "TLS 1.2"
        assert meta["cert_issuer"] == "C=US,O=Apple Inc.,CN=Apple Server Authentication CA 1"
        assert meta["server_alpn"] == "apns-pack-v1:4096:4096"
        assert meta["server_ts"] is not None
    # Both directions reached the Python stream path with the fast paths off, and neither with
    # them on: take_fast reads the ClientHello (the flight's direction writes other fields),
    # take_flights the flight with the segments that overtook its start.
    server = {uid * 2 + 1 - meta["client_dir"] for uid, meta in flows.items()}
    assert server <= set(slow_fed) and {k ^ 1 for k in server} <= set(slow_fed)
    assert fast_fed == []
