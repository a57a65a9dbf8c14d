"""metadata/pick.py: the compiled one-pass picker against the numpy expressions it replaced
(pick_numpy), on the chunks of corpus captures and on random and mutated packet columns."""
from __future__ import annotations

import ctypes
import mmap
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import CORPUS, mutated
from apnstrace.decode import decode_chunk
from apnstrace.errors import CaptureError
from apnstrace.flows import FlowTable
from apnstrace.metadata import collect
from apnstrace.metadata.dns_feed import COMPILED
from apnstrace.metadata.pick import paged_room, pick, pick_keyed, pick_numpy
from apnstrace.options import FlowOptions
from apnstrace.reader import iter_batches
from apnstrace.stats import RunStats

pytestmark = pytest.mark.skipif(not COMPILED, reason="compiled only with numba")

LIMITS = (collect.EARLY, collect.MAX_SEGMENTS, collect.DNS_TCP_PAYLOADS)
WORDS = (collect._HTTP_WORDS, collect._PROXY_WORDS)
PAYLOADS = [b"GET / HTTP/1.1\r\n", b"HTTP/1.1 200 OK\r\n", b"PROXY TCP4 1.2.3.4\r\n", b"\r\n\r\n\x00\r\nQUIT\n!",
            b"\x16\x03\x01\x02\x00\x01\x00", b"\x16\x03\x03\x00\x40\x02", b"\x15\x03\x03\x00\x02\x02\x30",
            b"\x16\x03\x05\x00", b"\x17\x03\x03\x00", b"HTTP", b"HTTP/", b"\x16\x03\x01\x00\x05\x01",
            bytes.fromhex("c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689f"), b"\x12\x34\x81\x80",
            b"\x12\x34\x01\x00", b"G", b"", b"\x16"]
# QUIC long headers of versions quic.py reads and does not
PAYLOADS += [bytes.fromhex(h) + bytes(30) for h in ("c0ff00001d08", "c0faceb00208", "c05130343308", "c00000000008",
                                                   "c06b3343cf08", "c01a2a3a4a08", "c0ff00002308", "c054303531")]


def assert_same(buf: np.ndarray, pk, rank: np.ndarray, uid: np.ndarray | None = None) -> None:
    got, want = pick(buf, pk, rank, LIMITS, WORDS), pick_numpy(buf, pk, rank, LIMITS, WORDS)
    assert got.start_kind.shape == got.peek.shape == (len(pk),)
    assert set(got.starting.tolist()) | set(got.idle.tolist()) == set(got.early.tolist())
    for name in got._fields:
        a, b = getattr(got, name), getattr(want, name)
        assert a.tolist() == b.tolist(), name
        assert a.dtype == b.dtype or name in ("start_kind",), name
    if len(pk) == 0:
        return
    # pick_keyed: the same picks, and the keys a plain expression makes
    if uid is None:
        uid = (np.arange(len(pk), dtype=np.int64) * 7919 + int(rank.sum())) % (3 * len(pk) + 5)
    t = collect._plan_tables(0).rows(len(pk))
    pending = np.unique(uid[::3] * 2 + 1)
    keyed, key, lo, hi, plan, dns_uid, dns_span, late_key = pick_keyed(
        buf, pk, uid, rank, LIMITS, WORDS, (pending, t.first, t.kinds, t.mark, t.is_start, t.started,
                                            collect._MAX_PLAN_SPAN))
    if plan is not None:
        t.started = plan[0]         # as MetadataCollector.add: the next call clears these
    for name in got._fields:
        assert getattr(keyed, name).tolist() == getattr(got, name).tolist(), name
    want_key = [int(u) * 2 + int(d) for u, d in zip(uid, pk.direction)]
    assert key.tolist() == want_key
    assert (lo, hi) == (min(want_key), max(want_key))
    assert late_key.tolist() == key[got.late].tolist()
    want_uid = uid[got.dns_udp].tolist()
    assert dns_uid.tolist() == want_uid
    assert dns_span == ((min(want_uid), max(want_uid)) if want_uid else (0, 0))
    # and collect._plan's rows, made in the same call
    assert plan is not None
    for a, b in zip(plan, collect._plan_numpy(key, keyed, pending)):
        assert a.tolist() == b.tolist()


class _Columns:
    """What pick reads of a PacketBatch."""

    def __init__(self, proto, port_a, port_b, off, cap, direction) -> None:
        self.proto, self.port_a, self.port_b, self.payload_off, self.payload_cap = proto, port_a, port_b, off, cap
        self.direction = direction

    def __len__(self) -> int:
        return len(self.proto)


def _columns(payloads: list[bytes], seed: int) -> tuple[np.ndarray, _Columns, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = len(payloads)
    # payloads back to back (no padding: a short payload's neighbours are what lies past it)
    buf = np.frombuffer(b"".join(payloads) + b"\0" * 8, np.uint8)
    cap = np.array([len(p) for p in payloads], np.int64)
    off = np.concatenate([[0], np.cumsum(cap)[:-1]]).astype(np.int64)
    ports = np.array([53, 5353, 443, 80, 8080, 1234, 5223], np.int64)
    cols = _Columns(rng.choice(np.array([6, 17, 1, 58], np.int64), n), rng.choice(ports, n), rng.choice(ports, n),
                    off, cap, rng.integers(0, 2, n).astype(np.int8))
    return buf, cols, rng.integers(-1, 70, n).astype(np.int64)


def _corpus_chunks(limit: int = 40):
    paths = sorted((CORPUS / "pcap").glob("*"))[:limit]
    for path in paths:
        stats, table = RunStats(), FlowTable(FlowOptions())
        try:
            for raw in iter_batches(Path(path), stats, 1 << 16):
                packets, _ = decode_chunk(raw, stats)
                joined = table.add(packets)
                yield raw.buf.view(np.ndarray), packets, joined.rank, joined.uid
        except CaptureError:
            continue


@pytest.mark.skipif(not (CORPUS / "pcap").is_dir(), reason="corpus not present")
def test_pick_equals_numpy_on_corpus_chunks() -> None:
    chunks = 0
    for buf, pk, rank, uid in _corpus_chunks():
        if len(pk):
            assert_same(buf, pk, rank, uid)
            chunks += 1
    assert chunks > 40


def test_pick_equals_numpy_on_every_kind_of_payload() -> None:
    for seed in range(20):
        assert_same(*_columns(PAYLOADS * 4, seed))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(mutated(PAYLOADS[:14] + PAYLOADS[-8:]), min_size=1, max_size=24), st.integers(0, 1 << 30))
