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
rules in docs/flows.md (client/server, counters, syn_retries, Zeek conn_state). It is not
read back from the written files.

All payloads are synthetic: TLS ciphertext, keys, randoms, certificates and signatures are
random bytes from the seeded RNG with correct framing only.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_Router_Alert
from scapy.layers.inet6 import IPv6
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
        return {
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
            "what": self.what,
        }


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
            ip_options=None):
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
            l3 = IPv6(src=sd.ip, dst=other.ip, hlim=sd.ttl, fl=self.flowlabel[0 if c2s else 1]) / tcp
        else:
            kw = {"options": ip_options} if ip_options else {}
            l3 = IP(src=sd.ip, dst=other.ip, ttl=sd.ttl, id=sd.ipid, flags="DF", **kw) / tcp
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


def all_captures() -> list[Capture]:
    caps = [gen_courier_push(), gen_mdm_checkin(), gen_blocked_syn(), gen_site_mixed()]
    caps.append(variety("variety_nsec_be.pcap", Link("eth"), linktype=LT_ETHERNET, nsec=True, big_endian=True))
    caps.append(variety("variety_sll2.pcap", Link("sll2"), linktype=LT_SLL2))
    caps.append(variety("variety_null.pcap", Link("null"), linktype=LT_NULL))
    caps.append(variety("variety_raw.pcap", Link("raw"), linktype=LT_RAW))
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
