"""Blocked flows and conn_state on real corpus captures, checked against tshark's own packets.

Every expectation here is derived from tshark's per-packet fields (frame time, addresses,
ports, TCP flags, TCP payload length), never from apnstrace: the flows are rebuilt from those
packets with the rules of docs/flows.md (key, idle and closed-then-SYN splitting, client and
server), and conn_state is an independent implementation of Zeek's table (docs/flows.md,
../shared/docs/apple-traffic.md section 5.1). Block reasons follow docs/blocked.md.

1. synscan.pcap (nmap SYN scan) and tcp_scan.pcapng (SYN, FIN, NULL and XMAS scans):
   unanswered SYNs are S0 / no_response with syn_retries = SYNs - 1, SYNs answered by RST
   are REJ / reset, nothing else is blocked.
2. tls_alert.pcap: the server answers the ClientHello with a fatal alert: tls_alert names it
   as tshark does and the flow is blocked with reason tls_alert.
3. conn_state of 200 TCP flows sampled (fixed seed, every state represented) over a pool of
   corpus captures agrees with the tshark-derived state, but for the listed KNOWN flows (none now).

tshark runs once per capture per test session (cached); the whole file takes well under a
minute.
"""
from __future__ import annotations

import ipaddress
import random
import re
import shutil
import subprocess
import sys
import warnings
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import apnstrace

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "conformance"))
from corpus import PCAPS, flows_of  # noqa: E402

pytestmark = [pytest.mark.corpus, pytest.mark.tshark]

FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
TCP_IDLE_S = 3600.0           # FlowOptions default --tcp-timeout (docs/flows.md)
FIELDS = ["frame.number", "frame.time_epoch", "ip.src", "ipv6.src", "tcp.srcport", "ip.dst", "ipv6.dst",
          "tcp.dstport", "tcp.flags", "tcp.len", "icmp.type", "icmpv6.type", "udp.srcport"]


# ---------------------------------------------------------------- tshark, once per capture

def _tshark_fields(capture: Path, fields: list[str], *extra: str) -> list[list[str]]:
    tshark = shutil.which("tshark")
    assert tshark, "tshark is not installed: run `make test` (it installs Debian's tshark)"
    args = [tshark, "-r", str(capture), "-n", "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
            *extra, "-T", "fields", "-E", "occurrence=a", "-E", "separator=/t"]
    for name in fields:
        args += ["-e", name]
    out = subprocess.run(args, capture_output=True, text=True, timeout=300).stdout
    return [(line.split("\t") + [""] * len(fields))[: len(fields)] for line in out.splitlines()]


@dataclass(frozen=True)
class Packet:
    frame: int
    ts: float
    src: tuple[str, int]
    dst: tuple[str, int]
    flags: int
    length: int               # tcp.len: payload length from the IP length fields


@dataclass
class Capture:
    packets: list[Packet | float]     # TCP packets of flows, and bare times (other frames: the clock)
    icmp_types: list[tuple[str, str]]  # (icmp.type, icmpv6.type) of every ICMP frame


def _addr(text: str) -> str:
    return str(ipaddress.ip_address(text))


@lru_cache(maxsize=None)
def tshark_capture(name: str) -> Capture:
    """The capture's TCP packets as tshark decodes them, in capture order.

    Left out as apnstrace leaves them out (docs/flows.md "Which frames count"): frames with
    more than one IP header (tunnels: TCP must follow the outermost IP header), ICMP errors
    (tshark shows the quoted TCP header's ports; for apnstrace they are evidence, not flow
    packets), non-first fragments (reassembly off: tshark does not dissect their TCP)."""
    packets: list[Packet | float] = []
    icmp = []
    for row in _tshark_fields(PCAPS / name, FIELDS):
        number, ts, s4, s6, sport, d4, d6, dport, flags, tlen, icmp4, icmp6, usport = row
        if not ts:
            continue
        if icmp4 or icmp6:
            icmp.append((icmp4, icmp6))
        addresses = [a for a in s4.split(",") + s6.split(",") if a]
        if not sport or icmp4 or icmp6 or usport or len(addresses) != 1 or "," in sport:
            packets.append(float(ts))
            continue
        packets.append(Packet(int(number), float(ts), (_addr(s4 or s6), int(sport)), (_addr(d4 or d6), int(dport)),
                              int(flags, 16) if flags else 0, int(tlen) if tlen else 0))
    return Capture(packets, icmp)


