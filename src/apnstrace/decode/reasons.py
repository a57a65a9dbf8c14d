"""Stable reasons a frame is left out of flows or counted as malformed (codes index the tuple)."""
from __future__ import annotations

OK = 0

# Why a well-formed frame is not a flow packet (not apnstrace's business, or evidence only).
SKIP_REASONS = (
    "",
    "linktype_unsupported",
    "not_ip",
    "ip_fragment_nonfirst",
    "other_ip_protocol",      # tunnels, GRE, ESP, SCTP, ...
    "icmp_not_error",
    "icmp_error",             # kept as evidence for the flow it quotes
    "malformed",              # see the malformed reason
)
SKIP = {name: code for code, name in enumerate(SKIP_REASONS)}

# What was wrong with a frame. A frame can be malformed and still counted in its flow when
# the damage is past its addresses and ports.
MALFORMED_REASONS = (
    "",
    "link_header_truncated",
    "vlan_header_truncated",
    "mpls_header_truncated",
    "pppoe_header_truncated",
    "ip_bad_version",
    "ipv4_header_truncated",
    "ipv4_bad_header_length",
    "ipv4_bad_total_length",
    "ipv6_header_truncated",
    "ipv6_ext_header_truncated",
    "transport_ports_truncated",
    "tcp_header_truncated",
    "tcp_bad_header_length",
    "udp_header_truncated",
    "icmp_header_truncated",
    "icmp_quote_truncated",
)
BAD = {name: code for code, name in enumerate(MALFORMED_REASONS)}
