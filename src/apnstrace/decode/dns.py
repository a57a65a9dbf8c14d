"""DNS messages (RFC 1035) as the flows table needs them: questions, answers, response code.

Hand-written for speed on the one path that sees every DNS packet. Only the header, question
and answer sections are read (authority and additional records are never needed). Names are
lowercase text without the trailing dot; compression pointers must point backwards and at most
MAX_JUMPS of them are followed per name, so any input is linear work.
"""
from __future__ import annotations

import socket
from dataclasses import dataclass

from .malformed import Malformed
from .tls import PRINTABLE, text

__all__ = ["DnsAnswer", "DnsMessage", "parse_dns", "rcode_name", "type_name"]

MAX_JUMPS = 32           # real names use a handful; a chain longer than this is hostile
MAX_NAME = 255           # RFC 1035 3.1: wire length of a name, length bytes included

A, CNAME, AAAA = 1, 5, 28
_TYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 13: "HINFO", 15: "MX", 16: "TXT", 28: "AAAA",
          33: "SRV", 35: "NAPTR", 39: "DNAME", 41: "OPT", 43: "DS", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY",
          50: "NSEC3", 64: "SVCB", 65: "HTTPS", 252: "AXFR", 255: "ANY", 257: "CAA"}
_RCODES = ("NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
           "NXRRSET", "NOTAUTH", "NOTZONE", "DSOTYPENI")


def type_name(rtype: int) -> str:
    """1 -> "A"; unknown types as RFC 3597 spells them ("TYPE65280")."""
    return _TYPES.get(rtype) or f"TYPE{rtype}"


def rcode_name(rcode: int) -> str:
    return _RCODES[rcode] if rcode < len(_RCODES) else f"RCODE{rcode}"


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    name: str
    rtype: str               # "A", "AAAA", "CNAME", ... ("TYPE65280" when unknown)
    value: str | None        # address text (A/AAAA), target name (CNAME); None for other types
    ttl: int


@dataclass(frozen=True, slots=True)
class DnsMessage:
    id: int
    is_response: bool
    rcode: int               # header RCODE (4 bits; the EDNS extension is not read)
    rcode_name: str          # "NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED", ... "RCODE12"
    questions: tuple[tuple[str, str], ...]    # (name, qtype name)
    answers: tuple[DnsAnswer, ...]


def parse_dns(payload: bytes, over_tcp: bool = False) -> DnsMessage:
    """One DNS message; over_tcp: the payload starts with the 2-byte length prefix (RFC 1035 4.2.2).

    A TCP message longer than the payload is read as far as it goes (its answers may be cut:
    then Malformed). Anything after the first message is ignored.
    """
    msg = payload
    if over_tcp:
        if len(payload) < 2:
            raise Malformed("dns_tcp_length_truncated")
        msg = payload[2:2 + (payload[0] << 8 | payload[1])]
    end = len(msg)
    if end < 12:
        raise Malformed("dns_header_truncated")
    flags = msg[2] << 8 | msg[3]
    qdcount = msg[4] << 8 | msg[5]
    ancount = msg[6] << 8 | msg[7]
    names: dict[int, tuple[str, int]] = {}   # offset -> (name starting there, its wire length)
    pos = 12
    questions = []
    for _ in range(qdcount):
        name, pos = _name(msg, pos, names)
        if pos + 4 > end:
            raise Malformed("dns_question_truncated")
        questions.append((name, type_name(msg[pos] << 8 | msg[pos + 1])))
        pos += 4
    answers = []
    for _ in range(ancount):
        name, pos = _name(msg, pos, names)
        if pos + 10 > end:
            raise Malformed("dns_answer_truncated")
        rtype = msg[pos] << 8 | msg[pos + 1]
        ttl = msg[pos + 4] << 24 | msg[pos + 5] << 16 | msg[pos + 6] << 8 | msg[pos + 7]
        start = pos + 10
        pos = start + (msg[pos + 8] << 8 | msg[pos + 9])
        if pos > end:
            raise Malformed("dns_answer_truncated")
        value = None
        if rtype == A:
            if pos - start != 4:
                raise Malformed("dns_bad_rdata")
            value = f"{msg[start]}.{msg[start + 1]}.{msg[start + 2]}.{msg[start + 3]}"
        elif rtype == AAAA:
            if pos - start != 16:
                raise Malformed("dns_bad_rdata")
            value = socket.inet_ntop(socket.AF_INET6, msg[start:pos])
        elif rtype == CNAME:
            value, stop = _name(msg, start, names)
            if stop != pos:
                raise Malformed("dns_bad_rdata")
        answers.append(DnsAnswer(name, type_name(rtype), value, ttl))
    rcode = flags & 0xF
    return DnsMessage(msg[0] << 8 | msg[1], bool(flags & 0x8000), rcode, rcode_name(rcode),
                      tuple(questions), tuple(answers))


def _name(msg: bytes, pos: int, names: dict[int, tuple[str, int]]) -> tuple[str, int]:
    """(name, offset after it in place) for the name at pos, following compression pointers."""
    start = pos
    known = names.get(pos)
    if known is not None:
        return known[0], _skip(msg, pos)
    labels: list[bytes] = []         # raw labels read in place or after jumps
    suffix = ""                      # an already decoded name a pointer led to
    after = -1                       # where the in-place part ends (set at the first pointer)
    jumps = 0
    size = 1                         # wire length so far: the root label's zero byte
    end = len(msg)
    while True:
        if pos >= end:
            raise Malformed("dns_name_truncated")
        length = msg[pos]
        if length == 0:
            pos += 1
            break
        if length >= 0xC0:
            if pos + 1 >= end:
                raise Malformed("dns_name_truncated")
            target = (length & 0x3F) << 8 | msg[pos + 1]
            if after < 0:
                after = pos + 2
            if target >= pos:
                raise Malformed("dns_bad_pointer")       # forward or self: the loop guard
            jumps += 1
            if jumps > MAX_JUMPS:
                raise Malformed("dns_name_loop")
            known = names.get(target)
            if known is not None:
                suffix = known[0]
                size += known[1] - 1
                if size > MAX_NAME:
                    raise Malformed("dns_name_too_long")
                break
            pos = target
            continue
        if length > 63:
            raise Malformed("dns_bad_label")                 # 0x40 / 0x80: extended label types
        stop = pos + 1 + length
        if stop > end:
            raise Malformed("dns_name_truncated")
        size += length + 1
        if size > MAX_NAME:
            raise Malformed("dns_name_too_long")
        labels.append(msg[pos + 1:stop])
        pos = stop
    name = _join(labels)
    if suffix:
        name = f"{name}.{suffix}" if name else suffix
    names[start] = (name, size)
    return name, (pos if after < 0 else after)


def _skip(msg: bytes, pos: int) -> int:
    """Offset after the in-place part of a name already decoded (its bounds were checked)."""
    while True:
        length = msg[pos]
        if length == 0:
            return pos + 1
        if length >= 0xC0:
            return pos + 2
        pos += 1 + length


def _join(labels: list[bytes]) -> str:
    """Labels as one lowercase dotted name; a dot inside a label is escaped, not a separator."""
    if not labels:
        return ""
    raw = b".".join(labels).lower()
    if not raw.translate(None, PRINTABLE) and raw.count(b".") == len(labels) - 1:
        return raw.decode("ascii")                           # the usual case: one decode per name
    return ".".join(text(label.lower()).replace(".", "\\x2e") for label in labels)
