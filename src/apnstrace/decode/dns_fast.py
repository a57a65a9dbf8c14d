"""What the collector needs from DNS messages, for every message of a chunk in one compiled call.

parse_dns (dns.py) stays the reference; this reads the same bytes with the same checks and
says, per message, "ok" (then question, rcode and A/AAAA answers are exactly parse_dns's),
the Malformed reason parse_dns raises, or "ask parse_dns" (long pointer chains, names that do
not fit the output). A message without a question name (mDNS announcements) names its
addresses by each answer's owner name, which the scan then writes too. Of parse_dns's cache of
decoded names only the first question's (offset 12, where answers usually point) is kept; the
cache only saves work on bytes already checked, but it can make a pointer chain count fewer
jumps, so a chain too long here is a fallback, never a verdict.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ..reader.walk import njit
from .dns import A, AAAA, CNAME, MAX_JUMPS, MAX_NAME
from .raw_memory import prefetch

__all__ = ["FALLBACK", "OK", "REASONS", "DnsScan", "scan_dns"]

NAME_SLOT = 1024         # bytes of a decoded name at most: a name is at most 253 bytes, each
                         # written as at most 4 (\xNN)
_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)
# Per byte of a label: how parse_dns writes it when it stays one byte (capitals lowered), 0 when
# it is escaped as \xNN (outside printable ASCII, a backslash, a dot inside a label).
_PLAIN = np.array([0 if (c < 0x20 or c > 0x7E or c in (0x5C, 0x2E)) else c
                   for c in (b + 0x20 if 0x41 <= b <= 0x5A else b for b in range(256))], np.uint8)
# reason: 0 ok; parse_dns's own Malformed reasons (a verdict: parse_dns raises exactly this one,
# checks being made in its order); FALLBACK: ask parse_dns.
REASONS = ("", "fallback", "dns_name_truncated", "dns_bad_pointer", "dns_bad_label", "dns_name_too_long",
           "dns_header_truncated", "dns_question_truncated", "dns_answer_truncated", "dns_bad_rdata")
OK, FALLBACK = 0, 1
_TRUNC, _POINTER, _LABEL, _LONG, _HEADER, _QUESTION, _ANSWER, _RDATA = range(2, 10)


PREFETCH_AHEAD = 8      # messages: a chunk's DNS payloads lie scattered among its packets, mostly
                        # out of cache; their first two cache lines are asked for this far ahead


@dataclass(slots=True)
class DnsScan:
    """Per message i of the (off, cap) given; then per A/AAAA answer of the ok responses. Names
    are written back to back (no fixed slot per message: only bytes written are touched), laid
    out as Arrow string columns want them: the question names of the ok messages that have one,
    in message order, are names[qname_at[i]:qname_at[i] + qname_len[i]] with nothing between
    them; answer j's name is answer_names[answer_name_end[j]:answer_name_end[j + 1]]."""
    reason: np.ndarray        # int8 index into REASONS
    is_response: np.ndarray   # bool
    rcode: np.ndarray         # int64
    failed: np.ndarray        # bool: an ok response that failed the client (error rcode, or only
                              # null routes answered: 0/8, 127/8, ::, ::1)
    qdcount: np.ndarray       # int64
    qtype: np.ndarray         # int64: the first question's type
    qname_at: np.ndarray      # int64: the first question's name in `names`, as parse_dns writes it
    qname_len: np.ndarray     # int64 (0 for a message not ok)
    answer_first: np.ndarray  # int64: message i's answers are answer_*[first[i]:first[i + 1]]
                              # (a query's answer records are checked, not kept)
    answer_msg: np.ndarray    # int64 per answer: its message
    answer_at: np.ndarray     # int64 absolute buffer offset of the address bytes
    answer_v6: np.ndarray     # bool: 16 bytes (AAAA), else 4 (A)
    answer_name_end: np.ndarray  # int64 [answers + 1]: per answer the name the collector gives its
                                 # address: the question's, else (none or the root) its owner name
    names: np.ndarray         # uint8: question names
    answer_names: np.ndarray  # uint8: answer names
    used: np.ndarray          # int64 [5]: bytes written in names, in answer_names; messages left
                              # to parse_dns (FALLBACK); responses with a Malformed reason; messages
                              # in `asked`
    asked: np.ndarray         # int64: the ok messages with a question (qdcount > 0), in order:
                              # asked[:used[4]]
    asked_off: np.ndarray     # int64: their question names in `names`, as Arrow string offsets:
                              # asked_off[:used[4] + 1] (from 0: only those names are kept in `names`)
    bad_count: np.ndarray     # int64 per REASONS index: responses with that Malformed reason
    bad_first: np.ndarray     # int64 per REASONS index: the first such response (its message)


