"""pipeline._result: the flows frame before block_reasons is let go before _tables (its copy is
all the later stages read), and the heap's free pages are handed back there (and before and after
assemble and after attach, Session._finished_flows, which lets the metadata collector go once attach read it,
and between classify and block_reasons, per_flow);
the result is the one the plain chain (classify -> block_reasons -> _tables) gives."""
import weakref

import pandas as pd
import pytest
from conftest import SAMPLES, plain_chain

import apnstrace
import apnstrace.pipeline as pl


@pytest.mark.parametrize("name", ["mdm_checkin.pcap", "blocked_reasons.pcap"])
def test_frame_before_block_reasons_is_let_go(monkeypatch, name):
    seen, trims = {}, []
    per_flow, tables, attach = pl.per_flow, pl._tables, pl.attach

    def spy_attach(flows, collector, **kwargs):
        seen["collector"], seen["attach_kwargs"] = weakref.ref(collector), kwargs
        return attach(flows, collector, **kwargs)

    def spy_per_flow(flows, *args, **kwargs):
        seen["before"] = weakref.ref(flows)
        return per_flow(flows, *args, **kwargs)

    def spy_tables(flows, *args, **kwargs):
        seen["alive"] = seen["before"]() is not None
        seen["collector_alive"] = seen["collector"]() is not None
        return tables(flows, *args, **kwargs)

    monkeypatch.setattr(pl, "per_flow", spy_per_flow)
    monkeypatch.setattr(pl, "_tables", spy_tables)
    monkeypatch.setattr(pl, "attach", spy_attach)
    monkeypatch.setattr(pl, "_hand_back_freed", lambda: trims.append(1))
    got = apnstrace.analyze(SAMPLES / name, workers=1)
    assert seen["alive"] is False and seen["collector_alive"] is False and trims == [1, 1, 1, 1, 1]
    assert seen["attach_kwargs"] == {"last": True}          # the log goes inside attach
    monkeypatch.undo()
    # The plain chain, every frame kept.
    session, classified, icmp = plain_chain(SAMPLES / name)
    want = pl._tables(classified, session.collector.dns.failures, session.activity, None, icmp, session.stats)
    for frame in ("flows", "blocked", "timing", "courier", "sequences"):
        pd.testing.assert_frame_equal(getattr(got, frame), getattr(want, frame))
