"""FlowTable._to_rows lets each finished part's columns go as it joins them: the piece equals
flows_piece of the parts concatenated the plain way, whatever the split into parts."""
import numpy as np
import pandas as pd
from conftest import CORPUS
from hypothesis import given, settings, strategies as st

import apnstrace
from apnstrace.flows import partials as P
from apnstrace.flows.finalize import flows_piece
from apnstrace.reader import iter_batches

_OPEN = None


def _open_flows() -> P.Partials:
    """Open flows of a real capture part-way through (partials as the table retires them)."""
    global _OPEN
    if _OPEN is None:
        session = apnstrace.pipeline.Session(apnstrace.FlowOptions(chunk_bytes=4096))
        for raw in iter_batches(CORPUS / "pcap" / "1kxun.pcap", session.stats, 4096, 100.0):
            session.add(raw)
        _OPEN = session.table.open
    return _OPEN


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_to_rows_equals_plain_concat(data) -> None:
    whole = _open_flows()
    n = len(whole["h"])
    rows = data.draw(st.permutations(range(n)).map(np.array))[: data.draw(st.integers(1, n))]
    cuts = sorted(data.draw(st.lists(st.integers(1, max(1, len(rows) - 1)), max_size=4)))
    parts = [P.take(whole, idx) for idx in np.split(rows, cuts) if len(idx)]
    want = flows_piece(P.concat([dict(p) for p in parts]))
    table = apnstrace.flows.FlowTable(apnstrace.FlowOptions())
    table.finished, table.finished_count = parts, len(rows)
    table._to_rows()
    assert table.finished == [] and table.finished_count == 0 and len(table.pieces) == 1
    pd.testing.assert_frame_equal(table.pieces[0], want)
