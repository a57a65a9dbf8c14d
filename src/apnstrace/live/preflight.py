"""Checks made before capturing, so each user mistake is one clear sentence (exit 2): the
interface, the capture filter, the permission. Both backends go through them."""
from __future__ import annotations

import os
import socket
from pathlib import Path

from ..errors import ApnstraceError

# What apnstrace reads: TCP and UDP flows and the ICMP errors that quote them, tagged or not.
# ARP, STP, LLDP, other IP protocols and non-IP frames are left in the kernel. (A `vlan` term
# moves later offsets past the tag, so the untagged and tagged forms are both spelled out.)
DEFAULT_BPF = "tcp or udp or icmp or icmp6 or (vlan and (tcp or udp or icmp or icmp6))"

# /sys/class/net/IFACE/type (ARPHRD_*) -> pcap link type (DLT_*) of the frames a packet socket gives.
ARPHRD_TO_LINKTYPE = {1: 1, 772: 1, 65534: 101, 512: 9, 776: 101, 778: 101, 823: 101}
LINKTYPE_ETHERNET = 1
NEEDED = "capturing needs root or the CAP_NET_RAW and CAP_NET_ADMIN capabilities"


class LiveSetupError(ApnstraceError):
    """The capture could not start: one sentence for the user (the CLI exits 2)."""


def check_interface(iface: str) -> None:
    try:
        socket.if_nametoindex(iface)
    except OSError:
        known = sorted(p.name for p in Path("/sys/class/net").glob("*")) if Path("/sys/class/net").is_dir() else []
        hint = f" (interfaces here: {', '.join(known)})" if known else ""
        raise LiveSetupError(f"no such interface: {iface}{hint}") from None


def linktype_of(iface: str) -> int:
    """The pcap link type of the frames captured on `iface` (Ethernet when unknown)."""
    try:
        arphrd = int(Path(f"/sys/class/net/{iface}/type").read_text())
    except (OSError, ValueError):
        return LINKTYPE_ETHERNET
    return ARPHRD_TO_LINKTYPE.get(arphrd, LINKTYPE_ETHERNET)


def check_bpf(bpf: str, linktype: int) -> None:
    """Compile the filter with libpcap (no privilege needed): a typo fails here, named."""
    from scapy.arch.common import compile_filter
    from scapy.error import Scapy_Exception
    try:
        compile_filter(bpf, linktype=linktype)
    except (Scapy_Exception, ImportError, OSError) as exc:
        text = str(exc)                   # "Failed to compile filter expression '...' (libpcap's reason)"
        detail = text[text.rfind("(") + 1:].rstrip(")") if text.endswith(")") else text
        detail = detail.removeprefix("can't parse filter expression: ")
        raise LiveSetupError(f"capture filter (BPF) {bpf!r} is not valid: {detail}") from None


def check_permission() -> None:
    """Open (and close) a packet socket: the same privilege capturing needs."""
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    except PermissionError:
        raise LiveSetupError(f"no permission to capture (running as uid {os.geteuid()}): {NEEDED}") from None
    sock.close()


def preflight(iface: str, bpf: str) -> int:
    """All checks, in the order a user fixes them; returns the interface's link type."""
    check_interface(iface)
    linktype = linktype_of(iface)
    check_bpf(bpf, linktype)
    check_permission()
    return linktype
