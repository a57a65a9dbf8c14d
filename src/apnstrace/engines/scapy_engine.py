"""Reference engine: scapy's readers and layer classes, flows in plain Python dicts.

Built the slow, obvious way so that it checks the fast engine independently; it follows
docs/flows.md literally. Each header is handed to its scapy layer class only once enough of
it was captured (scapy raises on short buffers); what was captured decides which fields are
trusted. Nothing here is vectorized and nothing is shared with the fast engine.
"""
from __future__ import annotations

import ipaddress
import math

import gzip
import struct
import zlib
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from apnstrace import schema
from apnstrace.errors import CaptureError, EngineError
from apnstrace.flows.finalize import EVIDENCE
from apnstrace.options import FlowOptions
from apnstrace.stats import FileProblem, RunStats

try:
    from scapy.contrib.chdlc import CHDLC
    from scapy.contrib.mpls import MPLS
    from scapy.error import Scapy_Exception
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment
    from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1Q, Ether
    from scapy.layers.ppi import PPI
    from scapy.layers.ppp import HDLC, PPP, PPPoE
    from scapy.utils import RawPcapNgReader, RawPcapReader
except ImportError as exc:  # pragma: no cover - scapy is a dependency
    raise EngineError(f"the scapy engine needs scapy: {exc}") from exc

# TCP flag bits
FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10

ETH_IPV4, ETH_IPV6 = 0x0800, 0x86DD
VLAN_TYPES = (0x8100, 0x88A8, 0x9100, 0x9200)  # 802.1Q, 802.1ad, old QinQ TPIDs
MPLS_TYPES = (0x8847, 0x8848)                  # unicast, multicast label stacks
PPPOE_SESSION = 0x8864
FABRICPATH = 0x8903                            # Cisco FabricPath: 2-byte tag + inner Ethernet
MAX_EXT_HEADERS = 8                            # IPv6 extension headers walked, at most
MAX_ENCAPSULATIONS = 8                         # VLAN tags, MPLS labels, PPPoE, FabricPath
PPP_IPV4, PPP_IPV6 = 0x0021, 0x0057
ETHERNET, PPP_LINK, C_HDLC, SLL, SLL2, PPI_LINK = 1, 9, 104, 113, 276, 192
CHDLC_ADDRESSES = (0x0F, 0x8F)                 # Cisco HDLC framing, also under link type 9
RAW_IP_LINKTYPES = (101, 12, 14)              # version nibble decides
LOOPBACK_LINKTYPES = (0, 108)
AF_INET = 2
AF_INET6 = (10, 23, 24, 28, 30)               # Linux, Windows, BSDs, macOS
IPV6_EXT = (0, 43, 44, 60, 51, 135, 139, 140)  # walked extension headers
ICMP4_ERRORS = (3, 4, 5, 11, 12)
ICMP6_ERRORS = (1, 2, 3, 4)
MAX_RECORD = 262_144                          # Wireshark's limit for one record
MAX_WIRE_LEN = (1 << 31) - 1                  # Wireshark keeps frame lengths in an int32
READ_SIZE = 16 << 20                          # never cut a record short while reading