def scan_dns(buf: np.ndarray, off: np.ndarray, cap: np.ndarray, reuse: bool = False) -> DnsScan:
    """Every message at buf[off[i]:off[i] + cap[i]]. reuse: the result's arrays are this thread's
    scratch, valid until its next scan_dns(reuse=True) (fresh arrays cost a page fault per page
    the scan writes, and zeroing: ~0.1 ms a chunk of 4,000 messages)."""
    n = len(off)
    off = np.ascontiguousarray(off, np.int64)
    cap = np.ascontiguousarray(cap, np.int64)
    # An answer record takes at least 11 bytes of its message: this bounds the answer columns,
    # left unfilled (np.empty: untouched pages cost nothing; only rows below answer_first[n] are read).
    total = int(cap.sum())
    room = total // 11 + 1
    # names: a budget (4 bytes per payload byte: an escaped byte takes 4); a message whose
    # names do not fit (pointers can repeat bytes, answers repeat the question) is left to parse_dns.
    budget = 4 * total + NAME_SLOT
    out = _SCRATCH.views(n, room, budget) if reuse else _fresh(n, room, budget)
    _scan(buf, off, cap, *out)
    return DnsScan(*out)


def _fresh(n: int, room: int, budget: int) -> tuple:
    """The scan's output arrays, in DnsScan's order (the zeros ones are read where not written)."""
    return (np.zeros(n, np.int8), np.zeros(n, np.bool_), np.zeros(n, np.int64), np.zeros(n, np.bool_),
            np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64),
            np.zeros(n + 1, np.int64), np.empty(room, np.int64), np.empty(room, np.int64), np.empty(room, np.bool_),
            np.empty(room + 1, np.int64), np.empty(budget, np.uint8), np.empty(budget, np.uint8), np.zeros(5, np.int64),
            np.empty(n, np.int64), np.empty(n + 1, np.int64), np.zeros(len(REASONS), np.int64),
            np.zeros(len(REASONS), np.int64))


class _Scratch(threading.local):
    """_fresh's arrays kept between scans (per thread), grown when a scan needs more; views of
    exactly _fresh's sizes (the scan's room checks read their lengths), the zeros ones zeroed."""

    def __init__(self) -> None:
        self.sizes = (-1, -1, -1)
        self.arrays: tuple = ()

    def views(self, n: int, room: int, budget: int) -> tuple:
        if n > self.sizes[0] or room > self.sizes[1] or budget > self.sizes[2]:
            self.sizes = tuple(max(need, 2 * had) for need, had in zip((n, room, budget), self.sizes))
            self.arrays = _fresh(*self.sizes)
        sizes = (n, n, n, n, n, n, n, n, n + 1, room, room, room, room + 1, budget, budget, 5, n, n + 1,
                 len(REASONS), len(REASONS))
        out = tuple(a[:size] for a, size in zip(self.arrays, sizes))
        for i in _ZEROED:
            out[i].fill(0)
        return out


_ZEROED = (0, 1, 2, 3, 4, 5, 6, 7, 8, 15, 18, 19)     # _fresh's np.zeros ones
_SCRATCH = _Scratch()


