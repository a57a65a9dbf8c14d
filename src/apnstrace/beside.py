"""One call at a time in a second thread, beside the caller's own work.

A file's chunks go through the engine (decode, flow table) and then the metadata collector;
the collector's work on chunk i needs only what the engine made of chunk i, so it can run
while the engine reads chunk i + 1. Calls run in the order given, never two at once, and the
caller waits for the one before before handing over the next: at most one chunk in each
hand. The compiled kernels release the GIL (reader/walk.py njit), which is what lets the two
threads use two cores.
"""
from __future__ import annotations

import os
import queue
import threading
import weakref
from typing import Any, Callable


class Beside:
    def __init__(self, name: str = "apnstrace-beside") -> None:
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._busy = False
        # The thread holds the queues, not this object: one dropped unclosed (a run that
        # failed part-way) is collected, and its thread told to end.
        self._thread = threading.Thread(target=_serve, args=(self._calls, self._done), name=name, daemon=True)
        self._thread.start()
        self._ended = weakref.finalize(self, self._calls.put, None)

    def run(self, fn: Callable[..., Any], *args: Any) -> None:
        """Start fn(*args) in the second thread once the call before it is done (its error,
        if it raised, is raised here instead)."""
        self.wait()
        self._calls.put((fn, args))
        self._busy = True

    def wait(self) -> None:
        """Return once every call handed over is done; raise the error of one that failed."""
        if not self._busy:
            return
        self._busy = False
        error = self._done.get()
        if error is not None:
            raise error

    def close(self) -> None:
        """wait(), then let the thread end."""
        try:
            self.wait()
        finally:
            self._ended()
            self._thread.join()


def _serve(calls: queue.SimpleQueue, done: queue.SimpleQueue) -> None:
    while (call := calls.get()) is not None:
        fn, args = call
        del call
        error = None
        try:
            fn(*args)
        except BaseException as exc:        # raised in the caller's thread (Beside.wait)
            error = exc
        # The call's arguments (a chunk's mapped window) go before the caller hears it is done:
        # it reads the next chunk then, and two windows, not three, are to be alive.
        del fn, args
        done.put(error)
        del error


def chunk_beside(chunk_bytes: int) -> int:
    """The chunk size to read with when chunks are worked on beside the engine: two are alive at
    once (one in each thread), so each is half the size and together they take what one chunk
    took (engine_10m's reading peak 957-965 MB with whole chunks, 891-894 with halves)."""
    return max(chunk_bytes // 2, 1 << 12)


def cores_available() -> int:
    """CPUs this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:       # pragma: no cover - platforms without affinity (macOS)
        return os.cpu_count() or 1
