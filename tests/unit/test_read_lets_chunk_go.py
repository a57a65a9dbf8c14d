"""pipeline._fast_flows lets each chunk (its mapped window) go before the next is read, so two
windows are not resident at once (with the collector beside the engine, one more: the chunk it
works on, see beside.py); the result is the same whatever the chunk size."""
import weakref

import pandas as pd
import pytest
from conftest import SAMPLES

import apnstrace
import apnstrace.pipeline as pl


@pytest.mark.parametrize("cores", [1, 2])
@pytest.mark.parametrize("name", ["mdm_checkin.pcap", "blocked_reasons.pcap"])
def test_chunk_let_go_before_the_next(monkeypatch, name, cores):
    real, refs, alive = pl.iter_batches, [], []
    held = cores - 1            # windows from before the one just read that may still be alive

    def spy(*args, **kwargs):
        batches = real(*args, **kwargs)
        while (batch := next(batches, None)) is not None:
            if len(refs) > held:
                alive.append(refs[-1 - held]() is not None)
            refs.append(weakref.ref(batch.buf))
            yield batch
            del batch

    monkeypatch.setattr(pl, "iter_batches", spy)
    monkeypatch.setattr(pl, "cores_available", lambda: cores)
    got = apnstrace.analyze(SAMPLES / name, options=apnstrace.FlowOptions(chunk_bytes=4096), workers=1)
    assert len(alive) >= 2 and not any(alive)
    monkeypatch.undo()
    want = apnstrace.analyze(SAMPLES / name, workers=1)
    for frame in ("flows", "blocked", "timing", "courier", "sequences"):
        pd.testing.assert_frame_equal(getattr(got, frame), getattr(want, frame))
