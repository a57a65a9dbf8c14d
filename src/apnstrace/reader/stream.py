"""Stream capture files as RawBatch chunks: bounded memory, whatever the file size."""
from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ..errors import CaptureError
from ..options import CHUNK_BYTES
from ..records import RawBatch
from ..stats import FileProblem, RunStats
from . import walk
from .sniff import PCAP_MAGICS, open_capture

# Wireshark stores a frame's length as a signed 32-bit number; a fuzzed orig_len past that
# is clamped the same way so byte counts agree.
MAX_WIRE_LEN = (1 << 31) - 1
PAD = 128                 # zero bytes after each chunk: decoders may over-read a header
MIN_RECORD_BYTES = 16     # smallest pcap record: sizes the column buffers of one chunk
GZIP_RATIO_FLOOR = 16 << 20   # decompressed bytes always allowed, whatever the ratio (small files)


class GzipBomb(Exception):
    """A gzip capture expanded past the allowed ratio: reading stops, with this message."""


class _Chunks:
    """Reads a stream straight into numpy buffers, keeping the unconsumed tail between walks.

    Bytes land in the array the decoders read (readinto), so a chunk is copied once, from
    the page cache; only the small tail of a record cut by the chunk edge is copied again.
    """

    def __init__(self, stream, head: bytes, chunk_bytes: int) -> None:
        self.stream = stream
        self.chunk_bytes = chunk_bytes
        self.buf = np.zeros(len(head) + PAD, np.uint8)
        self.buf[: len(head)] = np.frombuffer(head, np.uint8)
        self.start = 0
        self.end = len(head)
        self.eof = False
        self.error: Exception | None = None    # why a compressed stream stopped early
        self.raw = None                        # the compressed file, when the stream is gzip
        self.max_ratio = math.inf
        self.produced = len(head)              # decompressed bytes read so far

    @property
    def size(self) -> int:
        return self.end - self.start

    def fill(self, need: int) -> None:
        """Make sure at least `need` bytes are buffered (or the stream is at its end).

        A gzip stream that breaks keeps what it gave before the break: reading ends there, as
        at the end of the file, and `error` says why (see raise_error). readinto1 reads a
        piece at a time, so a break loses one piece, not the whole chunk read so far.
        """
        if self.size >= need or self.eof:
            return
        want = max(self.chunk_bytes, need - self.size)
        buf = np.empty(self.size + want + PAD, np.uint8)
        have = self.size
        buf[:have] = self.buf[self.start: self.end]
        view = memoryview(buf)
        read = getattr(self.stream, "readinto1", self.stream.readinto)
        try:
            while have < self.size + want:
                got = read(view[have: self.size + want])
                if not got:
                    self.eof = True
                    break
                have += got
                self.produced += got
                if self.raw is not None and self.produced > GZIP_RATIO_FLOOR:
                    self._check_ratio()
        except (OSError, EOFError, zlib.error, GzipBomb) as exc:
            self.eof, self.error = True, exc
        buf[have: have + PAD] = 0
        self.buf, self.start, self.end = buf, 0, have

    def _check_ratio(self) -> None:
        consumed = max(self.raw.tell(), 1)
        if self.produced > self.max_ratio * consumed:
            raise GzipBomb(f"gzip data expands more than {self.max_ratio:g} times ({self.produced:,} bytes from "
                           f"{consumed:,}): refused as a compression bomb (raise --max-gzip-ratio to read it)")

    def raise_error(self) -> None:
        """Called where the data ran out: a stream that broke says so, after the records before it."""
        if self.error is not None:
            raise self.error

    def peek(self, count: int) -> bytes:
        return self.buf[self.start: min(self.start + count, self.end)].tobytes()

    def consume_to(self, pos: int) -> None:
        self.start = pos

    def consume(self, count: int) -> None:
        self.start += count


class _MappedChunks(_Chunks):
    """An uncompressed file is mapped a window at a time instead of copied.

    Each window is unmapped once its batches are dropped, so memory stays at a chunk or two
    whatever the file size. Records in a window are followed by more of the file, so a
    decoder's short over-read stays inside it; the file's last window is copied into a
    zero-padded array instead.
    """

    def __init__(self, path: Path, stream, chunk_bytes: int) -> None:
        super().__init__(stream, b"", chunk_bytes)
        self.path = path
        self.file_size = path.stat().st_size
        self.base = 0             # file offset of buf[0]

    def fill(self, need: int) -> None:
        if self.size >= need or self.eof:
            return
        at = self.base + self.start
        length = min(max(self.chunk_bytes, need), self.file_size - at)
        if at + length + PAD > self.file_size:
            self.stream.seek(at)
            tail = np.zeros(self.file_size - at + PAD, np.uint8)
            got = self.stream.readinto(memoryview(tail)[: self.file_size - at])
            self.buf, self.base, self.start, self.end, self.eof = tail, at, 0, got, True
            return
        self.buf = np.memmap(self.path, dtype=np.uint8, mode="r", offset=at, shape=(length + PAD,))
        self.base, self.start, self.end = at, 0, length


