"""flight_streams._reassembled (compiled: every segment's first bytes gathered first, then
collect._feed and _contiguous per flight) against a plain Python statement of the same: a repeated
seq keeps its first payload, bytes past max_held are cut (capped), the in-order bytes from the
start up to the first gap; first_ts the earliest segment from the start on (the start itself only
when it reads as a TLS record); odd when a later segment starts like another stream."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from apnstrace.metadata import flight_streams as fs
from apnstrace.metadata.dns_feed import COMPILED

pytestmark = pytest.mark.skipif(not COMPILED, reason="take_flights runs only compiled")

WORDS = set(fs._stream_words().tolist())
BITS = [b"\x16\x03\x03", b"\x15\x03", b"\x16\x02", b"GET ", b"HTTP", b"PROXY", b"\x0d\x0a\x0d\x0a", b"ab", b"\x16"]
PAYLOAD = st.lists(st.sampled_from(BITS), max_size=4).map(b"".join)


def _reference(segments: list[tuple[int, bytes, float]], start_seq: int, max_held: int):
    kept, held, capped, odd, first_ts = {}, 0, False, False, np.inf
    for j, (seq, data, ts) in enumerate(segments):
        other = len(data) >= 4 and int.from_bytes(data[:4], "big") in WORDS
        odd |= other and j > 0
        tls_start = not other and len(data) >= 3 and data[0] in (0x16, 0x15) and data[1] == 3
        o = (seq - start_seq) & 0xFFFFFFFF
        o = o - (1 << 32) if o >= 1 << 31 else o
        if o > 0 or (o == 0 and tls_start):
            first_ts = min(first_ts, ts)
        if seq in kept:
            continue
        n = min(len(data), max_held - held)
        capped |= n < len(data)
        kept[seq] = (o, data[:n])
        held += n
    out = b""
    for o, d in sorted(kept.values(), key=lambda x: x[0]):
        if o < 0:
            continue
        if o > len(out):
            break
        out += d[len(out) - o:]
    return out, capped, odd, first_ts


FLIGHT = st.tuples(st.sampled_from([1000, (1 << 32) - 3]),
                   st.lists(st.tuples(st.integers(-4, 14), PAYLOAD, st.floats(0, 10)), min_size=1, max_size=6))


def _laid_out(flights):
    """The flights' segments one after another in a buffer (each after 4 filler bytes that read
    like an HTTP word), as (buf, packet columns, start rows, segments per flight, first rows)."""
    blob, off, cap, seq, ts, starts, n_seg = bytearray(b"\x16\x03"), [], [], [], [], [], []
    for start_seq, segments in flights:
        starts.append(len(off))
        n_seg.append(len(segments))
        for at, data, t in segments:
            blob += b"GET "
            off.append(len(blob))
            cap.append(len(data))
            seq.append((start_seq + at) & 0xFFFFFFFF)
            ts.append(t)
            blob += data
    blob += b"\0" * 4
    pk = SimpleNamespace(payload_off=np.array(off), payload_cap=np.array(cap), seq=np.array(seq, np.int64),
                         ts=np.array(ts))
    n_seg = np.array(n_seg)
    return np.frombuffer(bytes(blob), np.uint8), pk, starts, n_seg, np.concatenate([[0], np.cumsum(n_seg)[:-1]])


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(FLIGHT, min_size=1, max_size=4), st.sampled_from([3, 9, 1 << 20]))
def test_reassembly_is_the_stream_paths(flights, max_held: int) -> None:
    buf, pk, starts, n_seg, first_seg = _laid_out(flights)
    off = pk.payload_off
    # the start row: its segment at offset 0 in the test's terms is the first listed
    got = fs._reassembled(buf, pk, np.arange(len(off)), first_seg, np.array(starts), max_held, n_seg)
    for i, (start_seq, segments) in enumerate(flights):
        s0 = pk.seq[starts[i]]
        data = b"".join(buf[got.piece_off[j]:got.piece_off[j] + got.piece_len[j]].tobytes()
                        for j in range(got.first_piece[i], got.first_piece[i + 1]))
        want = _reference([(int(pk.seq[first_seg[i] + k]), d, t) for k, (_, d, t) in enumerate(segments)],
                          int(s0), max_held)
        assert (data, bool(got.capped[i]), bool(got.odd[i]), float(got.first_ts[i])) == want
        assert got.length[i] == len(data)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(FLIGHT, min_size=1, max_size=4), st.sampled_from([3, 9, 1 << 20]), st.randoms(use_true_random=False))
def test_rows_anywhere_in_the_packet_columns(flights, max_held: int, rnd) -> None:
    """The kernel gathers the packet columns by seg_row and starts itself: the segments' rows
    shuffled among other rows read as the same flights as rows in order."""
    buf, in_order, starts, n_seg, first_seg = _laid_out(flights)
    n = len(in_order.payload_off)
    want = fs._reassembled(buf, in_order, np.arange(n), first_seg, np.array(starts), max_held, n_seg)
    # row r of in_order goes to place[r] among 2n rows (the others: junk that must not be read)
    place = np.array(rnd.sample(range(2 * n), n))
    cols = {}
    for name, junk in (("payload_off", 0), ("payload_cap", 1), ("seq", 7), ("ts", -1.0)):
        col = np.full(2 * n, junk, getattr(in_order, name).dtype)
        col[place] = getattr(in_order, name)
        cols[name] = col
    got = fs._reassembled(buf, SimpleNamespace(**cols), place, first_seg, place[np.array(starts)], max_held, n_seg)
    used = int(want.first_piece[-1])                   # pieces past it are not written
    for name in ("piece_off", "piece_len"):
        assert np.array_equal(getattr(got, name)[:used], getattr(want, name)[:used]), name
    for name in ("first_piece", "length", "capped", "odd", "first_ts"):
        assert np.array_equal(getattr(got, name), getattr(want, name)), name