# ---------------------------------------------------------------- flows and Zeek's conn_state

@dataclass
class Flow:
    capture: str
    key: tuple                            # sorted endpoints ((ip, port), (ip, port))
    packets: list[Packet] = field(default_factory=list)
    fin_from: set = field(default_factory=set)
    rst: bool = False

    @property
    def first_frame(self) -> int:
        return self.packets[0].frame

    @property
    def ts_start(self) -> float:
        return min(p.ts for p in self.packets)

    def ends(self) -> tuple[tuple[str, int], tuple[str, int]]:
        """(client, server): the sender of the first SYN without ACK; else the receiver of the
        first SYN+ACK; else the higher port; with equal ports the sender of the first frame."""
        for p in self.packets:
            if p.flags & SYN and not p.flags & ACK:
                return p.src, p.dst
        for p in self.packets:
            if p.flags & SYN and p.flags & ACK:
                return p.dst, p.src
        a, b = self.key
        if a[1] != b[1]:
            return (a, b) if a[1] > b[1] else (b, a)
        return self.packets[0].src, self.packets[0].dst

    def sides(self) -> tuple[list[Packet], list[Packet]]:
        """(client's packets, server's packets); a frame from an endpoint to itself is the client's."""
        client, _ = self.ends()
        return [p for p in self.packets if p.src == client], [p for p in self.packets if p.src != client]


def build_flows(name: str) -> list[Flow]:
    """docs/flows.md "Flow key and splitting": unordered endpoint pair; a new flow after more than
    the idle timeout (by the frames' own times, or by how far the capture clock moved since the
    key's last frame), or at a SYN without ACK once the current flow is closed (both sides sent
    FIN, or either sent RST)."""
    flows: list[Flow] = []
    current: dict[tuple, Flow] = {}
    last: dict[tuple, float] = {}
    last_clock: dict[tuple, float] = {}
    clock = float("-inf")
    for p in tshark_capture(name).packets:
        if isinstance(p, float):
            clock = max(clock, p)
            continue
        key = tuple(sorted([p.src, p.dst]))
        flow = current.get(key)
        if flow is not None:
            idle = p.ts - last[key] > TCP_IDLE_S or clock - last_clock[key] > TCP_IDLE_S
            closed = flow.rst or len(flow.fin_from) == 2
            if idle or (p.flags & SYN and not p.flags & ACK and closed):
                flow = None
        if flow is None:
            flow = current[key] = Flow(name, key)
            flows.append(flow)
        flow.packets.append(p)
        flow.fin_from |= {p.src} if p.flags & FIN else set()
        flow.rst = flow.rst or bool(p.flags & RST)
        last[key] = p.ts
        clock = max(clock, p.ts)
        last_clock[key] = clock
    return flows


def _is_syn(p: Packet) -> bool:
    return bool(p.flags & SYN) and not p.flags & ACK


def _is_synack(p: Packet) -> bool:
    return bool(p.flags & SYN) and bool(p.flags & ACK)


def zeek_conn_state(flow: Flow) -> str:
    """Zeek's conn_state from each endpoint's final state (docs/flows.md table)."""
    cp, sp = flow.sides()
    client_syn = any(_is_syn(p) for p in cp)
    server_synack = any(_is_synack(p) for p in sp)
    client_beyond_syn = any(not p.flags & SYN for p in cp)

    def endpoint(ps: list[Packet], client: bool) -> str:
        if any(p.flags & RST for p in ps):
            return "RESET"
        if any(p.flags & FIN for p in ps):
            return "CLOSED"
        if not ps:
            return "INACTIVE"
        if client:
            if client_syn and server_synack and client_beyond_syn:
                return "ESTABLISHED"
            return "SYN_SENT" if client_syn else "PARTIAL"
        if server_synack and client_beyond_syn:
            return "ESTABLISHED"
        return "SYN_ACK_SENT" if server_synack else "PARTIAL"

    c, s = endpoint(cp, True), endpoint(sp, False)
    inactive = {"INACTIVE", "PARTIAL"}
    no_payload = all(p.length == 0 for p in flow.packets)
    if s == "RESET":
        if c == "SYN_SENT" or (c == "RESET" and no_payload):
            return "REJ"
        return "RSTRH" if c in inactive else "RSTR"
    if c == "RESET":
        if s in inactive:
            return "RSTOS0" if client_syn and not server_synack else "OTH"
        return "RSTO"
    if c == "CLOSED" and s == "CLOSED":
        return "SF"
    if c == "CLOSED":
        return "SH" if s in inactive else "S2"
    if s == "CLOSED":
        return "SHR" if c in inactive else "S3"
    if s == "INACTIVE" and c == "SYN_SENT":
        return "S0"
    if s == "ESTABLISHED" and c == "ESTABLISHED":
        return "S1"
    return "OTH"


