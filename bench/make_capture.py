#!/usr/bin/env python3
"""Build a large, deterministic Ethernet capture for the engine benchmark.

The base is every classic-pcap, microsecond, link-type-1 (Ethernet) capture in the corpus
(pcapng, nanosecond pcaps and other link types are skipped), concatenated in file-name order.
The output repeats that base as many times as needed to reach --packets frames. Copy k:

* timestamps: each file's packets keep their order; the gap between consecutive packets of a
  file is clamped to [0, --max-gap] seconds (the nDPI corpus splices captures decades apart
  and has a few backward steps), files follow each other 1 s apart, and copy k starts 1 s
  after copy k-1 ends. The output is monotonic in time.
* IPv4: the first octet of source and destination is kept, octets 2..4 are xor-ed with a
  24-bit per-copy value (copy 0 is unchanged); the IPv4 header checksum is updated
  incrementally (RFC 1624). TCP/UDP checksums are NOT updated (no benchmarked tool checks them).
* IPv6: bytes 8..15 of source and destination (the interface identifier) are xor-ed with a
  64-bit per-copy value.
* Frames are found through Ethernet, up to two 802.1Q/802.1ad tags and PPPoE session
  headers. Other frames (ARP, LLDP, MPLS, ...) are copied unchanged; addresses inside tunnels
  (4in4, 6in4, GRE, ...) are not remapped, only the outermost IP header.

The per-copy values come from multiplying k by an odd constant modulo 2**24 / 2**64, which
is a bijection, so copies never share a remapped address for the same original address.

Usage: python bench/make_capture.py [--packets N] [--out PATH] [--corpus DIR] [--max-gap S]
"""
from __future__ import annotations

import argparse
import os
import struct
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "ndpi" / "pcap"
DEFAULT_OUT = HERE / "out" / "engine_2m.pcap"
BASE_EPOCH = 1_700_000_000  # output starts here (2023-11-14), seconds

MAGIC_LE = b"\xd4\xc3\xb2\xa1"
MAGIC_BE = b"\xa1\xb2\xc3\xd4"
GLOBAL_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)

V4_MUL = 0x9E3779B1            # odd: k -> k*V4_MUL mod 2**24 is a bijection
V6_MUL = 0x9E3779B97F4A7C15    # odd: k -> k*V6_MUL mod 2**64 is a bijection