def iter_batches(path: Path, stats: RunStats, chunk_bytes: int = CHUNK_BYTES,
                 max_gzip_ratio: float = 250.0) -> Iterator[RawBatch]:
    """Yield the records of one capture in chunks.

    A file that is not a capture raises CaptureError. A file that breaks part-way (truncated,
    corrupt length, bad gzip data, gzip data expanding more than `max_gzip_ratio` times past
    the first 16 MiB) yields everything before the break and records the problem in
    stats.problems, as one line naming the file and record.
    """
    path = Path(path)
    opened = open_capture(path)
    if opened.compressed or not path.is_file():
        chunks = _Chunks(opened.stream, opened.head, chunk_bytes)
        if opened.compressed:
            chunks.raw, chunks.max_ratio = opened.raw, max_gzip_ratio
    else:
        opened.stream.seek(0)
        chunks = _MappedChunks(path, opened.stream, chunk_bytes)
    stats.files.append(str(path))
    reader = _read_pcap if opened.kind == "pcap" else _read_pcapng
    counter = [0]
    try:
        yield from reader(path, chunks, stats, counter)
    except GzipBomb as exc:
        stats.limits["gzip_expansion_refused"] += 1
        _problem(stats, path, counter[0], str(exc), counter[0] + 1)
    except (OSError, EOFError, zlib.error) as exc:   # gzip stream broken mid-way
        _problem(stats, path, counter[0], f"compressed data is corrupt or cut short ({exc})", counter[0] + 1)
    finally:
        opened.close()


def _problem(stats: RunStats, path: Path, records_read: int, problem: str, record: int | None = None) -> None:
    message = str(CaptureError(path, problem, record))
    stats.problems.append(FileProblem(str(path), message, records_read))


def _at_end(chunks: _Chunks, stats: RunStats, path: Path, records_read: int, unit: str) -> None:
    """The data ran out: a broken stream says why; bytes left over mean a cut-off file."""
    chunks.raise_error()
    if chunks.size:
        _problem(stats, path, records_read, f"file cut short in the middle of a {unit} "
                 f"({chunks.size} bytes left over)", records_read + 1)


def _read_pcap(path: Path, chunks: _Chunks, stats: RunStats, counter: list[int]) -> Iterator[RawBatch]:
    chunks.fill(24)
    header = chunks.peek(24)
    if len(header) < 24:
        chunks.raise_error()
        raise CaptureError(path, f"pcap file header cut short ({len(header)} of 24 bytes)")
    big, nanos = PCAP_MAGICS[header[:4]]
    endian = ">" if big else "<"
    _major, _minor, _zone, _sigfigs, snaplen, network = struct.unpack(endian + "HHiIII", header[4:24])
    linktype = network & 0x0FFF_FFFF        # upper bits carry FCS information
    chunks.consume(24)
    scale = 1e-9 if nanos else 1e-6
    max_caplen = walk.MAX_RECORD
    scratch = _Scratch()
    while True:
        chunks.fill(chunks.chunk_bytes)
        buf = chunks.buf
        size = chunks.size // MIN_RECORD_BYTES + 1
        off = scratch.get("off", size, np.int64)
        sec, frac, cap, wire = (scratch.get(name, size, np.uint32) for name in ("sec", "frac", "cap", "wire"))
        n, pos, status, bad = walk.walk_pcap(buf, chunks.start, chunks.end, big, max_caplen, off, sec, frac, cap, wire)
        if n:
            first = counter[0] + 1
            counter[0] += n
            caplen = cap[:n].astype(np.int64)
            over = int(np.count_nonzero(caplen > snaplen)) if snaplen else 0
            if over:
                stats.malformed["caplen_over_snaplen"] += over
            yield RawBatch(
                buf=buf, offset=off[:n].copy(), caplen=caplen,
                wire_len=_wire_len(wire[:n], caplen, stats),
                ts=sec[:n].astype(np.float64) + frac[:n].astype(np.float64) * scale,
                linktype=np.full(n, linktype, np.int32),
                record=np.arange(first, first + n, dtype=np.int64), path=str(path))
        chunks.consume_to(pos)
        if status == walk.BAD_LENGTH:
            _problem(stats, path, counter[0], f"record length {int(bad)} is larger than any real frame "
                     f"(limit {max_caplen}); the file is corrupt from here on", counter[0] + 1)
            return
        if status == walk.NEED_MORE and chunks.eof:
            _at_end(chunks, stats, path, counter[0], "record")
            return
        if status == walk.NEED_MORE and n == 0:
            # One record is larger than the chunk: read enough for it.
            chunks.fill(chunks.size + max_caplen + walk.PCAP_RECORD_HEADER)


