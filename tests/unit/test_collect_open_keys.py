"""MetadataCollector.add's bookkeeping of open streams without snapshots: the keys it hands on
as open before the chunk (kept from the last chunk's end when no stream closed since) and the
streams its first _feed opened (read on in the chunk), against snapshots of `streams` taken at
each step, over corpus captures cut into small chunks, with flows finished between chunks."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import CORPUS
from apnstrace.decode import decode_chunk
from apnstrace.flows import FlowTable
from apnstrace.metadata import MetadataCollector, collect
from apnstrace.metadata.dns_feed import COMPILED
from apnstrace.options import FlowOptions
from apnstrace.reader import iter_batches
from apnstrace.stats import RunStats

FILES = sorted(p for p in (CORPUS / "pcap").glob("*") if p.stat().st_size < 4 << 20)[::6]


class _Spy:
    """Checks each add against snapshots of the collector's streams."""

    def __init__(self, monkeypatch, col: MetadataCollector) -> None:
        self.col, self.checked = col, {"pending": 0, "opened": 0}
        self.feeds = 0
        self.want_opened: set | None = None
        self.read_on_called = False
        for name in ("pick_keyed", "take_flights", "_read_on"):
            monkeypatch.setattr(collect, name, getattr(self, name.lstrip("_")).__get__(self)(getattr(collect, name)))
        feed = MetadataCollector._feed

        def spy_feed(c, *a, **k):
            self.feeds += 1
            feed(c, *a, **k)
            if self.feeds == 1:           # the chunk's first _feed: what it opened
                self.want_opened = set(c.streams) - self.fed_before
        monkeypatch.setattr(MetadataCollector, "_feed", spy_feed)

    def pick_keyed(self, f):
        def spy(buf, pk, uid, rank, limits, words, plan):
            want = np.fromiter(self.col.streams.keys(), np.int64, len(self.col.streams))
            assert plan[0].tolist() == want.tolist()
            self.checked["pending"] += 1
            return f(buf, pk, uid, rank, limits, words, plan)
        return spy

    def take_flights(self, f):
        def spy(*a, **k):
            out = f(*a, **k)
            self.fed_before = set(self.col.streams)
            return out
        return spy

    def read_on(self, f):
        def spy(key, span, later, opened, start_rows, rows):
            assert sorted(opened.tolist()) == sorted(self.want_opened)
            self.read_on_called = True
            self.checked["opened"] += 1
            return f(key, span, later, opened, start_rows, rows)
        return spy

    def add(self, *a) -> None:
        self.feeds, self.want_opened, self.read_on_called = 0, None, False
        self.col.add(*a)
        assert self.read_on_called or not self.want_opened


@pytest.mark.skipif(not COMPILED, reason="pick_keyed runs compiled only")
@pytest.mark.parametrize("chunk_bytes", [1 << 13, 1 << 16])
def test_open_keys_match_snapshots(monkeypatch, chunk_bytes: int) -> None:
    checked = {"pending": 0, "opened": 0, "finished": 0}
    for path in FILES:
        stats, table = RunStats(), FlowTable(FlowOptions())
        col = MetadataCollector(stats)
        spy = _Spy(monkeypatch, col)
        for n, raw in enumerate(iter_batches(path, stats, chunk_bytes)):
            pk, _ = decode_chunk(raw, stats)
            j = table.add(pk)
            spy.add(raw.buf, pk, j.uid, j.rank)
            if n % 3 == 2 and col.streams:      # streams closed between chunks: the kept keys are stale
                col.finish_flows(np.array([next(iter(col.streams)) // 2], np.int64))
                checked["finished"] += 1
        monkeypatch.undo()
        for k, v in spy.checked.items():
            checked[k] += v
    assert checked["pending"] > 100 and checked["opened"] > 0 and checked["finished"] > 0, checked


def _quic_initials_reference(self, buf, pk, uid, rows) -> None:
    """MetadataCollector._quic_initials as it was: a numpy scalar per field and row."""
    for i in rows.tolist():
        u = int(uid[i])
        if u in self.quic_done:
            continue
        state = self.quic.get(u)
        direction = int(pk.direction[i])
        if state is not None and direction != state.client_dir:
            continue
        off, cap = int(pk.payload_off[i]), int(pk.payload_cap[i])
        try:
            got = collect.quic.initial_crypto(buf[off: off + cap].tobytes(), state.dcid if state else None)
            if got is None:
                continue
            if state is None:
                state = self.quic[u] = collect._Quic(direction, got.dcid, float(pk.ts[i]))
            state.pieces.extend(got.pieces)
            hello = collect.quic.client_hello_from_crypto(state.pieces)
        except collect.Malformed as bad:
            self.stats.malformed[bad.reason] += 1
            continue
        if hello is not None or len(state.pieces) > 64:
            if hello is not None:
                self.log.row("hello", u, hello.sni, ",".join(hello.alpn) or None, direction, state.first_ts)
                self.hellos.append(u)
            del self.quic[u]
            self.quic_done.add(u)


QUIC_FILES = sorted(p for p in (CORPUS / "pcap").glob("*") if "quic" in p.name.lower() and p.stat().st_size < 4 << 20)


@pytest.mark.parametrize("chunk_bytes", [1 << 12, 1 << 20])
def test_quic_initials_as_reference(monkeypatch, chunk_bytes: int) -> None:
    """The QUIC path reads per column at once: the same rows, hellos, state and counts."""
    hellos = 0
    for path in QUIC_FILES:
        got = []
        for impl in (None, _quic_initials_reference):
            if impl is not None:
                monkeypatch.setattr(MetadataCollector, "_quic_initials", impl)
            stats, table = RunStats(), FlowTable(FlowOptions())
            col = MetadataCollector(stats)
            for raw in iter_batches(path, stats, chunk_bytes):
                pk, _ = decode_chunk(raw, stats)
                j = table.add(pk)
                col.add(raw.buf, pk, j.uid, j.rank)
            got.append((col.table().frame.to_dict("list") if hasattr(col.table(), "frame") else col.flows,
                        sorted(stats.malformed.items()), sorted(col.quic_done), col.hellos,
                        {u: (q.client_dir, q.dcid, q.first_ts, q.pieces) for u, q in col.quic.items()}))
            monkeypatch.undo()
        assert got[0] == got[1], path.name
        hellos += len(got[0][3])
    assert hellos > 10