class _Drop(Exception):
    """A frame that does not count in a flow; `kind` is 'skipped' or 'malformed'."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def _skip(reason: str) -> _Drop:
    return _Drop("skipped", reason)


def _bad(reason: str) -> _Drop:
    return _Drop("malformed", reason)


@dataclass(slots=True)
class Frame:
    ts: float
    wirelen: int
    transport: str
    src: tuple[str, int]
    dst: tuple[str, int]
    vlan: int | None
    flags: int | None = None     # None: TCP flags not captured (and UDP)
    seq: int | None = None       # known only with the flags
    payload: int = 0             # TCP/UDP payload length from the IP length fields
    ttl: int = -1                # IPv4 TTL / IPv6 hop limit

    @property
    def syn_only(self) -> bool:
        return self.flags is not None and bool(self.flags & SYN) and not self.flags & ACK

    @property
    def syn_ack(self) -> bool:
        return self.flags is not None and bool(self.flags & SYN) and bool(self.flags & ACK)

    def has(self, bit: int) -> bool:
        return self.flags is not None and bool(self.flags & bit)


# --------------------------------------------------------------------------- decoding

def decode(linktype: int, data: bytes, ts: float, wirelen: int, stats: RunStats) -> Frame | None:
    """Decode one record; count it as skipped/malformed; return the flow frame or None."""
    notes: list[str] = []
    try:
        frame = _decode(linktype, data, ts, wirelen, notes)
    except _Drop as drop:
        if drop.kind == "icmp_error":   # evidence, not a flow packet
            stats.icmp_errors += 1
            stats.skipped["icmp_error"] += 1
        else:
            getattr(stats, drop.kind)[drop.reason] += 1
        return None
    except Exception:  # scapy could not decode it: malformed, never raised
        stats.malformed["decode_error"] += 1
        return None
    if notes:  # one reason per frame: the outermost problem
        stats.malformed[notes[0]] += 1
    return frame


def _link(linktype: int, data: bytes) -> tuple[int, int, bool]:
    """(ethertype, offset of what follows, whether the encapsulation walk applies)."""
    if linktype == PPI_LINK:
        if len(data) < 8:
            raise _bad("link_header_truncated")
        ppi = PPI(data[:8])
        if ppi.dlt != ETHERNET:
            raise _skip("linktype_unsupported")
        data = data[ppi.len:]
        eth_off = ppi.len
        linktype = ETHERNET
    else:
        eth_off = 0
    if linktype == ETHERNET:
        if len(data) < 14:
            raise _bad("link_header_truncated")
        eth = Ether(data[:14])   # scapy hands a length (<= 1500) to Dot3, which has no type
        if not isinstance(eth, Ether) or eth.type <= 1500:
            raise _skip("not_ip")
        return eth.type, eth_off + 14, True
    if linktype == SLL:
        if len(data) < 16:
            raise _bad("link_header_truncated")
        return CookedLinux(data[:16]).proto, 16, True
    if linktype == SLL2:
        if len(data) < 20:
            raise _bad("link_header_truncated")
        return CookedLinuxV2(data[:20]).proto, 20, True
    if linktype == C_HDLC or (linktype == PPP_LINK and data[:1] and data[0] in CHDLC_ADDRESSES):
        if len(data) < 4:
            raise _bad("link_header_truncated")
        return CHDLC(data[:4]).proto, 4, True
    if linktype == PPP_LINK:
        if len(data) < 4:   # the longest PPP header (address, control, 2-byte protocol)
            raise _bad("link_header_truncated")
        off = 0
        if isinstance(PPP(data[:2]), HDLC) and data[1] == 0x03:   # ff 03: HDLC-like framing
            off = 2
        ppp = PPP(data[off:off + 2])
        size = 1 if data[off] & 1 else 2     # protocol-field compression
        proto = {PPP_IPV4: ETH_IPV4, PPP_IPV6: ETH_IPV6}.get(int(ppp.proto), 0)
        return proto, off + size, False
    if linktype in LOOPBACK_LINKTYPES:
        if len(data) < 4:
            raise _bad("link_header_truncated")
        # DLT_NULL is in the capturing host's byte order, DLT_LOOP in network order:
        # accept the family in either.
        families = struct.unpack("<I", data[:4]) + struct.unpack(">I", data[:4])
        if AF_INET in families:
            return ETH_IPV4, 4, False
        if any(f in AF_INET6 for f in families):
            return ETH_IPV6, 4, False
        return 0, 4, False
    if linktype in RAW_IP_LINKTYPES:
        if not data:
            raise _bad("link_header_truncated")
        version = data[0] >> 4
        if version not in (4, 6):
            raise _bad("ip_bad_version")
        return (ETH_IPV4 if version == 4 else ETH_IPV6), 0, False
    if linktype == 228:
        return ETH_IPV4, 0, False
    if linktype == 229:
        return ETH_IPV6, 0, False
    raise _skip("linktype_unsupported")


def _encapsulations(data: bytes, ethertype: int, off: int) -> tuple[int, int, int | None]:
    """Walk VLAN tags, MPLS labels, PPPoE sessions and FabricPath up to IP (docs/flows.md)."""
    vlan: int | None = None
    for _ in range(MAX_ENCAPSULATIONS):
        if ethertype in VLAN_TYPES:
            if len(data) - off < 4:
                raise _bad("vlan_header_truncated")
            tag = Dot1Q(data[off:off + 4])
            if vlan is None:
                vlan = int(tag.vlan)
            ethertype = int(tag.type)
            off += 4
        elif ethertype in MPLS_TYPES:
            if len(data) - off < 5:   # the label, and the byte after it
                raise _bad("mpls_header_truncated")
            label = MPLS(data[off:off + 4])
            off += 4
            if label.s:               # bottom of stack: IP by its version nibble
                ethertype = {4: ETH_IPV4, 6: ETH_IPV6}.get(data[off] >> 4, 0)
        elif ethertype == PPPOE_SESSION:
            if len(data) - off < 8:   # PPPoE header and the PPP protocol
                raise _bad("pppoe_header_truncated")
            PPPoE(data[off:off + 6])
            proto = struct.unpack("!H", data[off + 6:off + 8])[0]
            ethertype = {PPP_IPV4: ETH_IPV4, PPP_IPV6: ETH_IPV6}.get(proto, 0)
            off += 8
        elif ethertype == FABRICPATH:
            if len(data) - off < 16:  # 2-byte tag and the inner Ethernet header
                raise _bad("link_header_truncated")
            ethertype = struct.unpack("!H", data[off + 14:off + 16])[0]
            off += 16
        else:
            break
    return ethertype, off, vlan


def _decode(linktype: int, data: bytes, ts: float, wirelen: int, notes: list[str]) -> Frame | None:
    ethertype, off, walk = _link(linktype, data)
    vlan = None
    if walk:
        ethertype, off, vlan = _encapsulations(data, ethertype, off)
    if ethertype == ETH_IPV4:
        return _decode_ipv4(data, off, ts, wirelen, vlan, notes)
    if ethertype == ETH_IPV6:
        return _decode_ipv6(data, off, ts, wirelen, vlan, notes)
    raise _skip("not_ip")


def _decode_ipv4(data: bytes, off: int, ts: float, wirelen: int, vlan: int | None,
                 notes: list[str]) -> Frame | None:
    if len(data) - off < 20:
        raise _bad("ipv4_header_truncated")
    ip = IP(data[off:off + 20])  # fixed header only: options are skipped by IHL
    if ip.version != 4:
        raise _bad("ip_bad_version")
    hlen = ip.ihl * 4
    if hlen < 20:
        raise _bad("ipv4_bad_header_length")
    if len(data) - off < hlen:
        raise _bad("ipv4_header_truncated")
    if ip.frag > 0:
        raise _skip("ip_fragment_nonfirst")
    # Total length 0 is TCP segmentation offload (as Wireshark reads it): the frame's length.
    total = ip.len if ip.len else wirelen - off
    l4_len = total - hlen
    if l4_len < 0:   # Wireshark stops at a total length shorter than the header, and so do we
        raise _bad("ipv4_bad_total_length")
    frame = _decode_l4(ip.proto, False, data, off + hlen, l4_len, ts, wirelen,
                       ip.src, ip.dst, vlan, notes)
    frame.ttl = int(ip.ttl)
    return frame


def _decode_ipv6(data: bytes, off: int, ts: float, wirelen: int, vlan: int | None,
                 notes: list[str]) -> Frame | None:
    if len(data) - off < 40:
        raise _bad("ipv6_header_truncated")
    ip6 = IPv6(data[off:off + 40])
    if ip6.version != 6:
        raise _bad("ip_bad_version")
    nh = ip6.nh
    pos = off + 40
    ext_len = 0
    walked = 0
    while nh in IPV6_EXT:
        if walked == MAX_EXT_HEADERS:
            raise _bad("ipv6_ext_header_truncated")
        walked += 1
        if len(data) - pos < 8:  # every extension header is at least 8 bytes
            raise _bad("ipv6_ext_header_truncated")
        if nh == 44:
            frag = IPv6ExtHdrFragment(data[pos:pos + 8])
            if frag.offset > 0:
                raise _skip("ip_fragment_nonfirst")
            hlen = 8
        elif nh == 51:   # AH: length in 4-byte units, minus 2
            hlen = (data[pos + 1] + 2) * 4
        else:            # length in 8-byte units, not counting the first 8
            hlen = (data[pos + 1] + 1) * 8
        if len(data) - pos < hlen:
            raise _bad("ipv6_ext_header_truncated")
        nh = data[pos]
        pos += hlen
        ext_len += hlen
    # Payload length 0 is a jumbogram or offload: the frame's length says how much follows.
    l4_len = (ip6.plen if ip6.plen else wirelen - off - 40) - ext_len
    if l4_len < 0:
        notes.append("ipv6_bad_payload_length")
        l4_len = 0
    frame = _decode_l4(nh, True, data, pos, l4_len, ts, wirelen, ip6.src, ip6.dst, vlan, notes)
    frame.ttl = int(ip6.hlim)
    return frame


def _decode_l4(proto: int, v6: bool, data: bytes, off: int, l4_len: int, ts: float,
               wirelen: int, src: str, dst: str, vlan: int | None,
               notes: list[str]) -> Frame | None:
    avail = len(data) - off
    if proto == 6:
        if avail < 4:
            raise _bad("transport_ports_truncated")
        # Pad to the fixed header so scapy can dissect; trust only what was captured.
        tcp = TCP(data[off:off + 20].ljust(20, b"\0"))
        frame = Frame(ts, wirelen, "tcp", (src, int(tcp.sport)), (dst, int(tcp.dport)), vlan)
        if avail < 14:   # flags not captured: counts with no flags and no payload
            notes.append("tcp_header_truncated")
            return frame
        frame.seq = int(tcp.seq)
        doff = tcp.dataofs * 4
        if doff < 20:    # bogus header length: Wireshark shows no flags
            notes.append("tcp_bad_header_length")
            return frame
        frame.flags = int(tcp.flags)
        if avail < doff:
            notes.append("tcp_header_truncated")
        payload = l4_len - doff
        if payload < 0:
            notes.append("tcp_bad_length")
            payload = 0
        frame.payload = payload
        return frame
    if proto == 17:
        if avail < 4:
            raise _bad("transport_ports_truncated")
        udp = UDP(data[off:off + 8].ljust(8, b"\0"))
        if avail < 8:
            notes.append("udp_header_truncated")
        # Payload from the IP length, as for TCP (the UDP length field is not trusted).
        return Frame(ts, wirelen, "udp", (src, int(udp.sport)), (dst, int(udp.dport)), vlan,
                     payload=max(l4_len - 8, 0))
    if (proto == 1 and not v6) or (proto == 58 and v6):
        if avail < 1:
            raise _bad("icmp_header_truncated")
        if data[off] in (ICMP6_ERRORS if v6 else ICMP4_ERRORS):
            raise _Drop("icmp_error", "icmp_error")
        raise _skip("icmp_not_error")
    raise _skip("other_ip_protocol")


# --------------------------------------------------------------------------- reading

@dataclass(slots=True)
class _Record:
    linktype: int
    ts: float
    wirelen: int
    data: bytes


class _PcapNgReader(RawPcapNgReader):
    """scapy's pcapng reader, plus what the pcapng spec asks and scapy leaves out: interface
    ids start over in each section, if_tsoffset is added to timestamps, and a simple packet
    block holds as many bytes as its block does (it carries no timestamp: None here)."""

    def _read_block_shb(self):
        super()._read_block_shb()
        self.interfaces = []

    def _read_block_idb(self, block, size):
        super()._read_block_idb(block, size)
        offset = self._read_options(block[8:]).get(14)
        if isinstance(offset, list):
            offset = offset[0]
        seconds = struct.unpack(self.endian + "q", offset)[0] if isinstance(offset, bytes) and len(offset) == 8 else 0
        self.interfaces[-1][2]["tsoffset"] = seconds

    def _read_block_epb(self, block, size):
        res = super()._read_block_epb(block, size)
        if res is not None:
            intid = struct.unpack(self.endian + "I", block[:4])[0]
            self.tsoffset = self.interfaces[intid][2].get("tsoffset", 0)
        return res

    def _read_block_pkt(self, block, size):
        res = super()._read_block_pkt(block, size)
        if res is not None:
            intid = struct.unpack(self.endian + "H", block[:2])[0]
            self.tsoffset = self.interfaces[intid][2].get("tsoffset", 0)
        return res

    def _read_block_spb(self, block, size):
        if not self._check_interface_id(0):
            return None
        if len(block) < 4:
            raise EOFError
        wirelen = struct.unpack(self.endian + "I", block[:4])[0]
        meta = RawPcapNgReader.PacketMetadata(
            linktype=self.interfaces[0][0], tsresol=self.interfaces[0][2]["tsresol"], tshigh=None,
            tslow=None, wirelen=wirelen, ifname=None, direction=None, process_information={},
            comments=None)
        return block[4:4 + wirelen][:size], meta


class _PcapReader(RawPcapReader):
    alternative = _PcapNgReader


def _open_reader(path: Path):
    """Open a capture with scapy's readers (gzip through gzip.open); CaptureError if not."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(2)
    except OSError as exc:
        raise CaptureError(path, f"cannot open: {exc.strerror or exc}") from exc
    fobj = gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")
    try:
        return _PcapReader(fobj)  # the metaclass picks _PcapNgReader by magic
    except (Scapy_Exception, EOFError, OSError, zlib.error, struct.error) as exc:
        fobj.close()
        problem = " ".join(str(exc).split()) or type(exc).__name__
        raise CaptureError(path, f"not a readable pcap/pcapng capture ({problem})") from exc


