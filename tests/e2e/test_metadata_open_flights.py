"""Server flights the stream path leaves open at the end of a chunk (the rest of the flight is
in a later chunk, or never comes): take_flights (metadata/flight_streams.py) writes what the
stream path writes and opens the same stream, so later chunks and finish() read on exactly as
the Python stream path does with the fast paths off."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from conftest import collect_metadata, keys_fed_to_python, metadata_fast_paths, sample_generator

# Per flow: how many of the server flight's segments are sent (the rest never comes), and
# whether a pause makes the ones after the first land in later chunks.
CUTS = ((1, False), (2, False), (1, True), (2, True), (3, True), (4, True), (4, False))


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> Path:
    gen = sample_generator()
    cap = gen.Capture("open_flights", [(gen.LT_ETHERNET, 6)])
    rng = cap.rng
    link = gen.Link("eth")
    t = 1.0
    for i, (sent, later) in enumerate(CUTS):
        fl = gen.TcpFlow(cap, "192.168.7.23", 50200 + i, "17.57.146.20", 5223, link, "open flight")
        t = fl.handshake(t, 0.02) + 0.001
        fl.send(t, True, gen.client_hello(rng, "courier.push.apple.com", ["apns-security-v3"], tls13=False))
        flight = gen.server_flight_tls12(rng, "apns-pack-v1:4096:4096", gen.courier_certs(rng))
        # the first piece: the ServerHello and a little of the certificate chain; then 200 bytes each
        hello_end = 5 + 4 + int.from_bytes(flight[6:9], "big") + 40
        pieces = [flight[:hello_end]] + [flight[j:j + 200] for j in range(hello_end, len(flight), 200)]
        assert len(pieces) > 4
        t += 0.02
        for j, piece in enumerate(pieces[:sent]):
            if later and j == 1:
                # other flows' packets in between push the rest into later chunks
                for n in range(40):
                    other = gen.TcpFlow(cap, "192.168.7.24", 40000 + 100 * i + n, "10.0.0.9", 80, link, "filler")
                    t = other.handshake(t, 0.001) + 0.001
                    other.send(t, True, b"x" * 1200)
            fl.send(t + j * 0.0001, False, piece)
        t += 0.05
    path = tmp_path_factory.mktemp("open") / "open_flights.pcap"
    path.write_bytes(cap.pcap_bytes())
    return path


def _collected(path: Path, fast: bool, chunk_bytes: int) -> tuple:
    """Per chunk: the collector's open streams (their whole state); then the finished flows."""
    states: list = []
    with metadata_fast_paths(fast):
        _, collector, stats = collect_metadata(path, chunk_bytes, after_chunk=lambda c: states.append(
            {k: dataclasses.asdict(s) for k, s in c.streams.items()}))
    flows = {uid: dataclasses.asdict(meta) for uid, meta in collector.flows.items()}
    return states, flows, dict(stats.malformed), dict(stats.limits)


@pytest.mark.parametrize("chunk_bytes", [1 << 14, 1 << 16, 32 << 20])
def test_open_flights_give_what_the_stream_path_gives(capture: Path, chunk_bytes: int) -> None:
    slow = _collected(capture, False, chunk_bytes)
    fast = _collected(capture, True, chunk_bytes)
    assert fast == slow
    states, flows, malformed, _ = fast
    assert not malformed
    # the cut flights stay open until finish(): the stream path held them over chunks
    assert any(any(s["kind"] == "tls" for s in chunk.values()) for chunk in states)
    apns = [m for m in flows.values() if m["sni"] == "courier.push.apple.com"]
    assert len(apns) == len(CUTS)
    assert all(m["tls_version"] == "TLS 1.2" and m["server_ts"] is not None for m in apns)


def test_take_flights_opens_the_streams_itself(capture: Path) -> None:
    """With one chunk, the incomplete flights never reach the Python feed: take_flights opens them."""
    with keys_fed_to_python() as fed:
        states, flows, _, _ = _collected(capture, True, 32 << 20)
    open_keys = set(states[-1])
    assert open_keys and not open_keys & set(fed)


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("chunk_bytes", [1 << 14, 32 << 20])
def test_finish_writes_what_parsing_the_held_flights_again_writes(capture: Path, fast: bool,
                                                                 chunk_bytes: int) -> None:
    """finish() writes a flight stream's last row again, unparsed, when nothing was fed to it
    since (collect._Stream.written): the same log as reassembling and parsing its bytes."""
    import copy
    last: list = []
    with metadata_fast_paths(fast):
        collect_metadata(capture, chunk_bytes, after_chunk=lambda c: last.__setitem__(slice(None), [copy.deepcopy(c)]))
    kept, parsed = copy.deepcopy(last[0]), copy.deepcopy(last[0])
    assert any(s.written is not None and s.written_seen == s.seen for s in kept.streams.values())
    for stream in parsed.streams.values():
        stream.written = None                  # parse every held stream again, as before
    kept.finish()
    parsed.finish()
    assert not kept.streams and not parsed.streams
    # the same writes resolved (finish writes the unparsed rows as one batch, not as rows)
    k_table, p_table = kept.log.resolve(), parsed.log.resolve()
    assert k_table.uid.tolist() == p_table.uid.tolist()
    assert {n: k_table.column(n).to_pylist() for n in k_table.sources} == \
        {n: p_table.column(n).to_pylist() for n in p_table.sources}
    assert {u: dataclasses.asdict(m) for u, m in kept.flows.items()} == \
        {u: dataclasses.asdict(m) for u, m in parsed.flows.items()}
    assert dict(kept.stats.malformed) == dict(parsed.stats.malformed)
