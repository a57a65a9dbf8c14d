"""Shared test helpers: where the captures are, and byte-exact builders for frames and captures.

The builders write every header with struct, so a test can make exactly the file it needs
(a cut record, a second pcapng section in the other byte order, a bad block length, ...).
Checksums are left at zero: apnstrace never reads them.

    frame = ether(ip4(C, S, TCP, tcp(50000, 443, "S")))
    path = write(tmp_path / "x.pcap", pcap([(T0_NS, frame)]))
"""
from __future__ import annotations

from hypothesis import strategies as st

import contextlib
import gzip
import ipaddress
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_pcaps"
CORPUS = REPO.parent / "shared" / "corpus" / "ndpi"
SAMPLE_CAPTURES = sorted(p for p in SAMPLES.iterdir() if p.name.endswith((".pcap", ".pcapng", ".gz")))
VENV_PYTHON = REPO / ".venv" / "bin" / "python"

# 2023-11-14 22:13:20.123456789 UTC: nanosecond digits that a microsecond file cannot hold.
T0_NS = 1_700_000_000_123_456_789

TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58
ETH_IPV4, ETH_IPV6, ETH_VLAN, ETH_QINQ = 0x0800, 0x86DD, 0x8100, 0x88A8
ETH_MPLS, ETH_PPPOE, ETH_ARP = 0x8847, 0x8864, 0x0806
LT_NULL, LT_ETHERNET, LT_PPP, LT_RAW, LT_C_HDLC, LT_LOOP = 0, 1, 9, 101, 104, 108
LT_SLL, LT_RAW4, LT_RAW6, LT_SLL2 = 113, 228, 229, 276

C4, S4 = "10.0.0.1", "17.57.144.10"
C6, S6 = "fd00::1", "2620:149:a44::10"


# ---------------------------------------------------------------- network and transport

