"""heap.Trimmer hands the heap's free pages back each time `step` more bytes were freed, and
flows.finalize.assemble trims that way as it frees the pieces' columns, the frame unchanged."""
import numpy as np
import pandas as pd
from hypothesis import given, settings, strategies as st
from test_assemble_made_columns import partials

from apnstrace import heap
from apnstrace.flows import finalize
from apnstrace.flows.finalize import assemble, flows_piece


@given(st.integers(1, 1000), st.lists(st.integers(0, 600), max_size=40))
def test_trims_each_time_step_more_bytes_were_freed(step, sizes):
    trims = []
    real = heap.hand_back_freed
    heap.hand_back_freed = lambda: trims.append(len(seen))
    try:
        trimmer, seen = heap.Trimmer(step), []
        for size in sizes:
            seen.append(size)
            trimmer.freeing(size)
    finally:
        heap.hand_back_freed = real
    want, since = [], 0           # the plain rule: bytes since the last trim reach the step
    for i, size in enumerate(sizes, 1):
        since += size
        if since >= step:
            want.append(i)
            since = 0
    assert trims == want


@given(st.lists(partials(), min_size=1, max_size=3), st.booleans())
@settings(max_examples=40, deadline=None)
def test_assemble_trims_as_it_frees_the_pieces(parts, keep_keys):
    trims = []
    real_trim, real_trimmer = heap.hand_back_freed, finalize.Trimmer
    heap.hand_back_freed = lambda: trims.append(1)
    finalize.Trimmer = lambda: real_trimmer(1)            # every piece column freed: a trim
    try:
        got = assemble([flows_piece(p) for p in parts], keep_keys=keep_keys)
    finally:
        heap.hand_back_freed, finalize.Trimmer = real_trim, real_trimmer
    want = assemble([flows_piece(p) for p in parts], keep_keys=keep_keys)
    pd.testing.assert_frame_equal(got, want)
    assert len(trims) >= len(finalize.HIDDEN) and np.all(np.array(trims) == 1)