def test_pick_equals_numpy_on_mutated_payloads(payloads: list[bytes], seed: int) -> None:
    assert_same(*_columns(payloads, seed))


VERSIONS = [0, 1, 2, 0x6B3343CF, 0xFACEB001, 0xFACEB002, 0xFACEB00E, 0xFACEB003, 0x54303530, 0x54303531,
            0x54303532, 0x0A0A0A0A, 0x1A2A3A4A, 0xFAFAFAFA, 0x0A0A0A0B, 0xFFFFFFFF, 0xFF000100]
VERSIONS += [0xFF000000 | d for d in range(0, 40)] + [0xFF010000 | d for d in (22, 29)]


def test_quic_version_read_is_quic_is_supported_version() -> None:
    from apnstrace.decode import quic
    from apnstrace.metadata.pick import quic_version_read
    for v in VERSIONS:
        assert quic_version_read(v) == quic.is_supported_version(v), hex(v)


@settings(max_examples=2000, deadline=None, derandomize=True)
@given(st.integers(0, (1 << 32) - 1) | st.sampled_from(VERSIONS).flatmap(
    lambda v: st.integers(0, 31).map(lambda b: v ^ (1 << b))))
def test_quic_version_read_on_random_versions(version: int) -> None:
    from apnstrace.decode import quic
    from apnstrace.metadata.pick import quic_version_read
    assert quic_version_read(version) == quic.is_supported_version(version)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.binary(min_size=0, max_size=300), st.lists(st.tuples(st.integers(0, 299), st.integers(0, 40)), max_size=12))
def test_held_gathered_equals_numpy_ranges(data: bytes, ranges: list[tuple[int, int]]) -> None:
    from apnstrace.metadata import held
    src = np.frombuffer(data + bytes(340), np.uint8)
    start = np.array([a for a, _ in ranges], np.int64)
    length = np.array([n for _, n in ranges], np.int64)
    assert held.gather_ranges(src, start, length).tobytes() == src[held._ranges(start, length)].tobytes()


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.binary(min_size=1, max_size=40), st.data())
def test_head8_is_the_bytes_little_endian(data: bytes, draw) -> None:
    """pick._head8's one unaligned 8-byte load (and its byte loop at the buffer's end) against
    the bytes themselves, at every alignment."""
    from apnstrace.metadata.pick import _head8
    lead = draw.draw(st.integers(0, 15))
    buf = np.frombuffer(bytes(lead) + data, np.uint8)[lead:]        # any start address
    for p in range(len(buf)):
        want = int.from_bytes(data[p:p + 8].ljust(8, b"\0"), "little")
        assert int(_head8(buf, p, len(buf))) == want, p


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(mutated(PAYLOADS[:14] + PAYLOADS[-8:]), min_size=1, max_size=24), st.integers(0, 1 << 30),
       st.integers(0, 15))
def test_pick_equals_numpy_up_to_the_buffers_end(payloads: list[bytes], seed: int, lead: int) -> None:
    """Two bytes after the last payload (pick_numpy reads a DNS payload's third byte even past
    its end), so the last heads are read by _head8's byte loop; at any alignment."""
    buf, cols, rank = _columns(payloads, seed)
    raw = bytes(lead) + buf.tobytes()[:-6]
    cols.payload_off = cols.payload_off + lead
    assert_same(np.frombuffer(raw, np.uint8), cols, rank)


def test_paged_room_is_zeros_with_rows_of_its_own() -> None:
    room = paged_room((3, 5))
    assert room.shape == (3, 5) and room.dtype == np.int64 and room.flags.c_contiguous
    assert not room.any()
    room[1, :2] = 7
    assert room[1].tolist() == [7, 7, 0, 0, 0] and not room[0].any() and not room[2].any()


def _resident_kib(array: np.ndarray) -> int:
    """KiB of `array`'s own pages that are resident (mincore(2) over exactly its range; the
    smaps entry around it can be merged with a neighbouring anonymous mapping and count that
    mapping's pages too, as it did once in CI: 6,204 KiB)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    page = mmap.PAGESIZE
    start = array.ctypes.data - array.ctypes.data % page
    length = array.ctypes.data + array.nbytes - start
    pages = -(-length // page)
    vec = ctypes.create_string_buffer(pages)
    assert libc.mincore(start, length, vec) == 0, os.strerror(ctypes.get_errno())
    return sum(b & 1 for b in vec.raw) * page // 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mincore as on Linux")
def test_paged_room_makes_only_written_pages_resident() -> None:
    room = paged_room((15, 1 << 18))         # 30 MiB, as engine_10m's chunks use it
    room[:, :10] = 1                          # a few rows of each list
    assert _resident_kib(room) <= 15 * 8       # a 4 KiB page a list (2 MiB huge pages: 30 MiB)
