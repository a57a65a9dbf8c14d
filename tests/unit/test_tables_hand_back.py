"""pipeline._result/_tables: Arrow's pool hands back what it keeps before _tables; timing and
courier, made first, hand back what they freed before the blocked table is made (in this thread:
they ran in a side thread, whose arena held it beside the blocked table), and the heap is handed
back between the blocked table and the sequences. The tables stay those of the plain calls."""
import threading

import pandas as pd
from conftest import SAMPLES, plain_chain

import apnstrace
import apnstrace.pipeline as pl


def test_hand_backs_come_where_their_memory_was_freed(monkeypatch):
    calls = []
    main = threading.get_ident()
    for name in ("blocked_table", "build_sequences", "_tables", "courier_table"):
        real = getattr(pl, name)
        monkeypatch.setattr(pl, name, lambda *a, _real=real, _name=name, **k: (calls.append(_name), _real(*a, **k))[1])
    monkeypatch.setattr(pl, "hand_back_freed", lambda: calls.append("heap" if threading.get_ident() == main else "side heap"))
    real_arrow = pl._hand_back_arrow_freed
    monkeypatch.setattr(pl, "_hand_back_arrow_freed",
                        lambda: (calls.append("arrow" if threading.get_ident() == main else "side arrow"), real_arrow()))
    apnstrace.analyze(SAMPLES / "mdm_checkin.pcap", workers=1)
    assert calls.index("arrow") < calls.index("_tables")
    after_blocked = calls.index("heap", calls.index("blocked_table"))
    assert after_blocked < calls.index("build_sequences")
    courier = calls.index("courier_table")
    assert calls.index("_tables") < courier < calls.index("heap", courier) < calls.index("blocked_table")
    assert calls.index("arrow", courier) < calls.index("blocked_table")
    assert "side heap" not in calls and "side arrow" not in calls


def test_timing_and_courier_are_the_plain_calls():
    got = apnstrace.analyze(SAMPLES / "courier_flapping.pcap", workers=1)
    _, flows, _ = plain_chain(SAMPLES / "courier_flapping.pcap")
    parts, courier = pl._timing_and_courier(flows)
    pd.testing.assert_frame_equal(courier, pl.courier_table(flows))
    for a, b in zip(parts, pl.flow_timing(flows), strict=True):
        pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(got.courier, courier)


def test_columns_only_the_first_tables_read_are_dropped_before_the_sequences(monkeypatch):
    seen = {}
    real = pl.build_sequences

    def spy(flows, *args, **kwargs):
        seen["names"] = set(flows.columns)
        return real(flows, *args, **kwargs)

    monkeypatch.setattr(pl, "build_sequences", spy)
    got = apnstrace.analyze(SAMPLES / "blocked_reasons.pcap", workers=1)
    assert "_syns" in seen["names"] and "_uid" in seen["names"]          # the sequences read them
    assert not seen["names"] & set(pl.SPENT_BY_TABLES)
    assert list(got.flows.columns) == pl.schema.names(pl.schema.FLOWS)


def test_drop_spent_drops_in_place():
    flows = pd.DataFrame({"flow_id": [1, 2], "_s_ttl": [64.0, 60.0], "dns_query": ["a", None], "_syns": [1, 0]})
    same = flows
    pl._drop_spent(flows)
    assert same is flows and list(flows.columns) == ["flow_id", "_syns"]
    pl._drop_spent(flows)                                                  # nothing left to drop: no error
    assert list(flows.columns) == ["flow_id", "_syns"]