def _records(path: Path, stats: RunStats | None):
    """Yield the file's records; a record cut short by the end of the file ends the read."""
    reader = _open_reader(path)
    n = 0
    last_ts = 0.0
    try:
        while True:
            try:
                data, meta = reader._read_packet(size=READ_SIZE)
            except EOFError:
                return
            except (Scapy_Exception, OSError, zlib.error, struct.error) as exc:
                if stats is not None:
                    err = CaptureError(path, " ".join(str(exc).split()), record=n + 1)
                    stats.problems.append(FileProblem(str(path), str(err), n))
                return
            n += 1
            if isinstance(reader, RawPcapNgReader):
                if meta.tshigh is None:     # simple packet block: the previous frame's time
                    ts = last_ts
                else:
                    ticks = (meta.tshigh << 32) | meta.tslow
                    res = meta.tsresol
                    ts = ticks // res + (ticks % res) / res + reader.tsoffset
                linktype = meta.linktype
                caplen = len(data)
            else:
                if meta.caplen > MAX_RECORD:   # Wireshark's limit: the file is corrupt from here
                    if stats is not None:
                        err = CaptureError(path, f"record length {meta.caplen} is larger than "
                                           f"any real frame (limit {MAX_RECORD})", record=n)
                        stats.problems.append(FileProblem(str(path), str(err), n - 1))
                    return
                ts = meta.sec + meta.usec / (1e9 if reader.nano else 1e6)
                linktype = reader.linktype & 0x0FFFFFFF   # upper bits: FCS information
                caplen = meta.caplen
                if len(data) < caplen:
                    if stats is not None:
                        err = CaptureError(path, "file ends inside the record", record=n)
                        stats.problems.append(FileProblem(str(path), str(err), n - 1))
                    return
            last_ts = ts
            yield _Record(linktype, ts, _wire_len(meta.wirelen, caplen, stats), data)
    finally:
        reader.close()