# ---------------------------------------------------------------- tshark flow <-> apnstrace flow

@lru_cache(maxsize=None)
def our_tcp_flows(name: str) -> pd.DataFrame:
    flows = flows_of(name)
    return flows[flows["transport"] == "tcp"].reset_index(drop=True)


def ours(flow: Flow) -> pd.Series:
    """The apnstrace flow with the same endpoints and the same first frame time (1 us)."""
    f = our_tcp_flows(flow.capture)
    (a_ip, a_port), (b_ip, b_port) = flow.key
    same = (((f.client_ip == a_ip) & (f.client_port == a_port) & (f.server_ip == b_ip) & (f.server_port == b_port))
            | ((f.client_ip == b_ip) & (f.client_port == b_port) & (f.server_ip == a_ip) & (f.server_port == a_port)))
    gap = (f["ts_start"] - flow.ts_start).abs()
    hit = f[same & (gap < 1e-6)]
    assert len(hit) == 1, f"{flow.capture} frame {flow.first_frame} {flow.key}: {len(hit)} apnstrace flows match"
    return hit.iloc[0]


def _plain(value):
    """A frame cell as a plain Python value: None for null, bool for numpy booleans."""
    if pd.isna(value):
        return None
    return bool(value) if isinstance(value, (bool, np.bool_)) else value


def verdict(row: pd.Series) -> tuple:
    """(state, blocked, block_reason, syn_retries) as plain values."""
    return (row["state"], _plain(row["blocked"]), _plain(row["block_reason"]), int(row["syn_retries"]))


def _label(flow: Flow) -> str:
    (a, ap), (b, bp) = flow.key
    return f"{flow.capture} #{flow.first_frame} {a}:{ap}-{b}:{bp}"


# ---------------------------------------------------------------- 1. scans: no_response and reset

# (unanswered-SYN flows, SYN-answered-by-RST flows), counted from tshark's packets below and
# pinned here so a change in either tshark or the derivation shows.
SCANS = {"synscan.pcap": (1986, 5), "tcp_scan.pcapng": (0, 2)}


@pytest.mark.parametrize("capture", sorted(SCANS))
def test_scan_syns_unanswered_or_reset(capture: str) -> None:
    # icmp_unreachable would come first (docs/blocked.md): these captures have no ICMP at all.
    assert tshark_capture(capture).icmp_types == []
    no_response, reset, neither = [], [], []
    for flow in build_flows(capture):
        cp, sp = flow.sides()
        syns = [p for p in cp if _is_syn(p)]
        if syns and all(_is_syn(p) for p in cp) and not sp:
            no_response.append((flow, len(syns)))        # SYNs and nothing at all back
        elif syns and sp and any(p.flags & RST for p in sp) and not any(_is_synack(p) for p in sp):
            reset.append((flow, len(syns)))              # the SYN was answered by RST, no SYN/ACK
        else:
            neither.append(flow)
    print(f"\n{capture}: {len(no_response)} no_response, {len(reset)} reset, "
          f"{len(neither)} others (tshark-derived)")
    assert (len(no_response), len(reset)) == SCANS[capture]

    bad = []
    for flow, syns in no_response:
        got = verdict(ours(flow))
        if got != ("S0", True, "no_response", syns - 1):
            bad.append((_label(flow), "want S0/True/no_response/syn_retries", syns - 1, got))
    for flow, syns in reset:
        got = verdict(ours(flow))
        if got != ("REJ", True, "reset", syns - 1):
            bad.append((_label(flow), "want REJ/True/reset/syn_retries", syns - 1, got))
    # The rest: synscan's SYNs answered by SYN/ACK the scanner never acknowledged (OTH: no
    # reason applies, the handshake never completed), tcp_scan's connect() probes closed by
    # the client's RST (RSTO), and its FIN/NULL/XMAS probes (no SYN: never called blocked).
    for flow in neither:
        _, blocked, reason, _ = got = verdict(ours(flow))
        if blocked is True or reason is not None:
            bad.append((_label(flow), "want not blocked", zeek_conn_state(flow), got))
    assert not bad, f"{len(bad)} flows differ, first: {bad[:10]}"

    flows = our_tcp_flows(capture)
    counts = flows["block_reason"].value_counts().to_dict()
    assert counts == {k: v for k, v in (("no_response", len(no_response)), ("reset", len(reset))) if v}


