"""What attach and classify hold past their use: attach(last=True) lets the collector's log go
and gives the frame attach() gives; classify() lets the codes it read go and gives the frame it
gives with them kept (and again on the same frame, the codes made anew)."""
import pandas as pd
import pytest
from conftest import SAMPLE_CAPTURES, collect_metadata

from apnstrace.classify import classify
from apnstrace.metadata import attach
from apnstrace.metadata import column_codes as CC

CAPTURES = [p for p in SAMPLE_CAPTURES if p.stat().st_size < (8 << 20)][:12]


def _attached(path, last=False):
    table, collector, _ = collect_metadata(path, tolerate=True)
    return attach(table.finish(), collector, last=last), collector


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_attach_last_is_attach_and_lets_the_log_go(path):
    want, kept = _attached(path)
    seq = kept.log.seq
    got, collector = _attached(path, last=True)
    pd.testing.assert_frame_equal(got, want)
    # the log is empty and numbers on; the DNS records stay (blocked_table reads the failures)
    assert collector.log.seq == seq
    assert all(not b for b in collector.log.batches.values()) and all(not r for r in collector.log.rows.values())
    assert len(collector.table()) == 0
    assert collector.dns == kept.dns


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_classify_lets_its_codes_go_and_says_the_same(path, monkeypatch):
    got = classify(_attached(path)[0])
    assert not CC._KEPT
    with monkeypatch.context() as m:
        import apnstrace.classify.classifier as C
        m.setattr(C, "let_go", lambda: None)
        frame = _attached(path)[0]
        want = classify(frame)
        CC.let_go()
        again = classify(frame)        # nothing handed or kept now: the codes made anew
    pd.testing.assert_frame_equal(got, want)
    pd.testing.assert_frame_equal(again, want)