@njit(cache=True, inline="always")
def _name(buf, base, end, pos, out, at, write, known_size):
    """(offset after the name at pos in place, its decoded length, its wire size); (-reason, 0, 0)
    when parse_dns raises reason, (-FALLBACK, 0, 0) when it would do something this path does not
    (judge a long pointer chain with its cache) or the name does not fit.

    write: put the name, lowercased and dot-joined, at out[at:] (at most NAME_SLOT bytes).
    known_size: the wire size of the message's first question name (at offset 12), 0 if none yet:
    a pointer to it ends the walk as parse_dns's cache of decoded names does (not when writing)."""
    jumps = 0
    size = 1
    after = -1
    length_out = 0
    room = min(NAME_SLOT, len(out) - at)
    while True:
        if pos >= end:
            return -_TRUNC, 0, 0
        length = buf[base + pos]
        if length == 0:
            pos += 1
            break
        if length >= 0xC0:
            if pos + 1 >= end:
                return -_TRUNC, 0, 0
            target = ((length & 0x3F) << 8) | buf[base + pos + 1]
            if after < 0:
                after = pos + 2
            if target >= pos:
                return -_POINTER, 0, 0
            jumps += 1
            if jumps > MAX_JUMPS:
                return -FALLBACK, 0, 0
            if target == 12 and known_size > 0 and not write:
                size += known_size - 1
                if size > MAX_NAME:
                    return -_LONG, 0, 0
                break
            pos = target
            continue
        if length > 63:
            return -_LABEL, 0, 0
        stop = pos + 1 + length
        if stop > end:
            return -_TRUNC, 0, 0
        size += length + 1
        if size > MAX_NAME:
            return -_LONG, 0, 0
        if write:
            if length_out > 0:
                if length_out + 1 > room:
                    return -FALLBACK, 0, 0
                out[at + length_out] = 0x2E
                length_out += 1
            if length_out + 4 * length <= room:
                # The label fits even if every byte is escaped. The usual one has every byte
                # plain: one branch-free pass (unsigned indices); else it is written again, escaped.
                o = np.uint64(at + length_out)
                src = np.uint64(base + pos + 1)
                plain = True
                for j in range(np.uint64(length)):
                    c = _PLAIN[buf[src + j]]
                    out[o + j] = c
                    plain &= c != 0
                if plain:
                    length_out += length
                    pos = stop
                    continue
                o = at + length_out
                for j in range(pos + 1, stop):
                    c = _PLAIN[buf[base + j]]
                    if c:
                        out[o] = c
                        o += 1
                    else:
                        b = buf[base + j]
                        out[o] = 0x5C
                        out[o + 1] = 0x78
                        out[o + 2] = _HEX[b >> 4]
                        out[o + 3] = _HEX[b & 15]
                        o += 4
                length_out = o - at
                pos = stop
                continue
            for j in range(pos + 1, stop):
                b = buf[base + j]
                if 0x41 <= b <= 0x5A:
                    b += 0x20
                if b < 0x20 or b > 0x7E or b == 0x5C or b == 0x2E:
                    # parse_dns's text: \xNN (lowercase hex), a dot inside a label too
                    if length_out + 4 > room:
                        return -FALLBACK, 0, 0
                    out[at + length_out] = 0x5C
                    out[at + length_out + 1] = 0x78
                    out[at + length_out + 2] = _HEX[b >> 4]
                    out[at + length_out + 3] = _HEX[b & 15]
                    length_out += 4
                    continue
                if length_out + 1 > room:
                    return -FALLBACK, 0, 0
                out[at + length_out] = b
                length_out += 1
        pos = stop
    return (pos if after < 0 else after), length_out, size


