"""old_objects_aside: what a run built is kept out of full collections while it runs (gc.freeze),
handed back after; cycles made meanwhile are still collected; a program's own freezing is left alone."""
import gc
import weakref

import apnstrace
import apnstrace.pipeline as pl
from apnstrace.old_objects import old_objects_aside
from conftest import SAMPLES


class Node:
    pass


def test_objects_are_set_aside_while_inside_and_handed_back_after():
    assert gc.get_freeze_count() == 0
    with old_objects_aside() as set_aside:
        frozen = gc.get_freeze_count()
        assert frozen > 1000                      # the interpreter's and libraries' objects
        kept = [Node() for _ in range(500)]
        set_aside()
        assert gc.get_freeze_count() >= frozen + 500
    assert gc.get_freeze_count() == 0
    del kept


def test_cycles_made_inside_are_still_collected():
    with old_objects_aside():
        a, b = Node(), Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b
        gc.collect()
        assert gone() is None


def test_a_programs_own_freezing_is_left_alone():
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        with old_objects_aside() as set_aside:
            [Node() for _ in range(100)]
            set_aside()
            assert gc.get_freeze_count() == before
        assert gc.get_freeze_count() == before      # not handed back by us
    finally:
        gc.unfreeze()


def test_nothing_is_done_with_the_collector_disabled():
    gc.disable()
    try:
        with old_objects_aside():
            assert gc.get_freeze_count() == 0
    finally:
        gc.enable()


def test_analyze_sets_aside_after_each_chunk_and_hands_back(monkeypatch):
    calls = []
    real = pl.old_objects_aside

    def counting():
        with real() as set_aside:
            def counted():
                calls.append(gc.get_freeze_count())
                set_aside()
            yield counted

    from contextlib import contextmanager
    monkeypatch.setattr(pl, "old_objects_aside", contextmanager(counting))
    result = apnstrace.analyze(SAMPLES / "mdm_checkin.pcap", options=apnstrace.FlowOptions(chunk_bytes=4096), workers=1)
    assert len(result.flows) and len(calls) > 2 and all(count > 0 for count in calls)
    assert gc.get_freeze_count() == 0