def _wire_len(wirelen: int, caplen: int, stats: RunStats | None) -> int:
    """The frame's length on the wire: never below what was captured; absurd ones clamped."""
    wirelen = max(wirelen, caplen)
    if wirelen > MAX_RECORD:
        if stats is not None:
            stats.malformed["orig_len_absurd"] += 1
        wirelen = min(wirelen, MAX_WIRE_LEN)
    return wirelen


def _first_ts(path: Path) -> float:
    """Timestamp of the file's first frame (files with none sort last)."""
    with closing(_records(path, None)) as records:
        for rec in records:
            return rec.ts
    return float("inf")


# --------------------------------------------------------------------------- flows

@dataclass(slots=True)
class _Flow:
    transport: str
    frames: list[Frame] = field(default_factory=list)
    fin_from: set = field(default_factory=set)
    rst: bool = False

    @property
    def closed(self) -> bool:
        return self.rst or len(self.fin_from) >= 2

    def add(self, f: Frame) -> None:
        self.frames.append(f)
        if f.has(FIN):
            self.fin_from.add(f.src)
        if f.has(RST):
            self.rst = True


def _endpoint_state(sent: list[Frame], role: str, client_frames: list[Frame],
                    server_frames: list[Frame]) -> str:
    if any(f.has(RST) for f in sent):
        return "RESET"
    if any(f.has(FIN) for f in sent):
        return "CLOSED"
    if not sent:
        return "INACTIVE"
    client_beyond_syn = any(not f.syn_only for f in client_frames)
    if role == "client":
        if any(f.syn_only for f in sent):
            if any(f.syn_ack for f in server_frames) and client_beyond_syn:
                return "ESTABLISHED"
            return "SYN_SENT"
        return "PARTIAL"
    if any(f.syn_ack for f in sent):
        return "ESTABLISHED" if client_beyond_syn else "SYN_ACK_SENT"
    return "PARTIAL"


