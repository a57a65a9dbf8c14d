"""metadata/scratch.py: the readers' scratch is dropped at the end of a run, and a run after
that (its scratch grown again, at rest as new) gives the same result as one before it."""
import threading

import pandas as pd
import pytest

import apnstrace
from apnstrace.metadata import collect, fast_streams, flight_streams, key_set, pick, scratch

from conftest import SAMPLES

HOLDERS = (vars(pick._ROW_ARRAYS), pick._SCRATCH, vars(collect._PLAN_TABLES), flight_streams._SCRATCH,
           vars(fast_streams._GROUP_TABLES), vars(key_set._TABLES))


def _frames(result):
    return {name: getattr(result, name) for name in ("flows", "blocked", "timing", "courier", "sequences")}


@pytest.mark.parametrize("name", ["mdm_checkin.pcap", "blocked_reasons.pcap", "courier_push.pcap"])
def test_a_run_leaves_no_scratch_and_the_next_run_agrees(name):
    path = SAMPLES / name
    first = _frames(apnstrace.analyze(path, workers=1))
    assert not any(HOLDERS), "scratch kept after the run"
    second = _frames(apnstrace.analyze(path, workers=1, options=apnstrace.FlowOptions(chunk_bytes=1 << 12)))
    again = _frames(apnstrace.analyze(path, workers=1))
    for frame in first:
        pd.testing.assert_frame_equal(first[frame], again[frame])
        pd.testing.assert_frame_equal(first[frame], second[frame])


def test_release_drops_only_this_threads_tables():
    pick._SCRATCH.append(object())
    key_set._table(10)
    seen = []
    other = threading.Thread(target=lambda: (key_set._table(10), scratch.release_all(),
                                             seen.append(hasattr(key_set._TABLES, "table"))))
    other.start()
    other.join()
    assert seen == [False] and hasattr(key_set._TABLES, "table")
    scratch.release_all()
    assert not any(HOLDERS)