def _addr(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def frag4(offset: int = 0, more: bool = False, dont: bool = False) -> int:
    """IPv4 flags + fragment offset field; `offset` in bytes (a multiple of 8)."""
    return (0x4000 if dont else 0) | (0x2000 if more else 0) | (offset // 8)


def ip4(src: str, dst: str, proto: int, payload: bytes = b"", *, options: bytes = b"", frag: int = 0,
        total: int | None = None, ihl: int | None = None, version: int = 4, ident: int = 1) -> bytes:
    options += b"\x00" * (-len(options) % 4)
    hlen = 20 + len(options)
    first = (version << 4) | (hlen // 4 if ihl is None else ihl)
    total = hlen + len(payload) if total is None else total
    return struct.pack("!BBHHHBBH4s4s", first, 0, total, ident, frag, 64, proto, 0,
                       _addr(src), _addr(dst)) + options + payload


def ip6(src: str, dst: str, nxt: int, payload: bytes = b"", *, plen: int | None = None) -> bytes:
    plen = len(payload) if plen is None else plen
    return struct.pack("!IHBB16s16s", 0x6000_0000, plen, nxt, 64, _addr(src), _addr(dst)) + payload


def ext6(nxt: int, body: bytes = b"") -> bytes:
    """A hop-by-hop / routing / destination-options header (length in 8-byte units), padded."""
    body += b"\x00" * (-(2 + len(body)) % 8)
    return bytes([nxt, (2 + len(body)) // 8 - 1]) + body


def frag6(nxt: int, offset: int = 0, more: bool = False, ident: int = 7) -> bytes:
    return struct.pack("!BBHI", nxt, 0, (offset // 8) << 3 | int(more), ident)


_FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20, "E": 0x40, "C": 0x80}


def tcp(sport: int, dport: int, flags: str = "", *, seq: int = 0, ack: int = 0, payload: bytes = b"",
        doff: int | None = None, options: bytes = b"") -> bytes:
    options += b"\x00" * (-len(options) % 4)
    bits = 0
    for letter in flags:
        bits |= _FLAG_BITS[letter]
    doff = (20 + len(options)) // 4 if doff is None else doff
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, doff << 4, bits, 65535, 0, 0) + options + payload


def udp(sport: int, dport: int, payload: bytes = b"", *, length: int | None = None) -> bytes:
    length = 8 + len(payload) if length is None else length
    return struct.pack("!HHHH", sport, dport, length, 0) + payload


def icmp(kind: int, code: int, body: bytes = b"") -> bytes:
    """ICMP or ICMPv6 (same 8-byte header layout): type, code, checksum, 4 unused bytes."""
    return struct.pack("!BBHI", kind, code, 0, 0) + body


# ---------------------------------------------------------------- link layers

MAC_A, MAC_B = bytes.fromhex("3c22fb6e41a7"), bytes.fromhex("001b54c21a01")


def ether(payload: bytes, ethertype: int = ETH_IPV4, tags: Sequence[tuple[int, int]] = ()) -> bytes:
    """Ethernet II; `tags` are (TPID, VLAN id) pairs, outermost first."""
    head = MAC_B + MAC_A
    for tpid, vid in tags:
        head += struct.pack("!HH", tpid, vid)
    return head + struct.pack("!H", ethertype) + payload


def sll(payload: bytes, proto: int = ETH_IPV4) -> bytes:
    return struct.pack("!HHH8sH", 0, 1, 6, MAC_A + b"\x00\x00", proto) + payload


def sll2(payload: bytes, proto: int = ETH_IPV4) -> bytes:
    return struct.pack("!HHIHBB8s", proto, 0, 3, 1, 4, 6, MAC_A + b"\x00\x00") + payload


def null(payload: bytes, family: int = 2, big: bool = False) -> bytes:
    return struct.pack(">I" if big else "<I", family) + payload


def ppp(payload: bytes, proto: int = 0x0021, hdlc: bool = True) -> bytes:
    return (b"\xff\x03" if hdlc else b"") + struct.pack("!H", proto) + payload


def chdlc(payload: bytes, proto: int = ETH_IPV4) -> bytes:
    return struct.pack("!BBH", 0x0F, 0x00, proto) + payload


def mpls(payload: bytes, labels: Sequence[int]) -> bytes:
    out = b""
    for i, label in enumerate(labels):
        bottom = int(i == len(labels) - 1)
        out += struct.pack("!I", (label << 12) | (bottom << 8) | 64)
    return out + payload


def pppoe(payload: bytes, proto: int = 0x0021, session: int = 0x1234) -> bytes:
    return struct.pack("!BBHHH", 0x11, 0, session, len(payload) + 2, proto) + payload


# ---------------------------------------------------------------- capture files

@dataclass(frozen=True)
class Rec:
    ts_ns: int
    data: bytes
    orig_len: int | None = None
    iface: int = 0


def _recs(records: Iterable) -> list[Rec]:
    return [r if isinstance(r, Rec) else Rec(*r) for r in records]


def pcap(records: Iterable, linktype: int = LT_ETHERNET, *, nanos: bool = False, big: bool = False,
         snaplen: int = 65535, network: int | None = None) -> bytes:
    """A classic pcap file; records are Rec or (ts_ns, data[, orig_len]) tuples."""
    e = ">" if big else "<"
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = [struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype if network is None else network)]
    for r in _recs(records):
        sec, ns = divmod(r.ts_ns, 10**9)
        frac = ns if nanos else ns // 1000
        orig = len(r.data) if r.orig_len is None else r.orig_len
        out.append(struct.pack(e + "IIII", sec, frac, len(r.data), orig) + r.data)
    return b"".join(out)


def pcap_header(linktype: int = LT_ETHERNET, *, nanos: bool = False, big: bool = False) -> bytes:
    return pcap([], linktype, nanos=nanos, big=big)


def block(btype: int, body: bytes, big: bool = False) -> bytes:
    e = ">" if big else "<"
    body += b"\x00" * (-len(body) % 4)
    blen = 12 + len(body)
    return struct.pack(e + "II", btype, blen) + body + struct.pack(e + "I", blen)


def option(code: int, value: bytes, big: bool = False) -> bytes:
    e = ">" if big else "<"
    return struct.pack(e + "HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def end_of_options(big: bool = False) -> bytes:
    return option(0, b"", big)


def shb(big: bool = False) -> bytes:
    e = ">" if big else "<"
    return block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1), big)


def idb(linktype: int = LT_ETHERNET, *, tsresol: int | None = None, tsoffset: int | None = None,
        snaplen: int = 0, big: bool = False) -> bytes:
    """Interface description; tsresol is the raw if_tsresol byte (9: 10^-9, 0x80|20: 2^-20)."""
    e = ">" if big else "<"
    opts = b""
    if tsresol is not None:
        opts += option(9, bytes([tsresol]), big)
    if tsoffset is not None:
        opts += option(14, struct.pack(e + "q", tsoffset), big)
    if opts:
        opts += end_of_options(big)
    return block(1, struct.pack(e + "HHI", linktype, 0, snaplen) + opts, big)


def epb(iface: int, ticks: int, data: bytes, orig_len: int | None = None, big: bool = False) -> bytes:
    e = ">" if big else "<"
    orig = len(data) if orig_len is None else orig_len
    return block(6, struct.pack(e + "IIIII", iface, ticks >> 32, ticks & 0xFFFF_FFFF, len(data), orig) + data, big)


def spb(data: bytes, orig_len: int | None = None, big: bool = False) -> bytes:
    e = ">" if big else "<"
    return block(3, struct.pack(e + "I", len(data) if orig_len is None else orig_len) + data, big)


def pcapng(records: Iterable, linktype: int = LT_ETHERNET, *, big: bool = False) -> bytes:
    """One section, one microsecond interface: the common case."""
    out = [shb(big), idb(linktype, big=big)]
    out += [epb(r.iface, r.ts_ns // 1000, r.data, r.orig_len, big) for r in _recs(records)]
    return b"".join(out)


def write(path: Path, data: bytes, *, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


# ---------------------------------------------------------------- reading helpers

def read_all(path: Path, chunk_bytes: int = 32 << 20) -> tuple[list[dict], "RunStats", int]:
    """Every record of a file as plain values, the stats, and how many batches it came in."""
    from apnstrace.reader import iter_batches
    from apnstrace.stats import RunStats
    stats = RunStats()
    rows, batches = [], 0
    for batch in iter_batches(path, stats, chunk_bytes):
        batches += 1
        for i in range(len(batch)):
            off, cap = int(batch.offset[i]), int(batch.caplen[i])
            rows.append({"record": int(batch.record[i]), "ts": float(batch.ts[i]), "caplen": cap,
                         "wire_len": int(batch.wire_len[i]), "linktype": int(batch.linktype[i]),
                         "data": batch.buf[off: off + cap].tobytes()})
    return rows, stats, batches


# ---------------------------------------------------------------- decoding helpers

def raw_batch(frames: Sequence[bytes], linktype: int | Sequence[int] = LT_ETHERNET,
              wire_lens: Sequence[int] | None = None):
    """Frames as the reader would hand them to decode (same zero padding after the chunk)."""
    from apnstrace.reader.stream import PAD
    from apnstrace.records import RawBatch
    data = b"".join(frames)
    buf = np.zeros(len(data) + PAD, np.uint8)
    buf[: len(data)] = np.frombuffer(data, np.uint8)
    lens = np.array([len(f) for f in frames], np.int64)
    offset = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    n = len(frames)
    kinds = np.full(n, linktype, np.int32) if isinstance(linktype, int) else np.asarray(linktype, np.int32)
    wire = lens.copy() if wire_lens is None else np.asarray(wire_lens, np.int64)
    return RawBatch(buf=buf, offset=offset, caplen=lens, wire_len=wire,
                    ts=(T0_NS / 1e9) + np.arange(n, dtype=np.float64), linktype=kinds,
                    record=np.arange(1, n + 1, dtype=np.int64), path="<test>")


def decode(frames: Sequence[bytes], linktype: int | Sequence[int] = LT_ETHERNET,
           wire_lens: Sequence[int] | None = None):
    """(PacketBatch, IcmpErrors, RunStats) for frames decoded as one batch."""
    from apnstrace.decode import decode_batch
    from apnstrace.stats import RunStats
    stats = RunStats()
    packets, errors = decode_batch(raw_batch(frames, linktype, wire_lens), stats)
    return packets, errors, stats


def addr_text(hi: int, lo: int) -> str:
    """A 16-byte address column value (IPv4 as ::ffff:a.b.c.d) as text."""
    ip = ipaddress.IPv6Address((int(hi) << 64) | int(lo))
    return str(ip.ipv4_mapped) if ip.ipv4_mapped else str(ip)


def packet_endpoints(packets, i: int = 0) -> dict:
    """Row i of a PacketBatch as plain values, with its endpoints as a set (order-free)."""
    a = (addr_text(packets.a_hi[i], packets.a_lo[i]), int(packets.port_a[i]))
    b = (addr_text(packets.b_hi[i], packets.b_lo[i]), int(packets.port_b[i]))
    return {"endpoints": {a, b}, "proto": int(packets.proto[i]), "vlan": int(packets.vlan[i]),
            "flags": int(packets.tcp_flags[i]), "payload_len": int(packets.payload_len[i]),
            "seq": int(packets.seq[i]), "wire_len": int(packets.wire_len[i])}


def syn_frame(src: str = C4, dst: str = S4, sport: int = 50000, dport: int = 5223) -> bytes:
    """An IPv4 (or IPv6, by address) TCP SYN, no link header."""
    seg = tcp(sport, dport, "S", seq=1000)
    if ":" in src:
        return ip6(src, dst, TCP, seg)
    return ip4(src, dst, TCP, seg)


def conversation(n: int = 6, start_ns: int = T0_NS, step_ns: int = 10_000_000, sport: int = 50000,
                 payload: bytes = b"") -> list[tuple[int, bytes]]:
    """A TCP handshake then n-3 data segments alternating direction, as Ethernet frames."""
    frames = [ether(ip4(C4, S4, TCP, tcp(sport, 5223, "S", seq=100))),
              ether(ip4(S4, C4, TCP, tcp(5223, sport, "SA", seq=900, ack=101))),
              ether(ip4(C4, S4, TCP, tcp(sport, 5223, "A", seq=101, ack=901)))]
    seq_c, seq_s = 101, 901
    for i in range(n - 3):
        if i % 2 == 0:
            frames.append(ether(ip4(C4, S4, TCP, tcp(sport, 5223, "PA", seq=seq_c, ack=seq_s, payload=payload))))
            seq_c += len(payload)
        else:
            frames.append(ether(ip4(S4, C4, TCP, tcp(5223, sport, "PA", seq=seq_s, ack=seq_c, payload=payload))))
            seq_s += len(payload)
    return [(start_ns + i * step_ns, f) for i, f in enumerate(frames[:n])]


# ---------------------------------------------------------------- fixtures

@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


# ---------------------------------------------------------------- bad input (spec section 6)

@dataclass(frozen=True)
class BadInput:
    """A broken capture and what apnstrace must say about it."""

    name: str
    filename: str
    data: bytes | None        # None: the file does not exist
    problem: str              # the problem, after "<file>[, record N]: "
    record: int | None        # the record named in the message
    records_kept: int         # frames decoded before the break; 0: analyze raises CaptureError
    flows_kept: int

    def line(self, path: Path) -> str:
        where = str(path) if self.record is None else f"{path}, record {self.record}"
        return f"{where}: {self.problem}"

    def write(self, directory: Path) -> Path:
        path = directory / self.filename
        if self.data is not None:
            path.write_bytes(self.data)
        return path


def _complete_pcap_records(data: bytes) -> int:
    """How many whole records a (possibly cut) little-endian pcap byte string holds."""
    pos, count = 24, 0
    while pos + 16 <= len(data):
        incl = struct.unpack_from("<I", data, pos + 8)[0]
        if pos + 16 + incl > len(data):
            break
        pos += 16 + incl
        count += 1
    return count


def bad_inputs() -> list[BadInput]:
    convo = conversation(6, payload=b"x" * 30)
    whole = pcap(convo)
    last_len = 16 + len(convo[-1][1])

    absurd = bytearray(pcap(convo[:3]))
    third = len(pcap(convo[:2]))
    struct.pack_into("<I", absurd, third + 8, 0x7FFF_FFF0)

    ng_blocks = [shb(), idb(LT_ETHERNET)] + [epb(0, ts // 1000, f) for ts, f in convo[:4]]
    bad_len = bytearray(ng_blocks[4])
    struct.pack_into("<I", bad_len, 4, 30)
    undeclared = [shb(), idb(LT_ETHERNET), epb(0, convo[0][0] // 1000, convo[0][1]),
                  epb(3, convo[1][0] // 1000, convo[1][1]), epb(0, convo[2][0] // 1000, convo[2][1])]
    bad_bom = bytearray(shb())
    bad_bom[8:12] = b"\x01\x02\x03\x04"

    long_convo = conversation(40, payload=b"y" * 200)
    long_pcap = pcap(long_convo)
    split = len(pcap(long_convo[:25]))
    second = bytearray(gzip.compress(long_pcap[split:], mtime=0))
    second[10] = 0xFF                          # first deflate block: BFINAL, type 3 (invalid)
    multi = gzip.compress(long_pcap[:split], mtime=0) + bytes(second)
    packed = gzip.compress(long_pcap, mtime=0)
    half = packed[: len(packed) // 2]
    readable = _complete_pcap_records(zlib.decompressobj(31).decompress(half))
    ng_whole = b"".join(ng_blocks)

    return [
        BadInput("not-a-capture", "notes.txt", b"hello, world\n",
                 "not a pcap or pcapng capture (starts with bytes 68 65 6c 6c)", None, 0, 0),
        BadInput("empty-file", "empty.pcap", b"", "file is empty, not a capture", None, 0, 0),
        BadInput("missing-file", "missing.pcap", None, "no such file", None, 0, 0),
        BadInput("pcap-header-cut", "short.pcap", whole[:10], "pcap file header cut short (10 of 24 bytes)",
                 None, 0, 0),
        BadInput("cut-in-a-record", "cut.pcap", whole[:-10],
                 f"file cut short in the middle of a record ({last_len - 10} bytes left over)", 6, 5, 1),
        BadInput("cut-in-the-first-record", "cut1.pcap", whole[:40],
                 "file cut short in the middle of a record (16 bytes left over)", 1, 0, 0),
        BadInput("caplen-absurd", "absurd.pcap", bytes(absurd),
                 "record length 2147483632 is larger than any real frame (limit 262144); "
                 "the file is corrupt from here on", 3, 2, 1),
        BadInput("pcapng-bad-block-length", "badlen.pcapng", b"".join(ng_blocks[:4]) + bytes(bad_len),
                 "block length 30 cannot be right; the file is corrupt from here on", 3, 2, 1),
        BadInput("pcapng-cut-in-a-block", "cut.pcapng", ng_whole[:-8],
                 f"file cut short in the middle of a block ({len(ng_blocks[-1]) - 8} bytes left over)", 4, 3, 1),
        BadInput("pcapng-undeclared-interface", "iface.pcapng", b"".join(undeclared),
                 "packet for interface 3, which its section does not declare (1 declared); "
                 "such packets are left out", 2, 2, 1),
        BadInput("pcapng-bad-byte-order-mark", "bom.pcapng", bytes(bad_bom) + b"".join(ng_blocks[1:]),
                 "section header has an unknown byte-order mark", 1, 0, 0),
        BadInput("gzip-corrupt-in-the-middle", "corrupt.pcap.gz", multi,
                 "compressed data is corrupt or cut short (Error -3 while decompressing data: invalid block type)",
                 26, 25, 1),
        BadInput("gzip-cut-short", "cut.pcap.gz", half,
                 "compressed data is corrupt or cut short "
                 "(Compressed file ended before the end-of-stream marker was reached)",
                 readable + 1, readable, 1),
    ]


BAD_INPUTS = bad_inputs()


@st.composite
def mutated(draw, seeds: list[bytes]) -> bytes:
    """A real payload with a few random edits: bit flips, odd bytes, cuts, inserts, deletes, copies."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete", "copy"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[at] = draw(st.sampled_from([0x00, 0x01, 0x3F, 0x40, 0x7F, 0x80, 0xC0, 0xFF]))
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 16))]
        elif kind == "copy":
            data[at:at] = data[draw(st.integers(0, len(data))):][:draw(st.integers(1, 64))]
    return bytes(data)


def python_lines(call, *args) -> int:
    """Lines of apnstrace's own Python code that `call(*args)` executes: a measure of work
    that does not depend on the machine's speed or load (tests compare it across input sizes
    instead of timing; compiled numba code runs untraced)."""
    import sys
    import apnstrace
    package = str(Path(apnstrace.__file__).parent)
    count = 0

    def local(frame, event, arg):
        nonlocal count
        count += event == "line"
        return local

    def start(frame, event, arg):
        return local if frame.f_code.co_filename.startswith(package) else None

    sys.settrace(start)
    try:
        call(*args)
    finally:
        sys.settrace(None)
    return count


# ---------------------------------------------------------------- the engine's stages, for tests

def sample_generator():
    """sample_pcaps/generate.py as a module (its builders make test captures)."""
    import importlib.util
    import sys
    spec = importlib.util.spec_from_file_location("sample_pcaps_generate", SAMPLES / "generate.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look the module up while it executes
    spec.loader.exec_module(mod)
    return mod


def collect_metadata(path: Path, chunk_bytes: int = 32 << 20, *, tolerate: bool = False, after_chunk=None):
    """The flow table and the metadata collector over a capture, chunk by chunk as the engine
    feeds them, the collector finished: (table, collector, stats). `tolerate`: a capture that
    breaks part-way keeps what was read (CaptureError and warnings silenced); `after_chunk`:
    called with the collector after each chunk."""
    import warnings
    from apnstrace.decode import decode_chunk
    from apnstrace.errors import CaptureError
    from apnstrace.flows import FlowTable
    from apnstrace.metadata import MetadataCollector
    from apnstrace.options import FlowOptions
    from apnstrace.reader import iter_batches
    from apnstrace.stats import RunStats
    stats = RunStats()
    table, collector = FlowTable(FlowOptions()), MetadataCollector(stats)
    with warnings.catch_warnings():
        if tolerate:
            warnings.simplefilter("ignore")
        try:
            for raw in iter_batches(path, stats, chunk_bytes):
                packets, _ = decode_chunk(raw, stats)
                joined = table.add(packets)
                collector.add(raw.buf, packets, joined.uid, joined.rank)
                if after_chunk is not None:
                    after_chunk(collector)
        except CaptureError:
            if not tolerate:
                raise
    collector.finish()
    return table, collector, stats


@contextlib.contextmanager
def metadata_fast_paths(on: bool):
    """The collector's compiled fast paths (DNS, stream starts, server flights) on or off; off,
    every payload goes the Python stream path, the reference the fast paths must equal."""
    from apnstrace.metadata import dns_feed, fast_streams, flight_streams
    saved = dns_feed.COMPILED, fast_streams.COMPILED, flight_streams.COMPILED
    dns_feed.COMPILED = fast_streams.COMPILED = flight_streams.COMPILED = on
    try:
        yield
    finally:
        dns_feed.COMPILED, fast_streams.COMPILED, flight_streams.COMPILED = saved


@contextlib.contextmanager
def keys_fed_to_python():
    """The flow-direction keys whose rows reach the collector's Python stream path (_feed)."""
    from apnstrace.metadata import collect
    fed: list = []
    feed = collect.MetadataCollector._feed

    def spy(self, buf, pk, key, rows, *args, **kwargs):
        fed.extend(key[rows].tolist())
        return feed(self, buf, pk, key, rows, *args, **kwargs)

    collect.MetadataCollector._feed = spy
    try:
        yield fed
    finally:
        collect.MetadataCollector._feed = feed


def plain_chain(path: Path):
    """The pipeline's stages called one by one on a capture, every frame kept (the reference the
    tests of pipeline's let-go and hand-back steps compare with): (session, the frame out of
    per_flow, the ICMP errors' frame)."""
    from apnstrace import pipeline as pl
    session = pl.Session()
    pl._fast_flows([path], session, None)
    session.collector.finish()
    icmp = pl._icmp_frame(session.icmp_parts)
    flows = pl.per_flow(pl.attach(session.table.finish(), session.collector), icmp, None, session.options)
    return session, flows, icmp