# ---------------------------------------------------------------- 2. tls_alert.pcap

def _alert_text(showname: str) -> str:
    """tshark's "Description: Protocol Version (70)" -> "protocol_version"."""
    text = re.sub(r"\s*\(\d+\)$", "", showname.split(": ", 1)[1])
    return text.lower().replace(" ", "_")


def tshark_alerts(name: str) -> list[tuple[int, tuple[str, int], tuple[str, int], str]]:
    """(frame, sender, receiver, "level/description") of every clear-text TLS alert, by tshark's names."""
    args = ["tshark", "-r", str(PCAPS / name), "-n", "-Y", "tls.alert_message.level", "-T", "pdml"]
    pdml = subprocess.run(args, capture_output=True, text=True, timeout=120, check=True).stdout
    out = []
    for packet in pdml.split("<packet>")[1:]:
        def show(field: str) -> list[str]:
            return re.findall(rf'<field name="{re.escape(field)}" showname="([^"]*)"', packet)

        def value(field: str) -> str:
            return re.search(rf'<field name="{re.escape(field)}"[^>]* show="([^"]*)"', packet).group(1)

        frame = int(value("frame.number"))
        src = (_addr(value("ip.src")), int(value("tcp.srcport")))
        dst = (_addr(value("ip.dst")), int(value("tcp.dstport")))
        for level, desc in zip(show("tls.alert_message.level"), show("tls.alert_message.desc")):
            out.append((frame, src, dst, f"{_alert_text(level)}/{_alert_text(desc)}"))
    return out


def test_tls_alert_capture() -> None:
    name = "tls_alert.pcap"
    alerts = tshark_alerts(name)
    flows = build_flows(name)
    by_key = {f.key: f for f in flows}
    assert len(by_key) == len(flows) == 2
    assert len(alerts) == 1, alerts
    frame, sender, receiver, alert = alerts[0]
    # The one clear-text alert: frame 6, 192.168.1.20:443 -> 192.168.1.192:63158, fatal
    # protocol_version, the server's first payload right after the ClientHello.
    assert (frame, alert) == (6, "fatal/protocol_version")
    flow = by_key[tuple(sorted([sender, receiver]))]
    client, server = flow.ends()
    assert sender == server, "the alert comes from the server"
    cp, sp = flow.sides()
    first_server_payload = next(p for p in sp if p.length > 0)
    assert first_server_payload.frame == frame, "the alert is the server's first TLS record"
    assert zeek_conn_state(flow) == "SF"
    row = ours(flow)
    print(f"\n{name}: {_label(flow)} server alert {alert} (frame {frame}); apnstrace: tls_alert "
          f"{row['tls_alert']}, state {row['state']}, blocked {row['blocked']}, block_reason {row['block_reason']}")
    assert row["tls_alert"] == alert
    assert row["state"] == "SF"
    # The server's first TLS record is a fatal alert: it refused the ClientHello. No earlier
    # reason applies (no ICMP, no RST, the SYN was answered), so docs/blocked.md gives tls_alert.
    assert verdict(row)[1:3] == (True, "tls_alert")

    # The other flow, 192.168.2.100:37780 -> 160.44.202.202:443, starts mid-stream (no SYN; the
    # client sends encrypted records and FINs, the server nothing): SH, and never called blocked.
    other = next(f for f in flows if f is not flow)
    assert not any(_is_syn(p) for p in other.packets)
    assert zeek_conn_state(other) == "SH"
    row = ours(other)
    assert row["state"] == "SH"
    _, blocked, reason, _ = verdict(row)
    assert blocked is not True and reason is None