class _Scratch:
    """The walkers' output columns, kept from chunk to chunk of a file. They are sized for the
    smallest records (a chunk's bytes / 16: 4M rows for 64 MiB) and a chunk fills a few percent
    of them; allocated afresh each chunk, each column's first touch had the kernel zero a whole
    2 MiB huge page (numpy asks for them above 4 MiB), ~10 MiB a chunk. Batches copy what they
    keep, so the next chunk may write over them."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, size: int, dtype) -> np.ndarray:
        have = self.arrays.get(name)
        if have is None or len(have) < size:
            have = self.arrays[name] = np.empty(size, dtype)
        return have[:size]


class _Interfaces:
    """pcapng interfaces of the current section: link type, timestamp units, offset."""

    def __init__(self) -> None:
        self.linktype: list[int] = []
        self.units: list[int] = []
        self.offset: list[int] = []

    def add(self, linktype: int, units: int, offset: int) -> None:
        self.linktype.append(linktype)
        self.units.append(units)
        self.offset.append(offset)


def _idb_options(block: bytes, endian: str) -> tuple[int, int]:
    """(timestamp units per second, timestamp offset seconds) from an IDB's options."""
    units, offset = 1_000_000, 0
    pos, end = 16, len(block) - 4
    while pos + 4 <= end:
        code, length = struct.unpack_from(endian + "HH", block, pos)
        if code == 0 or pos + 4 + length > end:      # end of options, or one that overruns the block
            break
        value = block[pos + 4: pos + 4 + length]
        if code == 9 and length >= 1:           # if_tsresol
            v = value[0]
            exponent = v & 0x7F
            base = 2 if v & 0x80 else 10
            if exponent <= 18 if base == 10 else exponent <= 62:
                units = base ** exponent
        elif code == 14 and length == 8:        # if_tsoffset
            offset = struct.unpack(endian + "q", value)[0]
        pos += 4 + ((length + 3) & ~3)
    return units, offset


def _read_pcapng(path: Path, chunks: _Chunks, stats: RunStats, counter: list[int]) -> Iterator[RawBatch]:
    big = False
    interfaces = _Interfaces()
    last_ts = 0.0
    scratch = _Scratch()
    while True:
        chunks.fill(chunks.chunk_bytes)
        buf = chunks.buf
        size = chunks.size // MIN_RECORD_BYTES + 1
        off = scratch.get("off", size, np.int64)
        iface, ts_hi, ts_lo, cap, wire = (scratch.get(name, size, np.uint32)
                                          for name in ("iface", "ts_hi", "ts_lo", "cap", "wire"))
        has_ts = scratch.get("has_ts", size, np.uint8)
        n, pos, status, bad = walk.walk_pcapng(buf, chunks.start, chunks.end, big, off, iface, ts_hi, ts_lo,
                                               cap, wire, has_ts)
        if n:
            batch, last_ts = _pcapng_batch(path, stats, buf, interfaces, counter, last_ts,
                                           off[:n], iface[:n], ts_hi[:n], ts_lo[:n], cap[:n], wire[:n], has_ts[:n])
            if batch is not None:
                yield batch
        chunks.consume_to(pos)
        if status == walk.OTHER_BLOCK:
            chunks.fill(12)
            head = chunks.peek(12)
            btype = struct.unpack(("<" if not big else ">") + "I", head[:4])[0]
            if btype == 0x0A0D0D0A:
                bom = head[8:12]
                if bom == b"\x4d\x3c\x2b\x1a":
                    big = False
                elif bom == b"\x1a\x2b\x3c\x4d":
                    big = True
                else:
                    _problem(stats, path, counter[0], "section header has an unknown byte-order mark", counter[0] + 1)
                    return
                interfaces = _Interfaces()
            endian = ">" if big else "<"
            blen = struct.unpack(endian + "I", head[4:8])[0]
            if blen < 12 or blen % 4 or blen > walk.MAX_BLOCK:
                _problem(stats, path, counter[0], f"block of type {btype:#x} has a bad length {blen}", counter[0] + 1)
                return
            chunks.fill(blen)
            if chunks.size < blen:
                chunks.raise_error()
                _problem(stats, path, counter[0], f"file cut short inside a block of type {btype:#x}", counter[0] + 1)
                return
            block = chunks.peek(blen)
            if btype == 1:                       # interface description
                if blen < 20:
                    _problem(stats, path, counter[0], f"interface block too short ({blen} bytes)", counter[0] + 1)
                    return
                linktype = struct.unpack_from(endian + "H", block, 8)[0]
                units, offset = _idb_options(block, endian)
                interfaces.add(linktype, units, offset)
            chunks.consume(blen)
            continue
        if status == walk.BAD_LENGTH:
            _problem(stats, path, counter[0], f"block length {int(bad)} cannot be right; the file is corrupt from here on",
                     counter[0] + 1)
            return
        if status == walk.BAD_CAPLEN:
            _problem(stats, path, counter[0], f"packet block claims {int(bad)} captured bytes, more than the block "
                     "holds; the file is corrupt from here on", counter[0] + 1)
            return
        if status == walk.NEED_MORE and chunks.eof:
            _at_end(chunks, stats, path, counter[0], "block")
            return
        if status == walk.NEED_MORE and n == 0:
            chunks.fill(chunks.size + walk.MAX_BLOCK)


