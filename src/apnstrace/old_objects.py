"""Python's cyclic garbage collector, kept off what a run has already built.

A full collection walks every object Python tracks: the interpreter's and its libraries'
(numba, pandas, pyarrow: ~150,000 objects) and the collectors' growing state, and a run
triggers dozens of them as it allocates. On the 2M-packet benchmark capture they took 181 ms
of a 2.75 s analyze(), on the 10M-packet one 612 ms. Objects that exist once a chunk is done
are set aside (gc.freeze: full collections skip them) and handed back at the end
(gc.unfreeze); objects made meanwhile are collected as usual, so garbage cycles made by a
chunk's work still go while it runs.
"""
from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def old_objects_aside() -> Iterator[Callable[[], None]]:
    """Set aside what exists now; the value given sets aside what exists when called (after
    each chunk). Everything is handed back on leaving. A program that freezes objects itself
    (a pre-forking server) is left as it is: unfreezing would hand back its objects too."""
    if gc.get_freeze_count() or not gc.isenabled():
        yield _nothing
        return
    gc.freeze()
    try:
        yield gc.freeze
    finally:
        gc.unfreeze()


def _nothing() -> None:
    return None
