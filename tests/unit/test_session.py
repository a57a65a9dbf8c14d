"""pipeline.Session: the incremental engine live capture feeds. Small batches, snapshots taken
in between, then finish(): the same result as analyze() on the file."""
from __future__ import annotations

import pandas as pd
from conftest import SAMPLES

import apnstrace
from apnstrace.options import FlowOptions
from apnstrace.pipeline import Session
from apnstrace.reader import iter_batches
from apnstrace.site import Site
from apnstrace.stats import RunStats

CAPTURE = SAMPLES / "sequences_site.pcap"
SITE = Site.from_mdm_hosts(["mdm.example.com:8443"])


def _batches(chunk_bytes: int = 1 << 12):
    return list(iter_batches(CAPTURE, RunStats(), chunk_bytes))


def test_small_batches_with_snapshots_finish_like_analyze():
    expected = apnstrace.analyze(CAPTURE, site=SITE)
    session = Session(FlowOptions(), SITE)
    batches = _batches()
    assert len(batches) > 3                 # the point: many small batches, snapshots between
    for raw in batches:
        session.add(raw)
        session.snapshot()
    got = session.finish()
    for name in ("flows", "sequences", "blocked", "timing", "courier"):
        pd.testing.assert_frame_equal(getattr(got, name), getattr(expected, name), obj=name)
    assert got.stats.records == expected.stats.records


def test_snapshot_keeps_open_flows_open():
    session = Session(FlowOptions(), SITE)
    batches = _batches()
    half = len(batches) // 2
    for raw in batches[:half]:
        session.add(raw)
    first = session.snapshot()
    again = session.snapshot()               # a snapshot changes nothing
    pd.testing.assert_frame_equal(first.flows, again.flows)
    open_before = session.table.open_flows
    assert open_before > 0
    for raw in batches[half:]:
        session.add(raw)
    final = session.finish()
    assert len(final.flows) >= len(first.flows)
    assert final.stats.records == sum(len(b) for b in batches)


def test_snapshots_keep_finished_flows_in_one_piece():
    """A live report snapshots every N seconds: finished flows stay one piece, not one piece
    per report (~35 KB each, and each report's assemble slower), and the result is unchanged."""
    options = FlowOptions(tcp_timeout=1.0, udp_timeout=1.0)      # short: flows finish between batches
    expected = apnstrace.analyze(CAPTURE, site=SITE, options=options)
    session = Session(options, SITE)
    grew = 0
    for raw in _batches():
        session.add(raw)
        merges = len(session.table.pieces) > 0 and session.table.finished_count > 0
        session.snapshot()
        grew += merges
        assert len(session.table.pieces) <= 1
    assert grew                               # the merge was exercised, not only empty tables
    got = session.finish()
    for name in ("flows", "sequences", "blocked", "timing", "courier"):
        pd.testing.assert_frame_equal(getattr(got, name), getattr(expected, name), obj=name)