class Base:
    """The concatenated corpus: one pcap record blob plus per-record offsets."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.hdr_off: list[int] = []     # offset of each 16-byte record header in the blob
        self.rel_us: list[int] = []      # timestamp relative to the copy start, microseconds
        self.ip4_off: list[int] = []     # blob offset of an IPv4 header (>= 20 bytes captured)
        self.ip6_off: list[int] = []     # blob offset of an IPv6 header (>= 40 bytes captured)
        self.size = 0
        self.files = 0
        self.skipped: dict[str, int] = {}

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1


def l3_offset(frame: bytes) -> tuple[int, int]:
    """(ethertype, offset of the L3 header) through VLAN tags and PPPoE; (-1, -1) if none."""
    if len(frame) < 14:
        return -1, -1
    et = (frame[12] << 8) | frame[13]
    off = 14
    for _ in range(2):
        if et in (0x8100, 0x88A8, 0x9100) and len(frame) >= off + 4:
            et = (frame[off + 2] << 8) | frame[off + 3]
            off += 4
    if et == 0x8864 and len(frame) >= off + 8:       # PPPoE session: 6 bytes + PPP protocol
        ppp = (frame[off + 6] << 8) | frame[off + 7]
        off += 8
        et = {0x0021: 0x0800, 0x0057: 0x86DD}.get(ppp, -1)
    return et, off


def load_base(corpus: Path, max_gap_us: int) -> Base:
    base = Base()
    clock = 0  # microseconds since the copy start
    for path in sorted(p for p in corpus.iterdir() if p.is_file()):
        data = path.read_bytes()
        if len(data) < 24:
            base.skip("short")
            continue
        magic = data[:4]
        if magic == MAGIC_LE:
            endian = "<"
        elif magic == MAGIC_BE:
            endian = ">"
        else:
            base.skip("not classic microsecond pcap")
            continue
        linktype = struct.unpack(endian + "I", data[20:24])[0] & 0xFFFF
        if linktype != 1:
            base.skip(f"linktype {linktype}")
            continue
        rec = struct.Struct(endian + "IIII")
        off, prev, n = 24, None, 0
        while off + 16 <= len(data):
            sec, usec, incl, orig = rec.unpack_from(data, off)
            if off + 16 + incl > len(data):
                break  # truncated last record
            frame = data[off + 16: off + 16 + incl]
            off += 16 + incl
            t = sec * 1_000_000 + usec
            if prev is not None:
                clock += min(max(t - prev, 0), max_gap_us)
            prev = t
            blob_hdr = base.size
            base.hdr_off.append(blob_hdr)
            base.rel_us.append(clock)
            base.pieces.append(struct.pack("<IIII", 0, 0, incl, orig))
            base.pieces.append(frame)
            base.size += 16 + incl
            et, l3 = l3_offset(frame)
            if et == 0x0800 and incl >= l3 + 20:
                base.ip4_off.append(blob_hdr + 16 + l3)
            elif et == 0x86DD and incl >= l3 + 40:
                base.ip6_off.append(blob_hdr + 16 + l3)
            n += 1
        if n:
            base.files += 1
            clock += 1_000_000  # files follow each other 1 s apart
    return base


def build(packets: int, out: Path, corpus: Path, max_gap: float, quiet: bool = False) -> dict:
    t0 = time.perf_counter()
    base = load_base(corpus, int(max_gap * 1_000_000))
    nbase = len(base.hdr_off)
    if nbase == 0:
        raise SystemExit(f"no usable Ethernet pcaps in {corpus}")
    blob = np.frombuffer(b"".join(base.pieces), dtype=np.uint8)
    base.pieces.clear()
    hdr = np.asarray(base.hdr_off, dtype=np.int64)
    rel = np.asarray(base.rel_us, dtype=np.int64)
    ip4 = np.asarray(base.ip4_off, dtype=np.int64)
    ip6 = np.asarray(base.ip6_off, dtype=np.int64)
    copy_span = int(rel[-1]) + 1_000_000  # next copy starts 1 s after this one's last frame
    copies = -(-packets // nbase)
    last_sec = BASE_EPOCH + (copies * copy_span) // 1_000_000
    if last_sec >= 2**32:
        raise SystemExit("timestamps would overflow 32-bit seconds; lower --max-gap")

    ts_cols = hdr[:, None] + np.arange(8)
    v4_cols = ip4[:, None] + np.array([13, 14, 15, 17, 18, 19])
    v4_csum = ip4[:, None] + np.array([10, 11])
    v4_words = ip4[:, None] + np.array([12, 14, 16, 18])  # 16-bit words holding the addresses
    v6_cols = ip6[:, None] + np.concatenate([np.arange(16, 24), np.arange(32, 40)])
    # end offset (exclusive) of record i in the blob, to cut the last copy
    rec_end = np.append(hdr[1:], blob.size)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    written = 0
    with open(tmp, "wb", buffering=0) as fh:
        fh.write(GLOBAL_HEADER)
        for k in range(copies):
            n = min(nbase, packets - written)
            buf = blob.copy()
            t = BASE_EPOCH * 1_000_000 + k * copy_span + rel
            ts = np.empty((nbase, 2), dtype="<u4")
            ts[:, 0] = t // 1_000_000
            ts[:, 1] = t % 1_000_000
            buf[ts_cols] = ts.view(np.uint8).reshape(nbase, 8)
            if k:
                v4 = (k * V4_MUL) & 0xFFFFFF
                v4b = np.array([v4 >> 16, (v4 >> 8) & 0xFF, v4 & 0xFF] * 2, dtype=np.uint8)
                if ip4.size:
                    old = _words(buf, v4_words)
                    buf[v4_cols] ^= v4b
                    new = _words(buf, v4_words)
                    csum = (buf[v4_csum[:, 0]].astype(np.int64) << 8) | buf[v4_csum[:, 1]]
                    # RFC 1624: HC' = ~(~HC + ~m + m')
                    s = (~csum & 0xFFFF) + ((~old) & 0xFFFF).sum(1) + new.sum(1)
                    while True:
                        hi = s >> 16
                        if not hi.any():
                            break
                        s = (s & 0xFFFF) + hi
                    csum = ~s & 0xFFFF
                    buf[v4_csum[:, 0]] = (csum >> 8).astype(np.uint8)
                    buf[v4_csum[:, 1]] = (csum & 0xFF).astype(np.uint8)
                if ip6.size:
                    v6 = (k * V6_MUL) & 0xFFFFFFFFFFFFFFFF
                    v6b = np.frombuffer(v6.to_bytes(8, "big") * 2, dtype=np.uint8)
                    buf[v6_cols] ^= v6b
            fh.write(memoryview(buf[: rec_end[n - 1]]))
            written += n
    os.replace(tmp, out)
    secs = time.perf_counter() - t0
    info = {
        "out": str(out), "packets": written, "bytes": out.stat().st_size, "copies": copies,
        "base_files": base.files, "base_packets": nbase, "base_ipv4": int(ip4.size),
        "base_ipv6": int(ip6.size), "skipped": base.skipped, "seconds": round(secs, 2),
        "first_ts": BASE_EPOCH, "last_ts": round(BASE_EPOCH + ((copies - 1) * copy_span + rel[n - 1]) / 1e6, 6),
    }
    if not quiet:
        print(f"wrote {written:,} packets ({info['bytes'] / 1e6:,.1f} MB) to {out} in {secs:.1f} s")
        print(f"  base: {nbase:,} packets from {base.files} Ethernet pcaps "
              f"({ip4.size:,} IPv4, {ip6.size:,} IPv6 frames remapped per copy); {copies} copies")
        print(f"  skipped corpus files: {dict(sorted(base.skipped.items()))}")
        print(f"  time range: {info['first_ts']} .. {info['last_ts']} (gaps clamped to {max_gap:g} s)")
    return info


def _words(buf: np.ndarray, cols: np.ndarray) -> np.ndarray:
    return (buf[cols].astype(np.int64) << 8) | buf[cols + 1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=2_000_000, help="frames to write (default 2,000,000)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output pcap (default {DEFAULT_OUT})")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="folder of source captures")
    ap.add_argument("--max-gap", type=float, default=60.0,
                    help="clamp gaps between consecutive frames of a source file to this many seconds "
                         "(default 60: below every tool's idle timeout, so no tool splits a flow on time)")
    args = ap.parse_args(argv)
    if args.packets <= 0:
        ap.error("--packets must be positive")
    build(args.packets, args.out, args.corpus, args.max_gap)
    return 0


if __name__ == "__main__":
    sys.exit(main())