# ---------------------------------------------------------------- 3. conn_state vs tshark, 200 flows

SEED = 20240521
SAMPLE_SIZE = 200
# Captures chosen for the states they hold (tshark-derived), small ones where there is a choice.
POOL = [
    "tcp_scan.pcapng", "rtsp.pcap", "log4j-webapp-exploit.pcap", "gnutella.pcap",     # REJ
    "ocs.pcap", "tls_1.2_unidirectional_client.pcapng", "alexa-app.pcapng",            # RSTOS0
    "KakaoTalk_chat.pcap", "tls_1.3_unidirectional_server.pcapng",                     # RSTRH, S3, SHR
    "http_guessed_host_and_guessed.pcapng",                                            # RSTRH
    "iphone.pcap", "tls_esni_sni_both.pcap", "kerberos-login.pcap", "syslog.pcap",     # S2
    "smb_frags.pcap", "tls_missing_ch_frag.pcap",                                      # S2
    "anyconnect-vpn.pcap", "wechat.pcap",                                              # S3, SH
    "tls_alert.pcap", "http_asymmetric.pcapng", "steam.pcapng",                        # SH, SHR
    "bittorrent.pcap", "android.pcap", "whois.pcapng", "atg.pcap",                     # SHR
    "ethereum.pcap", "tls_certificate_too_long.pcap", "avast.pcap",                    # RSTR
    "waze.pcap", "signal.pcap", "EAQ.pcap", "wow.pcap",                                # RSTO
    "whatsapp.pcap", "synscan.pcap",                                                   # S0
    "kerberos.pcap", "fuzz-2006-09-29-28586.pcap",                                     # OTH, a bit of everything
    "sites.pcapng", "dnp3.pcap", "imaps.pcap", "KakaoTalk_talk.pcap",                  # S1, SYN retries
    "ip_fragmented_garbage.pcap", "kerberos_fuzz.pcapng",                              # TCP headers cut short
]
EXTRA = 12      # more captures drawn from the whole corpus with SEED, for breadth

# (capture, first frame of the flow): (tshark-derived state, apnstrace's state, why). Always in
# the sample. All three are TCP headers tshark calls malformed and stops dissecting before the
# flags, while apnstrace still reads the flags byte; docs/flows.md says apnstrace stops where
# Wireshark does (a frame whose flags were not captured counts with no flags), so these are
# apnstrace disagreeing with its own spec on fuzzed input, reported rather than papered over.
# Flows that once disagreed, kept in every sample as regression cases (all agree now): a data
# offset under 5 words is Wireshark's "bogus TCP header length", after which it shows no flags.
ALWAYS_SAMPLED = {
    ("ip_fragmented_garbage.pcap", 1): "first IPv4 fragment, TCP data offset 4 (16 bytes): no flags, OTH",
    ("ip_fragmented_garbage.pcap", 940): "the same, whose flags byte would say SYN+RST+URG: OTH",
    ("kerberos_fuzz.pcapng", 1): "TCP data offset 2 (8 bytes), flags byte FIN: OTH",
}
# Disagreements that are understood: (capture, first frame) -> (tshark state, apnstrace state, why).
KNOWN: dict[tuple[str, int], tuple[str, str, str]] = {}


def _pool() -> list[str]:
    everything = sorted(p.name for p in PCAPS.iterdir())
    rest = [n for n in everything if n not in POOL]
    return POOL + random.Random(SEED).sample(rest, EXTRA)