@njit(cache=True)
def _scan(buf, off, cap, reason, is_response, rcode, failed, qdcount, qtype, qname_at, qname_len,
          answer_first, answer_msg, answer_at, answer_v6, answer_name_end, names, answer_names, used_out,
          asked, asked_off, bad_count, bad_first):
    k = 0
    n_asked = 0
    used = 0                                  # bytes of `names` written (by messages kept)
    a_used = 0                                # bytes of `answer_names` written
    answer_name_end[0] = 0
    for i in range(len(off)):
        answer_first[i] = k
        if i + PREFETCH_AHEAD < len(off):
            ahead = off[i + PREFETCH_AHEAD]
            prefetch(buf, ahead)
            prefetch(buf, ahead + 64)
        base = off[i]
        end = cap[i]
        if end >= 3:
            is_response[i] = (buf[base + 2] & 0x80) != 0   # malformed answers are counted, queries not
        if end < 12:
            reason[i] = _HEADER
            if is_response[i]:
                used_out[3] += 1
                if bad_count[_HEADER] == 0:
                    bad_first[_HEADER] = i
                bad_count[_HEADER] += 1
            continue
        flags = (buf[base + 2] << 8) | buf[base + 3]
        qd = (buf[base + 4] << 8) | buf[base + 5]
        an = (buf[base + 6] << 8) | buf[base + 7]
        pos = 12
        bad = OK
        first = k
        first_used = used
        first_a_used = a_used
        real = 0                              # addresses that are not null routes
        known = 0
        for q in range(qd):
            pos, length, size = _name(buf, base, end, pos, names, used, q == 0, known)
            if pos < 0:
                bad = -pos
                break
            if pos + 4 > end:
                bad = _QUESTION
                break
            if q == 0:
                qname_at[i] = used
                qname_len[i] = length
                used += length
                # parse_dns's cache of the name at 12: pointers to it are not walked again
                known = size
                qtype[i] = (buf[base + pos] << 8) | buf[base + pos + 1]
            pos += 4
        # Without a question name (none, or the root) the collector names each address by its
        # answer's owner name: write those (kept only for A/AAAA answers).
        owned = bad == OK and (qd == 0 or qname_len[i] == 0)
        for _ in range(an if bad == OK else 0):
            pos, length, size = _name(buf, base, end, pos, answer_names, a_used, owned, known)
            if pos < 0:
                bad = -pos
                break
            if pos + 10 > end:
                bad = _ANSWER
                break
            rtype = (buf[base + pos] << 8) | buf[base + pos + 1]
            start = pos + 10
            pos = start + ((buf[base + pos + 8] << 8) | buf[base + pos + 9])
            if pos > end:
                bad = _ANSWER
                break
            if rtype == A or rtype == AAAA:
                if pos - start != (4 if rtype == A else 16):
                    bad = _RDATA
                    break
                if not is_response[i]:
                    continue
                real += not _null_route(buf, base + start, rtype == AAAA)
                answer_msg[k] = i
                answer_at[k] = base + start
                answer_v6[k] = rtype == AAAA
                if not owned:                 # the question's name (the owner's was written)
                    length = qname_len[i]
                    if a_used + length > len(answer_names):
                        bad = FALLBACK
                        break
                    src = np.uint64(qname_at[i])      # unsigned, no slice: a vectorized copy
                    dst = np.uint64(a_used)
                    for j in range(np.uint64(length)):
                        answer_names[dst + j] = names[src + j]
                a_used += length
                k += 1
                answer_name_end[k] = a_used
            elif rtype == CNAME:
                stop, _length, _size = _name(buf, base, end, start, names, used, False, known)
                if stop < 0:
                    bad = -stop
                    break
                if stop != pos:
                    bad = _RDATA
                    break
        reason[i] = bad
        if bad != OK:
            if bad == FALLBACK:
                used_out[2] += 1
            elif is_response[i]:
                used_out[3] += 1
                if bad_count[bad] == 0:
                    bad_first[bad] = i
                bad_count[bad] += 1
            k = first
            used = first_used
            a_used = first_a_used
            qname_len[i] = 0
            continue
        rcode[i] = flags & 0xF
        qdcount[i] = qd
        if qd > 0:
            asked[n_asked] = i
            asked_off[n_asked] = qname_at[i]
            n_asked += 1
        failed[i] = is_response[i] and (rcode[i] != 0 or (k > first and real == 0))
    answer_first[len(off)] = k
    used_out[0] = used
    used_out[1] = a_used
    used_out[4] = n_asked
    asked_off[n_asked] = used


@njit(cache=True)
def _null_route(buf, p, v6):
    """0/8, 127/8, :: or ::1 (dns_feed.failure_of's SINKHOLE addresses)."""
    if not v6:
        return buf[p] == 0 or buf[p] == 127
    for j in range(15):
        if buf[p + j] != 0:
            return False
    return buf[p + 15] <= 1