def _tcp_state(cf: list[Frame], sf: list[Frame]) -> str:
    client = _endpoint_state(cf, "client", cf, sf)
    server = _endpoint_state(sf, "server", cf, sf)
    c_inactive = client in ("INACTIVE", "PARTIAL")
    s_inactive = server in ("INACTIVE", "PARTIAL")
    no_payload = all(f.payload == 0 for f in cf) and all(f.payload == 0 for f in sf)
    client_syn = any(f.syn_only for f in cf)
    server_synack = any(f.syn_ack for f in sf)
    if server == "RESET":
        if client == "SYN_SENT" or (client == "RESET" and no_payload):
            return "REJ"
        if c_inactive:
            return "RSTRH"
        return "RSTR"
    if client == "RESET":
        if s_inactive:
            return "RSTOS0" if client_syn and not server_synack else "OTH"
        return "RSTO"
    if server == "CLOSED" and client == "CLOSED":
        return "SF"
    if client == "CLOSED":
        return "SH" if s_inactive else "S2"
    if server == "CLOSED":
        return "SHR" if c_inactive else "S3"
    if server == "INACTIVE" and client == "SYN_SENT":
        return "S0"
    if server == "ESTABLISHED" and client == "ESTABLISHED":
        return "S1"
    return "OTH"