def sample_flows() -> list[tuple[Flow, str]]:
    """(flow, tshark-derived state): every ALWAYS_SAMPLED and KNOWN flow, then the states taken in turn (each
    state's flows shuffled with SEED) until SAMPLE_SIZE: every state that exists is in."""
    names = _pool()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(tshark_capture, names))
    by_state: dict[str, list[tuple[Flow, str]]] = defaultdict(list)
    chosen: list[tuple[Flow, str]] = []
    for name in names:
        for flow in build_flows(name):
            item = (flow, zeek_conn_state(flow))
            (chosen if (name, flow.first_frame) in ALWAYS_SAMPLED | KNOWN else by_state[item[1]]).append(item)
    rng = random.Random(SEED)
    queues = {}
    for state in sorted(by_state):
        items = by_state[state]
        queues[state] = rng.sample(items, len(items))
    while len(chosen) < SAMPLE_SIZE and any(queues.values()):
        for state in sorted(queues):
            if queues[state] and len(chosen) < SAMPLE_SIZE:
                chosen.append(queues[state].pop())
    return chosen


def test_conn_state_agrees_with_tshark_sample() -> None:
    sample = sample_flows()
    assert len(sample) == SAMPLE_SIZE
    agree, disagreements, mix = 0, {}, Counter()
    syn_retry_bad = []
    for flow, expected in sample:
        row = ours(flow)
        mix[expected] += 1
        if row["state"] == expected:
            agree += 1
            syns = sum(1 for p in flow.sides()[0] if _is_syn(p))
            if int(row["syn_retries"]) != max(syns - 1, 0):
                syn_retry_bad.append((_label(flow), syns - 1, int(row["syn_retries"])))
        else:
            disagreements[(flow.capture, flow.first_frame)] = (expected, row["state"], _label(flow))
    print(f"\nconn_state vs tshark: {agree}/{len(sample)} agree; sample by tshark state: "
          + ", ".join(f"{s} {n}" for s, n in sorted(mix.items())))
    for key, (expected, got, label) in sorted(disagreements.items()):
        print(f"  {label}: tshark {expected}, apnstrace {got} - {KNOWN.get(key, ('', '', 'NOT EXPLAINED'))[2]}")
    assert len(mix) >= 13, f"every conn_state should be in the sample: {sorted(mix)}"
    assert not syn_retry_bad, syn_retry_bad
    assert {k: v[:2] for k, v in disagreements.items()} == {k: v[:2] for k, v in KNOWN.items()}, \
        "unexplained or fixed disagreements (update KNOWN)"


# ---------------------------------------------------------------- 4. SYN/ACKs the client never acknowledged

# Captures with REJ flows (tshark-derived), where a server can answer before resetting.
REJ_CAPTURES = ["gnutella.pcap", "tcp_scan.pcapng", "rtsp.pcap", "log4j-webapp-exploit.pcap", "synscan.pcap"]


@pytest.mark.parametrize("capture", REJ_CAPTURES)
def test_reset_after_unacknowledged_synacks_says_the_server_accepted(capture: str) -> None:
    """A flow whose client sent only SYNs while the server sent SYN/ACKs and then a RST is a
    `reset` (Zeek REJ) whose evidence says the server accepted and the client never
    acknowledged (docs/blocked.md); a SYN answered by a RST alone keeps "answered by a RST"."""
    accepted, refused = [], []
    for flow in build_flows(capture):
        cp, sp = flow.sides()
        if not cp or not all(_is_syn(p) for p in cp) or not any(p.flags & RST for p in sp):
            continue
        (accepted if any(_is_synack(p) for p in sp) else refused).append(flow)
    print(f"\n{capture}: {len(accepted)} unacknowledged SYN/ACK then RST, {len(refused)} refused (tshark-derived)")
    if capture == "gnutella.pcap":
        assert len(accepted) == 5           # tshark: 7 SYN/ACKs each over 76-80 s, then the RST
    blocked = blocked_of(capture)
    bad = []
    for flows, says in ((accepted, "never acknowledged"), (refused, "the SYN was answered by a RST")):
        for flow in flows:
            row = ours(flow)
            hit = blocked[blocked["flow_id"] == row["flow_id"]]
            if verdict(row)[:3] != ("REJ", True, "reset") or len(hit) != 1 or says not in hit.iloc[0]["evidence"]:
                bad.append((_label(flow), verdict(row), hit["evidence"].tolist()))
    assert not bad, bad


@lru_cache(maxsize=None)
def blocked_of(name: str) -> pd.DataFrame:
    """The capture's blocked table (flow_id as in flows_of: the same analysis)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return apnstrace.analyze([PCAPS / name]).blocked
