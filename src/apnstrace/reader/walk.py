"""Record-header walks: the one step that cannot be vectorized.

Each record's length says where the next one starts, so finding record boundaries is a
sequential walk. It runs compiled (numba) over a whole chunk and fills numpy columns; the
rest of the pipeline then works on those columns. Without numba the same functions run as
plain Python (correct, slower).
"""
from __future__ import annotations

import numpy as np

from ..numba_cache import KERNEL_OPTIONS

try:  # numba is a hard dependency, but keep the reader usable where it cannot load
    import numba
except ImportError:  # pragma: no cover - exercised only on machines without numba
    numba = None
COMPILED = numba is not None


def njit(*args, **kwargs):
    """numba.njit (plain Python without numba) with the package's KERNEL_OPTIONS unless told
    otherwise: the GIL released, as a file's metadata collector runs beside the engine in a second
    thread (pipeline.Session) and a kernel holding it would stall the other thread for its run."""
    if not COMPILED:
        return args[0] if args and callable(args[0]) else (lambda fn: fn)
    kwargs = KERNEL_OPTIONS | kwargs
    if args and callable(args[0]):
        return numba.njit(**kwargs)(args[0])
    return numba.njit(*args, **kwargs)


# Status codes returned by the walks.
NEED_MORE = 0        # stopped at an incomplete record: read more bytes (or the file is cut short)
OTHER_BLOCK = 1      # pcapng: stopped at a non-packet block for Python to read
BAD_LENGTH = 2       # a length field that cannot be right: stop reading this file
FULL = 3             # output columns full: call again
BAD_CAPLEN = 4       # pcapng: a packet block says it holds more bytes than the block has

PCAP_RECORD_HEADER = 16
# Wireshark's limit for one record; a longer one means the file is corrupt, not a big frame.
MAX_RECORD = 262_144
MAX_BLOCK = 16 << 20


@njit(cache=True, inline="always")
def _u32(buf, pos, big):
    if big:
        return (np.uint32(buf[pos]) << 24) | (np.uint32(buf[pos + 1]) << 16) | \
               (np.uint32(buf[pos + 2]) << 8) | np.uint32(buf[pos + 3])
    return (np.uint32(buf[pos + 3]) << 24) | (np.uint32(buf[pos + 2]) << 16) | \
           (np.uint32(buf[pos + 1]) << 8) | np.uint32(buf[pos])


@njit(cache=True, inline="always")
def _u16(buf, pos, big):
    if big:
        return (np.uint32(buf[pos]) << 8) | np.uint32(buf[pos + 1])
    return (np.uint32(buf[pos + 1]) << 8) | np.uint32(buf[pos])


# The walks run without the GIL: they touch only their own arrays (iter_batches' scratch is per
# call), and a chunk's walk faults its whole window in, time other threads (live capture's
# backend, a sampler) can run in. It saves no memory by itself: a memory sampler that held the
# GIL through a walk kept the previous chunk's frame alive and measured ~60 MB too much.
@njit(cache=True, nogil=True)
def walk_pcap(buf, pos, end, big, max_caplen, off, sec, frac, cap, wire):
    """Walk classic pcap records in buf[pos:end]; returns (count, next_pos, status, bad_value)."""
    n = 0
    limit = off.shape[0]
    while True:
        if end - pos < PCAP_RECORD_HEADER:
            return n, pos, NEED_MORE, 0
        if n >= limit:
            return n, pos, FULL, 0
        incl = _u32(buf, pos + 8, big)
        if incl > max_caplen:
            return n, pos, BAD_LENGTH, incl
        if end - pos - PCAP_RECORD_HEADER < incl:
            return n, pos, NEED_MORE, 0
        sec[n] = _u32(buf, pos, big)
        frac[n] = _u32(buf, pos + 4, big)
        cap[n] = incl
        wire[n] = _u32(buf, pos + 12, big)
        off[n] = pos + PCAP_RECORD_HEADER
        n += 1
        pos += PCAP_RECORD_HEADER + incl


@njit(cache=True, nogil=True)
def walk_pcapng(buf, pos, end, big, off, iface, ts_hi, ts_lo, cap, wire, has_ts):
    """Walk pcapng packet blocks (EPB, SPB, obsolete PB) in buf[pos:end].

    Stops at any other block (OTHER_BLOCK) so Python can read section headers and interface
    descriptions in order. Returns (count, next_pos, status, bad_value).
    """
    n = 0
    limit = off.shape[0]
    while True:
        if end - pos < 12:
            return n, pos, NEED_MORE, 0
        btype = _u32(buf, pos, big)
        blen = _u32(buf, pos + 4, big)
        if btype == 0x0A0D0D0A:
            return n, pos, OTHER_BLOCK, 0
        if blen < 12 or blen % 4 != 0 or blen > MAX_BLOCK:
            return n, pos, BAD_LENGTH, blen
        if end - pos < blen:
            return n, pos, NEED_MORE, 0
        if btype == 6 or btype == 2:           # enhanced / obsolete packet block
            if blen < 32:
                return n, pos, BAD_LENGTH, blen
            if n >= limit:
                return n, pos, FULL, 0
            caplen = _u32(buf, pos + 20, big)
            if caplen > blen - 32:
                return n, pos, BAD_CAPLEN, caplen
            if btype == 6:
                iface[n] = _u32(buf, pos + 8, big)
            else:
                iface[n] = _u16(buf, pos + 8, big)
            ts_hi[n] = _u32(buf, pos + 12, big)
            ts_lo[n] = _u32(buf, pos + 16, big)
            cap[n] = caplen
            wire[n] = _u32(buf, pos + 24, big)
            off[n] = pos + 28
            has_ts[n] = 1
            n += 1
        elif btype == 3:                       # simple packet block: no timestamp
            if blen < 16:
                return n, pos, BAD_LENGTH, blen
            if n >= limit:
                return n, pos, FULL, 0
            orig = _u32(buf, pos + 8, big)
            room = blen - 16
            iface[n] = 0
            ts_hi[n] = 0
            ts_lo[n] = 0
            cap[n] = orig if orig < room else room
            wire[n] = orig
            off[n] = pos + 12
            has_ts[n] = 0
            n += 1
        else:
            return n, pos, OTHER_BLOCK, 0
        pos += blen
