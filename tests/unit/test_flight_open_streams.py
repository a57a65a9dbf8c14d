"""flight_streams._open_streams (the kept payloads chosen in one compiled call, _kept_segments)
opens the streams the per-segment Python it replaced opened: per flight its segments in feed
order, a repeated seq keeping its first payload, `held` the kept bytes, `seen` every segment."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from apnstrace.metadata import flight_streams as fs
from apnstrace.metadata.collect import _Stream
from apnstrace.metadata.dns_feed import COMPILED

pytestmark = pytest.mark.skipif(not COMPILED, reason="take_flights runs only compiled")


def _reference(buf, pk, idx, skeys, starts, seg_row, first_seg, n_seg, first_ts, written) -> dict:
    streams = {}
    for i, row in zip(idx.tolist(), written):
        stream = _Stream("tls", float(first_ts[i]), int(pk.seq[starts[i]]), written=row)
        for r in seg_row[first_seg[i]:first_seg[i] + n_seg[i]].tolist():
            seq, off, cap = int(pk.seq[r]), int(pk.payload_off[r]), int(pk.payload_cap[r])
            if seq not in stream.segments:
                stream.segments[seq] = buf[off:off + cap].tobytes()
                stream.held += cap
        stream.seen = stream.written_seen = int(n_seg[i])
        streams[int(skeys[i])] = stream
    return streams


@st.composite
def _flights(draw):
    n_rows = draw(st.integers(1, 30))
    caps = draw(st.lists(st.integers(0, 40), min_size=n_rows, max_size=n_rows))
    off = np.concatenate([[0], np.cumsum(caps)[:-1]]).astype(np.int64) + 3
    buf = np.frombuffer(draw(st.binary(min_size=int(sum(caps)) + 3, max_size=int(sum(caps)) + 3)), np.uint8)
    # a few distinct seqs, so that some repeat within a flight (uint32 values as the packets hold them)
    seq = np.array(draw(st.lists(st.sampled_from([0, 7, 1000, (1 << 32) - 1]), min_size=n_rows,
                                 max_size=n_rows)), np.uint32)
    pk = SimpleNamespace(payload_off=off, payload_cap=np.array(caps, np.int64), seq=seq)
    n = draw(st.integers(1, 6))
    n_seg = np.array(draw(st.lists(st.integers(1, 5), min_size=n, max_size=n)), np.int64)
    first_seg = np.concatenate([[0], np.cumsum(n_seg)[:-1]]).astype(np.int64)
    seg_row = np.array(draw(st.lists(st.integers(0, n_rows - 1), min_size=int(n_seg.sum()),
                                     max_size=int(n_seg.sum()))), np.int64)
    starts = seg_row[first_seg]
    skeys = np.arange(n, dtype=np.int64) * 2 + 10
    idx = np.array(sorted(draw(st.sets(st.integers(0, n - 1), min_size=1))), np.int64)
    first_ts = np.array(draw(st.lists(st.floats(0, 1e9), min_size=n, max_size=n)))
    written = [(float(i), None, "h2", None, None) for i in idx.tolist()]
    return buf, pk, idx, skeys, starts, seg_row, first_seg, n_seg, first_ts, written


@settings(max_examples=300, deadline=None, derandomize=True)
@given(_flights())
def test_opened_streams_are_the_per_segment_ones(flights) -> None:
    collector = SimpleNamespace(streams={})
    fs._open_streams(collector, *flights)
    want = _reference(*flights)
    assert list(collector.streams) == list(want)
    for key, stream in want.items():
        got = collector.streams[key]
        assert got == stream
        assert list(got.segments) == list(stream.segments)          # the feed order too
        assert all(type(v) is bytes for v in got.segments.values())
