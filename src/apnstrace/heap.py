"""Keep freed memory on the heap for the next chunk instead of returning it to the system.

Each chunk rebuilt the open flows' columns (flows/table.py: tens of arrays of one row per
open flow) and frees the old ones. With glibc's defaults the heap's freed top is handed back
(trimmed) and taken again at the next chunk, every page of it faulted in anew: on the 20 files
of fleet_10g, with 170,000 open flows, system time rose to 0.6-0.8 s per 500 MB file and the
run spent 5.1-5.3 s in the kernel. Raising the trim threshold to 256 MiB (and fixing the mmap
threshold at 16 MiB, which setting the first one also freezes) gave 1.6-1.9 s of system time
and 24.0 -> 20.3 s of wall time, for 30-50 MB more peak RSS (bench notes, 2026-12-05).
Since the flow table keeps open flows in slots updated in place (flows/slots.py, later the same
day) the gain is smaller: 20 files, two runs each, 16.7-18.7 s and 3.5-5.1 s of system time
without, 17.0-17.6 s and 3.3-3.8 s with; kept, as each chunk's temporaries are still
chunk-sized. glibc only; elsewhere nothing is changed. Live mode still trims after each report
(live/memory.py).
"""
from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3      # mallopt() parameters (malloc.h)
TRIM_THRESHOLD = 256 << 20
MMAP_THRESHOLD = 16 << 20
_done = False


def glibc(name: str, argtypes: list, restype):
    """A glibc function by name, or None (not Linux, or a libc without it: musl and others)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
    function.argtypes, function.restype = argtypes, restype
    return function


_MALLOC_TRIM = glibc("malloc_trim", [ctypes.c_size_t], ctypes.c_int)


def hand_back_freed() -> None:
    """Return the heap's free pages to the system, holes included (malloc_trim(0); ~10 ms on
    engine_10m's heap); nothing off glibc."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


class Trimmer:
    """Hands the heap's free pages back each time `step` more bytes were freed: a loop that
    frees many small arrays (below the mmap threshold, so on the heap) while it makes large
    ones leaves holes the large ones cannot use, kept resident until a trim."""

    def __init__(self, step: int = 64 << 20) -> None:
        self.step, self.freed = step, 0

    def freeing(self, nbytes: int) -> None:
        self.freed += nbytes
        if self.freed >= self.step:
            hand_back_freed()
            self.freed = 0


def keep_freed_memory() -> bool:
    """Tune glibc's malloc once per process; True when it was tuned."""
    global _done
    if _done:
        return True
    mallopt = glibc("mallopt", [ctypes.c_int, ctypes.c_int], ctypes.c_int)
    if mallopt is None:
        return False
    _done = bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    return _done
