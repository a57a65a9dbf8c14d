"""Hand the memory a report rewrite freed back to the system.

A report rewrite builds the whole result again (frames, charts, files) and frees it. Those
arrays grow with the flows, so each rewrite asks for slightly larger blocks than the one
before; glibc's malloc (whose mmap threshold rises to the largest block freed) serves them
from the heap and keeps the freed holes. In live mode that showed as RSS rising ~1 MB per
second at 5,000 packets/s while the engine's own data grew ~0.2 MB (docs/live.md, Measured).
`malloc_trim(0)` after each rewrite returns the free pages (holes included), so RSS follows
what is held. Only live mode calls this: a file analysis writes its report once.
"""
from __future__ import annotations

import ctypes
import sys

from ..heap import glibc

_TRIM = glibc("malloc_trim", [ctypes.c_size_t], ctypes.c_int)      # None off glibc: skipped


def release_unused() -> None:
    """Return free pages to the OS: glibc's heap (malloc_trim) and pyarrow's pool. No
    gc.collect(): figures do not pile up between rewrites (Python's own collector frees them)
    and a full collection costs 100-200 ms with the GIL held."""
    pa = sys.modules.get("pyarrow")
    if pa is not None:
        pa.default_memory_pool().release_unused()
    if _TRIM is not None:
        _TRIM(0)