def _s32(x: int) -> int:
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x & 0x80000000 else x


def _retransmits(frames: list[Frame]) -> int:
    """Per direction: payload segments whose relative end does not pass the highest end
    of the earlier payload segments; the base is the first sequence number seen."""
    count = 0
    base: dict = {}
    highest: dict = {}
    for f in frames:
        if f.seq is None:
            continue
        d = f.src
        if d not in base:
            base[d] = f.seq
        if f.payload <= 0:     # pure ACKs, SYNs and FINs set the base, not the mark
            continue
        end = _s32(f.seq + f.payload - base[d])
        top = highest.get(d)
        if top is not None and end <= top:
            if not (f.payload == 1 and end == top):   # keep-alive probe
                count += 1
        if top is None or end > top:
            highest[d] = end
    return count


def _finish(flow: _Flow) -> dict:
    frames = flow.frames
    first = frames[0]
    ends = {first.src, first.dst}
    client = None
    if flow.transport == "tcp":
        syn = next((f for f in frames if f.syn_only), None)
        if syn is not None:
            client = syn.src
        else:
            synack = next((f for f in frames if f.syn_ack), None)
            if synack is not None:
                client = synack.dst
    if client is None:
        if first.src[1] != first.dst[1]:
            client = first.src if first.src[1] > first.dst[1] else first.dst
        else:
            client = first.src
    server = next((e for e in ends if e != client), client)

    ts_start = min(f.ts for f in frames)     # captures do go back in time now and then
    ts_end = max(f.ts for f in frames)
    cf = [f for f in frames if f.src == client]
    sf = [f for f in frames if f.src != client]
    row: dict = {
        "ts_start": ts_start,
        "ts_end": ts_end,
        "duration": ts_end - ts_start,
        "transport": flow.transport,
        "client_ip": client[0],
        "client_port": client[1],
        "server_ip": server[0],
        "server_port": server[1],
        "vlan": first.vlan,
        "pkts_c2s": len(cf),
        "pkts_s2c": len(sf),
        "bytes_c2s": sum(f.wirelen for f in cf),
        "bytes_s2c": sum(f.wirelen for f in sf),
        "syn_retries": 0,
        "retransmits": 0,
        "rtt_ms": None,
    }
    if flow.transport == "tcp":
        row["syn_retries"] = max(0, sum(1 for f in cf if f.syn_only) - 1)
        row["retransmits"] = _retransmits(frames)
        sa_idx = next((i for i, f in enumerate(frames) if f.src != client and f.syn_ack), None)
        if sa_idx is not None:
            syn_idx = None
            for i in range(sa_idx):
                if frames[i].src == client and frames[i].syn_only:
                    syn_idx = i
            if syn_idx is not None:
                row["rtt_ms"] = (frames[sa_idx].ts - frames[syn_idx].ts) * 1000.0
        row["state"] = _tcp_state(cf, sf)
    else:
        row["state"] = "SF" if cf and sf else ("S0" if cf else "SHR")
    row.update(_evidence(flow.transport == "tcp", cf, sf))
    c_data, s_data = row["_c_data_ts"], row["_s_data_ts"]
    row["ttfb_ms"] = (s_data - c_data) * 1000.0 if s_data >= c_data else None
    return row


