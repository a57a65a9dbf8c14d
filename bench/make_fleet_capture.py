#!/usr/bin/env python3
"""Build a synthetic span-port capture of an Apple fleet: N devices over about an hour.

Made for the sequences benchmark (bench/bench_sequences.py): every device keeps an APNs courier
connection, receives pushes, checks in with the MDM server after most of them and sometimes
fetches follow-ups; generic background traffic makes up about half of the packets.

Fast and reproducible: the traffic is planned as numpy arrays (one row per packet: connection,
time, direction, TCP flags, payload length, payload template), sequence and acknowledgement
numbers are derived from the payload lengths per connection, and frames are assembled in
chunks by writing structured header arrays and payload templates into a byte buffer. The few
payload templates (TLS ClientHello / ServerHello, DNS messages, HTTP and SMB2 headers) are
built with struct; no per-packet Python objects.

Usage: python bench/make_fleet_capture.py [--packets N] [--devices N] [--seed S] [--out PATH]
Writes PATH (default bench/out/fleet_2m.pcap) and PATH with .json (what was planned).
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import struct
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "out" / "fleet_2m.pcap"
BASE_EPOCH = 1_700_000_000          # 2023-11-14, seconds
S = 1_000_000                       # microseconds per second
MS = 1_000
MSS = 1448
FIN, SYN, RST, PSH, ACK = 1, 2, 4, 8, 16

KINDS = ("courier_setup", "keepalive", "push", "provider", "mdm_checkin", "dns", "swcdn", "smb",
         "bg_https", "bg_bulk_https", "bg_bulk_http", "bg_dns")

# Servers (IPv4, IPv6). The MDM, DNS and SMB servers are dual-stacked so IPv6 devices reach
# them over IPv6 (a device is one address: docs/sequences.md "Devices").
MDM = ("10.0.0.10", "fd00::10")
DNS = ("10.0.0.53", "fd00::53")
SMB = ("10.0.0.20", "fd00::20")
PROVIDER_IP = "17.188.143.34"      # api.push.apple.com (17.188.128.0/18)
MDM_NAME, MDM_PORT = "mdm.example.com", 8443
COURIER_SLOTS = 50                 # N-courier.push.apple.com, N = 1..50, one address each
SWCDN_ADDRS = 8
BG_SERVERS = 500
ROUTER_MAC = bytes.fromhex("001c73aabb01")


# --------------------------------------------------------------------------- payload templates

class Templates:
    """Payload prefixes, stored once in a blob; a packet refers to one by id."""

    def __init__(self) -> None:
        self.blob = bytearray()
        self.off: list[int] = []
        self.len: list[int] = []
        self.ids: dict[bytes, int] = {}

    def add(self, data: bytes) -> int:
        i = self.ids.get(data)
        if i is None:
            i = self.ids[data] = len(self.off)
            self.off.append(len(self.blob))
            self.len.append(len(data))
            self.blob += data
        return i


def _rnd(seed: int, n: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def client_hello(sni: str, alpn: list[str], seed: int) -> bytes:
    """A TLS 1.3 ClientHello record (legacy version TLS 1.0 in the record layer, like Apple's)."""
    r = _rnd(seed, 96)
    name = sni.encode()
    sni_ext = struct.pack("!HHHBH", 0, len(name) + 5, len(name) + 3, 0, len(name)) + name
    alpn_body = b"".join(bytes([len(a)]) + a.encode() for a in alpn)
    alpn_ext = struct.pack("!HHH", 16, len(alpn_body) + 2, len(alpn_body)) + alpn_body
    groups = struct.pack("!HHH", 10, 6, 4) + b"\x00\x1d\x00\x17"
    sigalgs = struct.pack("!HHH", 13, 10, 8) + b"\x04\x03\x08\x04\x04\x01\x05\x03"
    versions = struct.pack("!HHB", 43, 5, 4) + b"\x03\x04\x03\x03"
    key_share = struct.pack("!HHHHH", 51, 38, 36, 0x001D, 32) + r[64:96]
    exts = sni_ext + groups + sigalgs + alpn_ext + versions + key_share
    ciphers = b"\x13\x01\x13\x02\x13\x03\xc0\x2b\xc0\x2f\xc0\x2c\xc0\x30"
    body = (b"\x03\x03" + r[:32] + b"\x20" + r[32:64] + struct.pack("!H", len(ciphers)) + ciphers
            + b"\x01\x00" + struct.pack("!H", len(exts)) + exts)
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def server_flight_head(total: int, seed: int) -> bytes:
    """First segment of a TLS 1.3 server flight: ServerHello, ChangeCipherSpec, and the header of
    an application-data record filling the segment to `total` bytes (its body is the random
    payload the segment already has)."""
    r = _rnd(seed, 96)
    exts = struct.pack("!HHH", 43, 2, 0x0304) + struct.pack("!HHHH", 51, 36, 0x001D, 32) + r[64:96]
    body = b"\x03\x03" + r[:32] + b"\x20" + r[32:64] + b"\x13\x01\x00" + struct.pack("!H", len(exts)) + exts
    hs = b"\x02" + len(body).to_bytes(3, "big") + body
    head = b"\x16\x03\x03" + struct.pack("!H", len(hs)) + hs + b"\x14\x03\x03\x00\x01\x01"
    return head + b"\x17\x03\x03" + struct.pack("!H", total - len(head) - 5)


CLIENT_FINISHED = b"\x14\x03\x03\x00\x01\x01" + b"\x17\x03\x03\x00\x35"   # + 53 bytes = 64


def _qname(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"


def dns_query(name: str, v6: bool) -> bytes:
    return struct.pack("!HHHHHH", 0, 0x0100, 1, 0, 0, 0) + _qname(name) + struct.pack("!HH", 28 if v6 else 1, 1)


def dns_answer(name: str, v6: bool, addr: str, ttl: int) -> bytes:
    qtype = 28 if v6 else 1
    rdata = ipaddress.ip_address(addr).packed
    return (struct.pack("!HHHHHH", 0, 0x8180, 1, 1, 0, 0) + _qname(name) + struct.pack("!HH", qtype, 1)
            + struct.pack("!HHHIH", 0xC00C, qtype, 1, ttl, len(rdata)) + rdata)


def smb2_header(command: int, message_id: int, response: bool) -> bytes:
    return (b"\xfeSMB" + struct.pack("<HHIHHIIQIIQ", 64, 1, 0, command, 1, 1 if response else 0, 0,
                                     message_id, 0xFEFF, 1, 0x0000400000000011) + bytes(16))


READ_LEN = 65536
SMB_READ_SEGS = -(-(4 + 64 + 16 + READ_LEN) // MSS)          # 46
SMB_READ_LAST = (4 + 64 + 16 + READ_LEN) - (SMB_READ_SEGS - 1) * MSS


def smb2_read_request(message_id: int, offset: int) -> bytes:
    body = struct.pack("<HBBIQ16sIIIHHB", 49, 0x50, 0, READ_LEN, offset, bytes(range(16)), 1, 0, 0, 0, 0, 0)
    msg = smb2_header(8, message_id, False) + body
    return struct.pack("!I", len(msg)) + msg


def smb2_read_response_head(message_id: int) -> bytes:
    body = struct.pack("<HBBIII", 17, 0x50, 0, READ_LEN, 0, 0)
    return struct.pack("!I", 64 + 16 + READ_LEN) + smb2_header(8, message_id, True) + body


HTTP_CLASSES = np.array([32, 64, 128, 256, 512, 1024, 2048])   # segments of an HTTP download


def http_response_head(nseg: int) -> bytes:
    """A response header whose Content-Length makes header + body exactly nseg full segments."""
    length = nseg * MSS
    for _ in range(3):
        head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nAccept-Ranges: bytes\r\n"
                b"Cache-Control: max-age=86400\r\nContent-Length: %d\r\n\r\n" % length)
        length = nseg * MSS - len(head)
    return head


# --------------------------------------------------------------------------- addresses

def addr_rows(texts: list[str]) -> np.ndarray:
    """(n, 16) uint8: IPv4 in the first 4 bytes, IPv6 in all 16."""
    out = np.zeros((len(texts), 16), np.uint8)
    for i, t in enumerate(texts):
        b = ipaddress.ip_address(t).packed
        out[i, : len(b)] = np.frombuffer(b, np.uint8)
    return out


def device_addresses(n: int, base_x: int, v6: np.ndarray) -> np.ndarray:
    """10.x.y.z with z in 1..250 (IPv6: fd00:10:x:y::z)."""
    i = np.arange(n)
    x, y, z = base_x + i // (256 * 250), (i // 250) % 256, 1 + i % 250
    out = np.zeros((n, 16), np.uint8)
    out[:, 0], out[:, 1], out[:, 2], out[:, 3] = 10, x, y, z
    w = out[v6]
    w[:] = 0
    w[:, 0], w[:, 1], w[:, 3], w[:, 5], w[:, 7], w[:, 15] = 0xFD, 0x00, 0x10, x[v6], y[v6], z[v6]
    out[v6] = w
    return out


def ramp(counts: np.ndarray) -> np.ndarray:
    """[2, 3] -> [0, 1, 0, 1, 2]."""
    counts = np.asarray(counts, np.int64)
    starts = np.cumsum(counts) - counts
    return np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(starts, counts)


# --------------------------------------------------------------------------- the plan

PCOLS = {"conn": np.int32, "ts": np.int64, "dir": np.uint8, "flags": np.uint8, "plen": np.int32,
         "tmpl": np.int32, "app": np.bool_, "xid": np.int32, "kind": np.uint8}


class Trace:
    """Packets and connections as column chunks; emit() takes arrays (one row per connection)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.tpl = Templates()
        self.kind = 0
        self.p: dict[str, list[np.ndarray]] = {k: [] for k in PCOLS}
        self.c: dict[str, list[np.ndarray]] = {k: [] for k in ("key", "v6", "cip", "sip", "sport", "proto", "t0")}
        self.nconn = 0
        self.npk = 0
        self.counts = np.zeros(len(KINDS), np.int64)

    def set_kind(self, name: str) -> None:
        self.kind = KINDS.index(name)

    def conns(self, key, v6, cip, sip, sport, proto, t0) -> np.ndarray:
        n = len(key)
        ids = np.arange(self.nconn, self.nconn + n, dtype=np.int32)
        self.nconn += n
        for name, value, dt in (("key", key, np.int64), ("v6", v6, np.bool_), ("sport", sport, np.int32),
                                ("proto", proto, np.uint8), ("t0", t0, np.int64)):
            self.c[name].append(np.broadcast_to(np.asarray(value, dt), (n,)).copy())
        for name, value in (("cip", cip), ("sip", sip)):
            self.c[name].append(np.broadcast_to(np.asarray(value, np.uint8), (n, 16)).copy())
        return ids

    def emit(self, conn, ts, d, flags, plen=None, tmpl=-1, app=False, xid=-1) -> None:
        n = len(conn)
        if n == 0:
            return
        tmpl = np.broadcast_to(np.asarray(tmpl, np.int32), (n,))
        if plen is None:
            lens = np.asarray(self.tpl.len, np.int32)
            plen = np.where(tmpl >= 0, lens[np.maximum(tmpl, 0)], 0)
        for name, value in (("conn", conn), ("ts", ts), ("dir", d), ("flags", flags), ("plen", plen),
                            ("tmpl", tmpl), ("app", app), ("xid", xid), ("kind", self.kind)):
            self.p[name].append(np.broadcast_to(np.asarray(value, PCOLS[name]), (n,)).copy())
        self.npk += n
        self.counts[self.kind] += n

    def uniform(self, lo, hi, n) -> np.ndarray:
        return self.rng.integers(lo, hi, n, dtype=np.int64)


def tcp_open(tr: Trace, c, t, rtt):
    tr.emit(c, t, 0, SYN)
    tr.emit(c, t + rtt, 1, SYN | ACK)
    tr.emit(c, t + rtt + 20, 0, ACK)
    return t + rtt + 20


def tls_open(tr: Trace, c, t, rtt, ch_tmpl, head_tmpl, fin_tmpl):
    """ClientHello, a 3-segment server flight, client ACK, client CCS+Finished. 6 packets."""
    n = len(c)
    t1 = t + 30
    tr.emit(c, t1, 0, PSH | ACK, tmpl=ch_tmpl)
    t2 = t1 + rtt + tr.uniform(300, 3 * MS, n)
    tr.emit(c, t2, 1, ACK, MSS, tmpl=head_tmpl)
    tr.emit(c, t2 + 15, 1, ACK, MSS, app=True)
    tr.emit(c, t2 + 30, 1, PSH | ACK, tr.uniform(300, 1100, n), app=True)
    tr.emit(c, t2 + 200, 0, ACK)
    t3 = t2 + tr.uniform(1 * MS, 4 * MS, n)
    tr.emit(c, t3, 0, PSH | ACK, 64, tmpl=fin_tmpl)
    return t3


def tcp_close(tr: Trace, c, t, rtt, initiator=0):
    tr.emit(c, t, initiator, FIN | ACK)
    tr.emit(c, t + rtt, 1 - np.asarray(initiator), FIN | ACK)
    tr.emit(c, t + rtt + 30, initiator, ACK)
    return t + rtt + 30


def stream(tr: Trace, c, t, nseg, gap, direction, last_len=None, app=True, first_tmpl=-1):
    """nseg full segments (the last one last_len bytes) one way, an ACK every second segment
    (and after the last) the other way. Returns the time of the final ACK."""
    nseg = np.broadcast_to(np.asarray(nseg, np.int64), c.shape)
    rows = np.repeat(c, nseg)
    j = ramp(nseg)
    ts = np.repeat(np.broadcast_to(t, c.shape), nseg) + j * np.repeat(np.broadcast_to(gap, c.shape), nseg)
    last = j == np.repeat(nseg, nseg) - 1
    plen = np.full(len(rows), MSS, np.int64)
    if last_len is not None:
        plen[last] = np.broadcast_to(last_len, c.shape)
    tmpl = np.where(j == 0, np.repeat(np.broadcast_to(first_tmpl, c.shape), nseg), -1)
    tr.emit(rows, ts, direction, np.where(last, PSH | ACK, ACK), plen, tmpl, app & (tmpl < 0))
    acked = (j % 2 == 1) | last
    gaps = np.repeat(np.broadcast_to(gap, c.shape), nseg)[acked]
    delay = np.minimum(tr.uniform(40, 400, int(acked.sum())), gaps - 5)   # before the next segment
    tr.emit(rows[acked], ts[acked] + delay, 1 - direction, ACK)
    return ts[last] + delay[np.flatnonzero(last[acked])]


class World:
    """Addresses, names and templates shared by the generators."""

    def __init__(self, tr: Trace, devices: int, rng: np.random.Generator) -> None:
        tpl = tr.tpl
        self.n = devices
        self.v6 = rng.random(devices) < 0.10
        self.ip = device_addresses(devices, 16, self.v6)
        self.mdm, self.dns, self.smb = addr_rows(list(MDM)), addr_rows(list(DNS)), addr_rows(list(SMB))
        self.provider = addr_rows([PROVIDER_IP])[0]
        self.head = tpl.add(server_flight_head(MSS, 1))
        self.cfin = tpl.add(CLIENT_FINISHED)
        # couriers: slot k = (k+1)-courier.push.apple.com -> one address (IPv4 and IPv6)
        c4 = [f"17.57.{144 + k // 250}.{1 + k % 250}" for k in range(COURIER_SLOTS)]
        c6 = [f"2620:149:a44:{1 + k // 250:x}::{1 + k % 250:x}" for k in range(COURIER_SLOTS)]
        self.courier_ip = np.stack([addr_rows(c4), addr_rows(c6)])            # [v6][slot]
        self.courier_q, self.courier_r = self._dns([f"{k + 1}-courier.push.apple.com" for k in range(COURIER_SLOTS)],
                                                   c4, c6, 60, tpl)
        self.ch_courier = tpl.add(client_hello("courier.push.apple.com", ["apns-security-v3"], 2))
        self.ch_provider = tpl.add(client_hello("api.push.apple.com", ["h2"], 3))
        self.ch_mdm = tpl.add(client_hello(MDM_NAME, ["h2", "http/1.1"], 4))
        self.mdm_q, self.mdm_r = self._dns([MDM_NAME], [MDM[0]], [MDM[1]], 300, tpl)
        s4 = [f"17.253.53.{201 + k}" for k in range(SWCDN_ADDRS)]
        s6 = [f"2620:149:a0c:f000::{0x201 + k:x}" for k in range(SWCDN_ADDRS)]
        self.swcdn_ip = np.stack([addr_rows(s4), addr_rows(s6)])
        self.swcdn_q, self.swcdn_r = self._dns(["swcdn.apple.com"] * SWCDN_ADDRS, s4, s6, 20, tpl)
        self.ch_swcdn = tpl.add(client_hello("swcdn.apple.com", ["http/1.1"], 5))
        self.smb_req = np.array([tpl.add(smb2_read_request(10 + k, k * READ_LEN)) for k in range(4)])
        self.smb_resp = np.array([tpl.add(smb2_read_response_head(10 + k)) for k in range(4)])
        # background: generic web servers, not Apple
        prefixes = [(104, 16), (151, 101), (142, 250), (13, 107), (23, 56), (52, 84), (185, 199), (93, 184)]
        b4 = [f"{prefixes[k % 8][0]}.{prefixes[k % 8][1]}.{(k * 37) % 250 + 1}.{(k * 11) % 250 + 2}"
              for k in range(BG_SERVERS)]
        b6 = [f"2606:4700:{k % 8:x}:{k:x}::{(k * 11) % 250 + 2:x}" for k in range(BG_SERVERS)]
        words = ("www", "cdn", "api", "static", "img", "media", "assets", "login")
        names = [f"{words[k % 8]}.site{k:03d}.example.net" for k in range(BG_SERVERS)]
        self.bg_ip = np.stack([addr_rows(b4), addr_rows(b6)])
        self.bg_q, self.bg_r = self._dns(names, b4, b6, 300, tpl)
        self.bg_ch = np.array([tpl.add(client_hello(n, ["h2", "http/1.1"], 100 + k)) for k, n in enumerate(names)])
        self.bg_get = np.array([tpl.add(b"GET /files/object%03d.bin HTTP/1.1\r\nHost: %s\r\nUser-Agent: curl/8.4.0\r\n"
                                        b"Accept: */*\r\n\r\n" % (k, n.encode())) for k, n in enumerate(names)])
        self.http_head = np.array([tpl.add(http_response_head(int(n))) for n in HTTP_CLASSES])
        # other hosts (PCs, printers...) for background traffic only
        self.n_hosts = max(1000, devices // 5)
        self.host_v6 = rng.random(self.n_hosts) < 0.10
        self.host_ip = device_addresses(self.n_hosts, 100, self.host_v6)

    @staticmethod
    def _dns(names, a4, a6, ttl, tpl):
        q = np.array([[tpl.add(dns_query(n, v6)) for n in names] for v6 in (False, True)])
        r = np.array([[tpl.add(dns_answer(n, v6, a, ttl)) for n, a in zip(names, aa)]
                      for v6, aa in ((False, a4), (True, a6))])
        return q, r          # [v6][index]


def dns_lookup(tr: Trace, w: World, key, v6, cip, t, q, r, answered=True) -> None:
    n = len(key)
    c = tr.conns(key, v6, cip, w.dns[v6.astype(int)], 53, 17, t)
    xid = tr.uniform(0, 65536, n)
    tr.emit(c, t, 0, 0, tmpl=q, xid=xid)
    if answered:
        tr.emit(c, t + tr.uniform(800, 15 * MS, n), 1, 0, tmpl=r, xid=xid)


# --------------------------------------------------------------------------- device traffic

def per_push_estimate(p_checkin, p_swcdn, p_smb, provider) -> float:
    checkin = 0.5 * 2 + 3 + 6 + 2.0 * 3.4 + 3
    swcdn = 2 + 3 + 6 + 1 + 200 * 1.5 + 3
    smb = 3 + 2 * (1 + SMB_READ_SEGS + SMB_READ_SEGS // 2) + 3
    return 3 + (3 if provider else 0) + p_checkin * (checkin + p_swcdn * swcdn + p_smb * smb)


def fleet(tr: Trace, w: World, packets: int, duration: int, provider: bool, rng) -> dict:
    D, T = w.n, duration * S
    p_checkin, p_swcdn, p_smb = 0.70, 0.15, 0.07
    base = 2 + 14 + 3 * 2.6
    share = packets * 0.5 / D
    lam = max(0.0, (share - base) / per_push_estimate(p_checkin, p_swcdn, p_smb, provider))
    v6i = w.v6.astype(int)
    dev = np.arange(D)

    # courier connection: DNS for N-courier, handshake, connect exchange
    tr.set_kind("dns")
    c0 = tr.uniform(1 * S, 600 * S, D)
    slot = rng.integers(0, COURIER_SLOTS, D)
    dns_lookup(tr, w, dev, w.v6, w.ip, c0 - tr.uniform(5 * MS, 40 * MS, D), w.courier_q[v6i, slot],
               w.courier_r[v6i, slot])
    tr.set_kind("courier_setup")
    rtt = tr.uniform(15 * MS, 60 * MS, D)
    cc = tr.conns(dev, w.v6, w.ip, w.courier_ip[v6i, slot], 5223, 6, c0)
    t = tls_open(tr, cc, tcp_open(tr, cc, c0, rtt), rtt, w.ch_courier, w.head, w.cfin)
    t4 = t + 100
    tr.emit(cc, t4, 0, PSH | ACK, tr.uniform(180, 260, D) + 5, app=True)        # connect
    tr.emit(cc, t4 + 2 * MS, 0, PSH | ACK, tr.uniform(100, 300, D) + 5, app=True)  # filter (topics)
    t5 = t4 + rtt + tr.uniform(1 * MS, 5 * MS, D)
    tr.emit(cc, t5, 1, PSH | ACK, tr.uniform(60, 120, D) + 5, app=True)           # connect response
    tr.emit(cc, t5 + 30 * MS, 0, ACK)

    # keepalives: every 15-30 min, device record, server answer 50-150 ms later, device ACK
    interval = tr.uniform(900 * S, 1800 * S, D)
    ka = c0[:, None] + tr.uniform(60 * S, 900 * S, D)[:, None] + np.arange(4)[None, :] * interval[:, None]
    ka = np.where(ka < T - 1 * S, ka, np.iinfo(np.int64).max)

    # pushes: Poisson per device, at least 150 s apart, 10 s after connecting, 65 s before the end
    gap = 150 * S
    room = (T - 65 * S) - (c0 + 10 * S)
    k = np.minimum(rng.poisson(lam, D), room // gap + 1)
    pdev = np.repeat(dev, k)
    j = ramp(k)
    u = rng.random(len(pdev))
    u = u[np.lexsort((u, pdev))]
    free = np.repeat(room - (k - 1) * gap, k)
    pt = np.repeat(c0 + 10 * S, k) + (u * free).astype(np.int64) + j * gap
    # a push right after the device's keepalive record is its answer, not a push: move it
    near = ((pt[:, None] - ka[pdev]) >= -S // 2) & ((pt[:, None] - ka[pdev]) <= 2 * S)
    pt = np.where(near.any(1), pt + 4 * S, pt)
    order = np.argsort(pt, kind="stable")
    pdev, pt = pdev[order], pt[order]
    npush = len(pt)
    size = tr.uniform(60, 400, npush) + 5
    pc, prtt = cc[pdev], rtt[pdev]
    tr.set_kind("push")
    tr.emit(pc, pt, 1, PSH | ACK, size, app=True)
    tr.emit(pc, pt + 30 * MS, 0, PSH | ACK, tr.uniform(30, 50, npush) + 5, app=True)   # device ack record
    tr.emit(pc, pt + 30 * MS + prtt, 1, ACK)

    tr.set_kind("keepalive")
    kd, kj = np.nonzero(ka < np.iinfo(np.int64).max)
    kt = ka[kd, kj]
    nk = len(kt)
    tr.emit(cc[kd], kt, 0, PSH | ACK, tr.uniform(60, 400, nk) + 5, app=True)
    ans = kt + tr.uniform(50 * MS, 150 * MS, nk)
    tr.emit(cc[kd], ans, 1, PSH | ACK, tr.uniform(60, 400, nk) + 5, app=True)
    tr.emit(cc[kd], ans + 30 * MS, 0, ACK)

    # the MDM server asks APNs (provider API) 50-400 ms before each push
    if provider and npush:
        tr.set_kind("provider")
        pv = tr.conns([D + 10**6], False, w.mdm[0], w.provider, 443, 6, [S // 2])
        prov_rtt = np.array([20 * MS])
        t = tls_open(tr, pv, tcp_open(tr, pv, np.array([S // 2]), prov_rtt), prov_rtt, w.ch_provider, w.head, w.cfin)
        req = pt - tr.uniform(50 * MS, 400 * MS, npush)
        pvc = np.repeat(pv, npush)
        tr.emit(pvc, req, 0, PSH | ACK, tr.uniform(250, 500, npush) + 5, app=True)
        tr.emit(pvc, req + tr.uniform(25 * MS, 45 * MS, npush), 1, PSH | ACK, tr.uniform(40, 90, npush) + 5, app=True)
        # no pure ACK: requests overlap (HTTP/2), the next request acknowledges the answer

    # check-ins after 70 % of pushes, 0.3-3 s later
    ci = rng.random(npush) < p_checkin
    cdev, ct = pdev[ci], pt[ci] + tr.uniform(300 * MS, 3 * S, int(ci.sum()))
    nci = len(ct)
    cv6 = w.v6[cdev]
    tr.set_kind("dns")
    m = rng.random(nci) < 0.5
    dns_lookup(tr, w, cdev[m], cv6[m], w.ip[cdev[m]], ct[m] - tr.uniform(3 * MS, 20 * MS, int(m.sum())),
               w.mdm_q[cv6[m].astype(int), 0], w.mdm_r[cv6[m].astype(int), 0])
    tr.set_kind("mdm_checkin")
    mc = tr.conns(cdev, cv6, w.ip[cdev], w.mdm[cv6.astype(int)], MDM_PORT, 6, ct)
    lrtt = tr.uniform(300, 2 * MS, nci)
    t = tls_open(tr, mc, tcp_open(tr, mc, ct, lrtt), lrtt, w.ch_mdm, w.head, w.cfin)
    nreq = rng.choice([1, 2, 3], nci, p=[0.3, 0.4, 0.3])
    cur = t + tr.uniform(200, 2 * MS, nci)
    for r in range(3):
        sel = nreq > r
        c, tt, n = mc[sel], cur[sel], int(sel.sum())
        tr.emit(c, tt, 0, PSH | ACK, tr.uniform(400, 900, n), app=True)
        rt = tt + lrtt[sel] + tr.uniform(20 * MS, 250 * MS, n)
        size = tr.uniform(300, 2600, n)
        size = np.where((size > MSS) & (size < MSS + 40), MSS, size)
        two = size > MSS
        tr.emit(c, rt, 1, np.where(two, ACK, PSH | ACK), np.minimum(size, MSS), app=True)
        tr.emit(c[two], rt[two] + 20, 1, PSH | ACK, size[two] - MSS, app=True)
        tr.emit(c, rt + 40 * MS, 0, ACK)
        cur[sel] = rt + tr.uniform(60 * MS, 400 * MS, n)
    end = tcp_close(tr, mc, cur + tr.uniform(100 * MS, 2 * S, nci), lrtt)

    # follow-ups inside the window: a software download from swcdn.apple.com, an SMB read
    sw = rng.random(nci) < p_swcdn
    fdev, ft, fv6 = cdev[sw], end[sw] + tr.uniform(1 * S, 20 * S, int(sw.sum())), cv6[sw]
    nf, fi = len(ft), fv6.astype(int)
    which = rng.integers(0, SWCDN_ADDRS, nf)
    tr.set_kind("dns")
    dns_lookup(tr, w, fdev, fv6, w.ip[fdev], ft - tr.uniform(3 * MS, 20 * MS, nf), w.swcdn_q[fi, which],
               w.swcdn_r[fi, which])
    tr.set_kind("swcdn")
    sc = tr.conns(fdev, fv6, w.ip[fdev], w.swcdn_ip[fi, which], 443, 6, ft)
    srtt = tr.uniform(5 * MS, 30 * MS, nf)
    t = tls_open(tr, sc, tcp_open(tr, sc, ft, srtt), srtt, w.ch_swcdn, w.head, w.cfin) + 1 * MS
    tr.emit(sc, t, 0, PSH | ACK, tr.uniform(300, 600, nf), app=True)
    nseg = tr.uniform(100, 300, nf)
    done = stream(tr, sc, t + srtt + tr.uniform(5 * MS, 30 * MS, nf), nseg, tr.uniform(80, 400, nf), 1)
    tcp_close(tr, sc, done + tr.uniform(50 * MS, 500 * MS, nf), srtt)

    sm = rng.random(nci) < p_smb
    mdev, mt, mv6 = cdev[sm], end[sm] + tr.uniform(1 * S, 20 * S, int(sm.sum())), cv6[sm]
    nm = len(mt)
    tr.set_kind("smb")
    bc = tr.conns(mdev, mv6, w.ip[mdev], w.smb[mv6.astype(int)], 445, 6, mt)
    brtt = tr.uniform(200, 1 * MS, nm)
    t = tcp_open(tr, bc, mt, brtt) + 1 * MS
    for r in range(2):
        tr.emit(bc, t, 0, PSH | ACK, tmpl=w.smb_req[r])
        t = stream(tr, bc, t + brtt + tr.uniform(500, 3 * MS, nm), SMB_READ_SEGS, tr.uniform(20, 100, nm), 1,
                   last_len=SMB_READ_LAST, app=False, first_tmpl=w.smb_resp[r]) + tr.uniform(1 * MS, 5 * MS, nm)
    tcp_close(tr, bc, t + tr.uniform(1 * S, 10 * S, nm), brtt)

    return {"pushes_per_device_hour": round(lam * 3600 * S / T, 3), "courier_connections": D,
            "keepalives": nk, "pushes": npush, "checkins": nci, "provider_requests": npush if provider else 0,
            "followups_swcdn": nf, "followups_smb": nm, "devices_with_pushes": int((k > 0).sum())}


# --------------------------------------------------------------------------- background

def _bg_clients(tr: Trace, w: World, n: int, rng):
    """70 % from the managed devices, 30 % from other hosts."""
    own = rng.random(n) < 0.7
    d = rng.integers(0, w.n, n)
    h = rng.integers(0, w.n_hosts, n)
    key = np.where(own, d, w.n + h)
    v6 = np.where(own, w.v6[d], w.host_v6[h])
    ip = np.where(own[:, None], w.ip[d], w.host_ip[h])
    server = np.minimum((BG_SERVERS * rng.random(n) ** 2).astype(np.int64), BG_SERVERS - 1)   # a few popular
    return key, v6, ip, server


def bg_https(tr: Trace, w: World, n: int, T: int, rng) -> None:
    key, v6, ip, srv = _bg_clients(tr, w, n, rng)
    vi = v6.astype(int)
    t0 = tr.uniform(S // 5, T - 40 * S, n)
    tr.set_kind("bg_dns")
    m = rng.random(n) < 0.5
    dns_lookup(tr, w, key[m], v6[m], ip[m], t0[m] - tr.uniform(3 * MS, 30 * MS, int(m.sum())),
               w.bg_q[vi[m], srv[m]], w.bg_r[vi[m], srv[m]])
    tr.set_kind("bg_https")
    c = tr.conns(key, v6, ip, w.bg_ip[vi, srv], 443, 6, t0)
    rtt = tr.uniform(5 * MS, 80 * MS, n)
    cur = tls_open(tr, c, tcp_open(tr, c, t0, rtt), rtt, w.bg_ch[srv], w.head, w.cfin) + 1 * MS
    nex = rng.integers(1, 9, n)
    for r in range(8):
        sel = nex > r
        cs, tt, k = c[sel], cur[sel], int(sel.sum())
        tr.emit(cs, tt, 0, PSH | ACK, tr.uniform(80, 700, k), app=True)
        rt = tt + rtt[sel] + tr.uniform(5 * MS, 200 * MS, k)
        size = tr.uniform(200, 2800, k)
        size = np.where((size > MSS) & (size < MSS + 40), MSS, size)
        two = size > MSS
        tr.emit(cs, rt, 1, np.where(two, ACK, PSH | ACK), np.minimum(size, MSS), app=True)
        tr.emit(cs[two], rt[two] + 30, 1, PSH | ACK, size[two] - MSS, app=True)
        tr.emit(cs, rt + 40 * MS, 0, ACK)
        cur[sel] = rt + tr.uniform(50 * MS, 3 * S, k)
    how = rng.random(n)
    rst = how < 0.05
    tr.emit(c[rst], cur[rst], 0, RST | ACK)
    fin = ~rst
    tcp_close(tr, c[fin], cur[fin], rtt[fin], np.where(how[fin] < 0.15, 1, 0))


def bulk_packets(https, upload, dns, nseg) -> np.ndarray:
    acks = nseg // 2 + nseg % 2
    return 2 * dns + 3 + np.where(https, 6, 0) + 1 + nseg + acks + np.where(upload, 1, 0) + 3


def bg_bulk(tr: Trace, w: World, budget: int, T: int, rng) -> int:
    n = int(budget / 600) + 50
    https = rng.random(n) < 0.7
    upload = https & (rng.random(n) < 0.2)
    dns = rng.random(n) < 0.5
    nseg = np.clip(rng.lognormal(np.log(300), 1.0, n), 20, 4000).astype(np.int64)
    cls = np.abs(np.log(nseg[:, None] / HTTP_CLASSES[None, :])).argmin(1)
    nseg = np.where(https, nseg, HTTP_CLASSES[cls])
    keep = np.cumsum(bulk_packets(https, upload, dns, nseg)) <= budget
    https, upload, dns, nseg, cls = https[keep], upload[keep], dns[keep], nseg[keep], cls[keep]
    n = int(keep.sum())
    key, v6, ip, srv = _bg_clients(tr, w, n, rng)
    vi = v6.astype(int)
    t0 = tr.uniform(S // 5, T - 30 * S, n)
    tr.set_kind("bg_dns")
    dns_lookup(tr, w, key[dns], v6[dns], ip[dns], t0[dns] - tr.uniform(3 * MS, 30 * MS, int(dns.sum())),
               w.bg_q[vi[dns], srv[dns]], w.bg_r[vi[dns], srv[dns]])
    rtt = tr.uniform(5 * MS, 80 * MS, n)
    gap = tr.uniform(80, 1000, n)
    for is_https in (True, False):
        tr.set_kind("bg_bulk_https" if is_https else "bg_bulk_http")
        sel = https == is_https
        c = tr.conns(key[sel], v6[sel], ip[sel], w.bg_ip[vi[sel], srv[sel]], 443 if is_https else 80, 6, t0[sel])
        r = rtt[sel]
        t = tcp_open(tr, c, t0[sel], r)
        if is_https:
            t = tls_open(tr, c, t, r, w.bg_ch[srv[sel]], w.head, w.cfin) + 1 * MS
            up = upload[sel]
            tr.emit(c, t, 0, PSH | ACK, tr.uniform(300, 700, len(c)), app=True)
            start = t + np.where(up, 2 * MS, r + tr.uniform(5 * MS, 50 * MS, len(c)))
            end = np.empty(len(c), np.int64)
            for direction, part in ((1, ~up), (0, up)):
                end[part] = stream(tr, c[part], start[part], nseg[sel][part], gap[sel][part], direction)
            resp = end[up] + r[up] + tr.uniform(5 * MS, 100 * MS, int(up.sum()))
            tr.emit(c[up], resp, 1, PSH | ACK, tr.uniform(100, 400, int(up.sum())), app=True)
            end[up] = resp
        else:
            tr.emit(c, t + 1 * MS, 0, PSH | ACK, tmpl=w.bg_get[srv[sel]])
            end = stream(tr, c, t + 1 * MS + r + tr.uniform(5 * MS, 50 * MS, len(c)), nseg[sel], gap[sel], 1,
                         app=False, first_tmpl=w.http_head[cls[sel]])
        tcp_close(tr, c, end + tr.uniform(10 * MS, 2 * S, len(c)), r)
    return n


def bg_dns_fill(tr: Trace, w: World, count: int, T: int, rng) -> None:
    """Pad with DNS lookups (the last one unanswered when count is odd) to hit --packets exactly."""
    tr.set_kind("bg_dns")
    n = (count + 1) // 2
    key, v6, ip, srv = _bg_clients(tr, w, n, rng)
    vi = v6.astype(int)
    t = tr.uniform(S // 5, T - S, n)
    answered = np.ones(n, bool)
    if count % 2:
        answered[-1] = False
    dns_lookup(tr, w, key[answered], v6[answered], ip[answered], t[answered], w.bg_q[vi, srv][answered],
               w.bg_r[vi, srv][answered])
    dns_lookup(tr, w, key[~answered], v6[~answered], ip[~answered], t[~answered], w.bg_q[vi, srv][~answered],
               w.bg_r[vi, srv][~answered], answered=False)


# --------------------------------------------------------------------------- writing

REC = [("sec", "<u4"), ("usec", "<u4"), ("incl", "<u4"), ("orig", "<u4")]
ETH = [("dmac", "u1", (6,)), ("smac", "u1", (6,)), ("etype", ">u2")]
IP4 = [("vihl", "u1"), ("tos", "u1"), ("tlen", ">u2"), ("ipid", ">u2"), ("frag", ">u2"), ("ttl", "u1"),
       ("proto", "u1"), ("ipsum", ">u2"), ("src", "u1", (4,)), ("dst", "u1", (4,))]
IP6 = [("vtc", ">u4"), ("plen", ">u2"), ("nh", "u1"), ("hlim", "u1"), ("src", "u1", (16,)), ("dst", "u1", (16,))]
TCP = [("sport", ">u2"), ("dport", ">u2"), ("seq", ">u4"), ("ack", ">u4"), ("doff", "u1"), ("flags", "u1"),
       ("win", ">u2"), ("l4sum", ">u2"), ("urp", ">u2")]
UDP = [("sport", ">u2"), ("dport", ">u2"), ("ulen", ">u2"), ("l4sum", ">u2")]
LAYOUTS = {(v6, tcp): np.dtype(REC + ETH + (IP6 if v6 else IP4) + (TCP if tcp else UDP))
           for v6 in (False, True) for tcp in (False, True)}


def finish(tr: Trace, seed: int):
    P = {k: np.concatenate(v) for k, v in tr.p.items()}
    C = {k: np.concatenate(v) for k, v in tr.c.items()}
    rng = np.random.default_rng(seed + 1)
    nconn = len(C["key"])
    # client ports: per client, in order of connection start, distinct for 16,384 connections
    order = np.lexsort((np.arange(nconn), C["t0"], C["key"]))
    key = C["key"][order]
    first = np.r_[True, key[1:] != key[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(nconn), 0))
    rank = np.arange(nconn) - start
    cport = np.empty(nconn, np.int64)
    cport[order] = 49152 + (rank * 7 + key * 131) % 16384
    C["cport"] = cport
    C["isn"] = rng.integers(0, 2**32, (nconn, 2), dtype=np.int64)
    # sequence numbers: what each side sent before this packet, per connection
    n = len(P["ts"])
    row = np.arange(n)
    o = np.lexsort((row, P["ts"], P["conn"]))
    conn, d, fl = P["conn"][o], P["dir"][o].astype(np.int64), P["flags"][o]
    cons = P["plen"][o].astype(np.int64) + ((fl & SYN) > 0) + ((fl & FIN) > 0)
    sent = np.stack([np.where(d == 0, cons, 0), np.where(d == 1, cons, 0)])
    before = np.cumsum(sent, axis=1) - sent
    firstc = np.r_[True, conn[1:] != conn[:-1]]
    cstart = np.maximum.accumulate(np.where(firstc, np.arange(n), 0))
    before -= before[:, cstart]
    isn = C["isn"][conn]
    own = np.where(d == 0, isn[:, 0] + before[0], isn[:, 1] + before[1]) & 0xFFFFFFFF
    other = np.where(d == 0, isn[:, 1] + before[1], isn[:, 0] + before[0]) & 0xFFFFFFFF
    P["seq"] = np.empty(n, np.int64)
    P["ack"] = np.empty(n, np.int64)
    P["seq"][o] = own
    P["ack"][o] = np.where(fl & ACK, other, 0)
    g = np.lexsort((row, P["ts"]))
    return P, C, g


def write_pcap(path: Path, tr: Trace, P: dict, C: dict, g: np.ndarray, seed: int, chunk: int = 250_000) -> int:
    pool = np.random.default_rng(seed + 2).integers(0, 256, 1 << 20, dtype=np.uint8)
    blob = np.frombuffer(bytes(tr.tpl.blob), np.uint8)
    toff, tlen = np.asarray(tr.tpl.off, np.int64), np.asarray(tr.tpl.len, np.int64)
    cmac = np.zeros((len(C["key"]), 6), np.uint8)
    cmac[:, 0] = 0x02
    cmac[:, 2:] = C["key"].astype(">u4").view(np.uint8).reshape(-1, 4)
    router = np.frombuffer(ROUTER_MAC, np.uint8)
    tmp = path.with_name(path.name + ".tmp")
    size = 0
    with open(tmp, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        size += 24
        for a in range(0, len(g), chunk):
            idx = g[a:a + chunk]
            conn = P["conn"][idx]
            d = P["dir"][idx]
            plen = P["plen"][idx].astype(np.int64)
            v6 = C["v6"][conn]
            tcp = C["proto"][conn] == 6
            hl = 14 + np.where(v6, 40, 20) + np.where(tcp, 20, 8)
            rec = 16 + hl + plen
            off = np.cumsum(rec) - rec
            total = int(rec.sum())
            out = np.tile(pool, total // pool.size + 1)[:total]
            c2s = d == 0
            ts = BASE_EPOCH * S + P["ts"][idx]
            for (is6, istcp), dt in LAYOUTS.items():
                m = (v6 == is6) & (tcp == istcp)
                k = int(m.sum())
                if not k:
                    continue
                h = np.zeros(k, dt)
                cm, dm, pm = conn[m], c2s[m], plen[m]
                h["sec"], h["usec"] = ts[m] // S, ts[m] % S
                h["incl"] = h["orig"] = hl[m] + pm
                h["dmac"] = np.where(dm[:, None], router, cmac[cm])
                h["smac"] = np.where(dm[:, None], cmac[cm], router)
                l4 = (20 if istcp else 8) + pm
                alen = 16 if is6 else 4
                h["src"] = np.where(dm[:, None], C["cip"][cm, :alen], C["sip"][cm, :alen])
                h["dst"] = np.where(dm[:, None], C["sip"][cm, :alen], C["cip"][cm, :alen])
                if is6:
                    h["etype"], h["vtc"], h["plen"], h["nh"] = 0x86DD, 6 << 28, l4, 6 if istcp else 17
                    h["hlim"] = np.where(dm, 64, 56)
                else:
                    h["etype"], h["vihl"], h["tlen"], h["proto"] = 0x0800, 0x45, 20 + l4, 6 if istcp else 17
                    h["ipid"] = (idx[m] * 7) & 0xFFFF
                    h["frag"], h["ttl"] = 0x4000, np.where(dm, 64, 56)
                cport, sport = C["cport"][cm], C["sport"][cm]
                h["sport"] = np.where(dm, cport, sport)
                h["dport"] = np.where(dm, sport, cport)
                if istcp:
                    h["seq"], h["ack"] = P["seq"][idx[m]], P["ack"][idx[m]]
                    h["doff"], h["flags"] = 0x50, P["flags"][idx[m]]
                    h["win"] = np.where(P["flags"][idx[m]] & SYN, 65535, 2048)
                else:
                    h["ulen"] = l4
                hb = h.view(np.uint8).reshape(k, dt.itemsize)
                if not is6:   # IPv4 header checksum
                    words = hb[:, 30:50].reshape(k, 10, 2).astype(np.int64)
                    s = ((words[:, :, 0] << 8) | words[:, :, 1]).sum(1)
                    s = (s & 0xFFFF) + (s >> 16)
                    s = (s & 0xFFFF) + (s >> 16)
                    s = ~s & 0xFFFF
                    hb[:, 40], hb[:, 41] = s >> 8, s & 0xFF
                out[off[m][:, None] + np.arange(dt.itemsize)] = hb
            poff = off + 16 + hl
            tm = P["tmpl"][idx]
            t = np.flatnonzero(tm >= 0)
            if t.size:
                n = np.minimum(tlen[tm[t]], plen[t])
                r = ramp(n)
                out[np.repeat(poff[t], n) + r] = blob[np.repeat(toff[tm[t]], n) + r]
            t = np.flatnonzero(P["app"][idx])
            if t.size:
                body = plen[t] - 5
                rec5 = np.stack([np.full(t.size, 0x17), np.full(t.size, 3), np.full(t.size, 3),
                                 body >> 8, body & 0xFF], 1).astype(np.uint8)
                out[poff[t][:, None] + np.arange(5)] = rec5
            xid = P["xid"][idx]
            t = np.flatnonzero(xid >= 0)
            out[poff[t]], out[poff[t] + 1] = xid[t] >> 8, xid[t] & 0xFF
            udp_checksums(out, off, hl, plen, v6, ~tcp)
            fh.write(memoryview(out))
            size += total
    os.replace(tmp, path)
    return size


def udp_checksums(out: np.ndarray, off: np.ndarray, hl: np.ndarray, plen: np.ndarray, v6: np.ndarray,
                  udp: np.ndarray) -> None:
    """UDP checksums (zero is not allowed over IPv6), from the bytes already in the buffer."""
    rows = np.flatnonzero(udp)
    if not rows.size:
        return
    ip = off[rows] + 30
    alen = np.where(v6[rows], 16, 4)
    src = ip + np.where(v6[rows], 8, 12)
    l4 = off[rows] + 16 + hl[rows] - 8
    ulen = 8 + plen[rows]
    # pseudo header addresses (src and dst are adjacent in both IPv4 and IPv6) + UDP header and data
    starts = np.concatenate([src, l4])
    lens = np.concatenate([2 * alen, ulen])
    owner = np.concatenate([np.arange(rows.size), np.arange(rows.size)])
    r = ramp(lens)
    vals = out[np.repeat(starts, lens) + r].astype(np.int64) << np.where(r % 2 == 0, 8, 0)
    total = np.bincount(np.repeat(owner, lens), weights=vals, minlength=rows.size).astype(np.int64)
    total += 17 + ulen
    for _ in range(3):
        total = (total & 0xFFFF) + (total >> 16)
    csum = ~total & 0xFFFF
    csum[csum == 0] = 0xFFFF
    out[l4 + 6], out[l4 + 7] = csum >> 8, csum & 0xFF


def build(packets: int, devices: int, out: Path, seed: int, duration: int, provider: bool = True,
          quiet: bool = False) -> dict:
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    tr = Trace(rng)
    w = World(tr, devices, rng)
    T = duration * S
    plan = fleet(tr, w, packets, duration, provider, rng)
    device_pkts = tr.npk
    left = packets - tr.npk
    if left < 0:
        print(f"warning: device traffic alone is {tr.npk:,} packets (> --packets); no background", file=sys.stderr)
    else:
        short = int(0.35 * left / 33)
        bg_https(tr, w, short, T, rng)
        bulk = bg_bulk(tr, w, packets - tr.npk, T, rng)
        bg_dns_fill(tr, w, packets - tr.npk, T, rng)
        plan["background_https_sessions"] = short
        plan["background_bulk_transfers"] = bulk
    P, C, g = finish(tr, seed)
    plan_s = time.perf_counter() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    size = write_pcap(out, tr, P, C, g, seed)
    secs = time.perf_counter() - t0
    ts = P["ts"]
    info = {
        "out": str(out), "packets": int(len(ts)), "bytes": size, "seed": seed, "devices": devices,
        "devices_ipv6": int(w.v6.sum()), "other_hosts": w.n_hosts, "connections": int(len(C["key"])),
        "first_ts": BASE_EPOCH + float(ts.min()) / S, "last_ts": BASE_EPOCH + float(ts.max()) / S,
        "duration_s": duration, "mdm_host": f"{MDM_NAME}:{MDM_PORT}",
        "planned": plan, "device_packets": device_pkts,
        "packets_by_kind": {k: int(v) for k, v in zip(KINDS, tr.counts)},
        "seconds": round(secs, 2), "plan_seconds": round(plan_s, 2),
    }
    out.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    if not quiet:
        print(f"wrote {info['packets']:,} packets ({size / 1e6:,.1f} MB) to {out} in {secs:.1f} s "
              f"(plan {plan_s:.1f} s)")
        print(f"  {devices:,} devices ({info['devices_ipv6']:,} IPv6), {plan['pushes']:,} pushes, "
              f"{plan['checkins']:,} check-ins, {plan['followups_swcdn']:,} swcdn + {plan['followups_smb']:,} "
              f"SMB follow-ups, {info['connections']:,} connections")
        print("  packets: " + ", ".join(f"{k} {v:,}" for k, v in info["packets_by_kind"].items()))
        print(f"  summary: {out.with_suffix('.json')}")
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=2_000_000, help="frames to write (default 2,000,000)")
    ap.add_argument("--devices", type=int, default=5_000, help="managed devices (default 5,000)")
    ap.add_argument("--duration", type=int, default=3600, help="seconds of traffic (default 3600)")
    ap.add_argument("--seed", type=int, default=20240501, help="random seed (same seed, same bytes)")
    ap.add_argument("--no-provider", action="store_true",
                    help="leave out the MDM server's connection to the APNs provider API")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output pcap (default {DEFAULT_OUT})")
    args = ap.parse_args(argv)
    if args.packets <= 0 or args.devices <= 0 or args.duration < 900:
        ap.error("--packets and --devices must be positive, --duration at least 900")
    build(args.packets, args.devices, args.out, args.seed, args.duration, not args.no_provider)
    return 0


if __name__ == "__main__":
    sys.exit(main())