def _pcapng_batch(path, stats, buf, interfaces, counter, last_ts, off, iface, ts_hi, ts_lo, cap, wire, has_ts):
    n = len(off)
    first = counter[0] + 1
    counter[0] += n
    record = np.arange(first, first + n, dtype=np.int64)
    known = iface < len(interfaces.linktype)
    if not known.all():
        stats.malformed["pcapng_unknown_interface"] += int(np.count_nonzero(~known))
        if not any(p.path == str(path) for p in stats.problems):      # one line per file: the first
            i = int(np.argmin(known))
            _problem(stats, path, counter[0], f"packet for interface {int(iface[i])}, which its section does not "
                     f"declare ({len(interfaces.linktype)} declared); such packets are left out", int(record[i]))
    if not known.any():
        return None, last_ts
    idx = iface[known].astype(np.int64)
    linktypes = np.asarray(interfaces.linktype, np.int32)[idx]
    units = np.asarray(interfaces.units, np.uint64)[idx]
    offsets = np.asarray(interfaces.offset, np.float64)[idx]
    ticks = (ts_hi[known].astype(np.uint64) << np.uint64(32)) | ts_lo[known].astype(np.uint64)
    ts = (ticks // units).astype(np.float64) + (ticks % units).astype(np.float64) / units.astype(np.float64) + offsets
    timed = has_ts[known].astype(bool)
    if not timed.all():
        # Simple packet blocks carry no timestamp: they take the one before them.
        ts = np.where(timed, ts, np.nan)
        filled = np.maximum.accumulate(np.where(timed, np.arange(len(ts)), -1))
        ts = np.where(filled >= 0, ts[np.maximum(filled, 0)], last_ts)
    caplen = cap[known].astype(np.int64)
    batch = RawBatch(buf=buf, offset=off[known].copy(), caplen=caplen,
                     wire_len=_wire_len(wire[known], caplen, stats), ts=ts,
                     linktype=linktypes, record=record[known], path=str(path))
    return batch, float(ts[-1]) if len(ts) else last_ts


def _wire_len(wire: np.ndarray, caplen: np.ndarray, stats: RunStats) -> np.ndarray:
    wire = np.maximum(wire.astype(np.int64), caplen)
    absurd = wire > walk.MAX_RECORD
    if absurd.any():
        stats.malformed["orig_len_absurd"] += int(np.count_nonzero(absurd))
        wire = np.minimum(wire, MAX_WIRE_LEN)
    return wire


def first_timestamp(path: Path) -> float:
    """Timestamp of a capture's first record (inf when unreadable or empty)."""
    try:
        for batch in iter_batches(path, RunStats(), chunk_bytes=1 << 16):
            if len(batch):
                return float(batch.ts[0])
    except CaptureError:
        pass
    return math.inf


def order_by_time(paths: Sequence[Path]) -> list[Path]:
    """Rotated captures given in any order are read in time order of their first frame."""
    if len(paths) < 2:
        return [Path(p) for p in paths]
    keyed = [(first_timestamp(Path(p)), i, Path(p)) for i, p in enumerate(paths)]
    return [p for _, _, p in sorted(keyed)]
