"""Drop the metadata readers' scratch kept between chunks, once a run no longer needs it.

The readers keep room from chunk to chunk, per thread or per module (fresh pages each chunk
cost page faults): on engine_2m ~60 MB (pick's row room 40, the flight buffers, the plan and
group tables, the key tables). A run that keeps it after its last chunk holds it through the
later stages' peak, and a notebook holding a result holds it for good. Each holder drops its own
(a release_scratch() beside it); the next run grows them again, once.
"""
from __future__ import annotations

from . import collect, fast_streams, flight_streams, key_set, pick


def release_reading() -> None:
    """What only MetadataCollector.add uses: after the last chunk (attach reads none of it)."""
    pick.release_scratch()
    collect.release_scratch()
    flight_streams.release_scratch()
    fast_streams.release_scratch()


def release_all() -> None:
    """All of it, at the end of a run (attach, the stages after it and the next add make
    theirs again, as a new run does)."""
    release_reading()
    key_set.release_scratch()