def _evidence(tcp: bool, cf: list[Frame], sf: list[Frame]) -> dict:
    """The hidden per-flow facts block reasons are read from (flows/finalize.py EVIDENCE)."""
    def first(frames, keep) -> float:
        return min((f.ts for f in frames if keep(f)), default=math.nan)

    syns = [f.ts for f in cf if f.syn_only] if tcp else []
    synack = [f.ts for f in sf if f.syn_ack] if tcp else []
    answered_by = min(synack, default=math.inf)
    return {
        "_syns": len(syns), "_syn_first": min(syns, default=math.nan),
        "_syn_last": max((t for t in syns if t <= answered_by), default=math.nan),
        "_handshake": bool(syns and synack),
        "_c_data_ts": first(cf, lambda f: f.payload > 0), "_s_data_ts": first(sf, lambda f: f.payload > 0),
        "_c_payload": sum(f.payload for f in cf), "_s_payload": sum(f.payload for f in sf),
        "_c_ndata": sum(1 for f in cf if f.payload > 0),
        "_c_fin_ts": first(cf, lambda f: tcp and f.has(FIN)), "_s_fin_ts": first(sf, lambda f: tcp and f.has(FIN)),
        "_c_rst_ts": first(cf, lambda f: tcp and f.has(RST)), "_s_rst_ts": first(sf, lambda f: tcp and f.has(RST)),
        "_s_ttl": next((float(f.ttl) for f in sf if not (tcp and f.has(RST))), math.nan),
        "_s_rst_ttl": next((float(f.ttl) for f in sf if tcp and f.has(RST)), math.nan),
    }


def _address_number(text: str) -> int:
    """Addresses ordered as 16-byte numbers, IPv4 as ::ffff:a.b.c.d (docs/flows.md)."""
    addr = ipaddress.ip_address(text)
    return (0xFFFF << 32) | int(addr) if addr.version == 4 else int(addr)


def build_flows(paths: Sequence[Path], options: FlowOptions, stats: RunStats) -> pd.DataFrame:
    """FLOWS for the given captures, per docs/flows.md, computed with scapy and dicts."""
    paths = [Path(p) for p in paths]
    firsts = [_first_ts(p) for p in paths]          # also fails early on unreadable files
    order = sorted(range(len(paths)), key=lambda i: firsts[i])

    current: dict = {}
    done: list[_Flow] = []
    last_ts: dict = {}
    last_clock: dict = {}          # per key: the capture clock after its last frame
    clock = float("-inf")          # the latest timestamp seen so far in the capture
    for i in order:
        path = paths[i]
        stats.files.append(str(path))
        for rec in _records(path, stats):
            stats.records += 1
            frame = decode(rec.linktype, rec.data, rec.ts, rec.wirelen, stats)
            if frame is None:
                continue
            stats.packets_in_flows += 1
            a, b = sorted((frame.src, frame.dst))
            key = (frame.transport, a, b)
            flow = current.get(key)
            if flow is not None:
                timeout = options.tcp_timeout if frame.transport == "tcp" else options.udp_timeout
                # Idle by the frames' own times, or by how far the clock moved since the key's
                # last frame (the clock stands still while time stepped back catches up).
                idle = frame.ts - last_ts[key] > timeout or clock - last_clock[key] > timeout
                if idle or (frame.syn_only and flow.closed):
                    done.append(flow)
                    flow = None
            if flow is None:
                flow = current[key] = _Flow(frame.transport)
            flow.add(frame)
            last_ts[key] = frame.ts
            clock = max(clock, frame.ts)
            last_clock[key] = clock
    done.extend(current.values())

    rows = [_finish(f) for f in done]
    rows.sort(key=lambda r: (r["ts_start"], _address_number(r["client_ip"]), r["client_port"],
                             _address_number(r["server_ip"]), r["server_port"], r["transport"]))
    for n, row in enumerate(rows):
        row["flow_id"] = n
    frame = schema.to_frame(rows, schema.FLOWS)
    for name in EVIDENCE:
        frame[name] = np.array([row[name] for row in rows], dtype=bool if name == "_handshake" else np.float64)
    return frame
