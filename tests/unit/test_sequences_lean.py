"""sequences/build.py's _on_flows over the events' own arrays against a plain reference that
copies every kept row, on varied inputs (every event on a flow, or some on none)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from apnstrace.flows.finalize import UID
from apnstrace.sequences.build import _on_flows


def _reference(events: pd.DataFrame, flows: pd.DataFrame) -> pd.DataFrame:
    row = pd.Index(flows[UID].to_numpy()).get_indexer(events["uid"].to_numpy(np.int64))
    keep = row >= 0
    columns = {name: events[name].to_numpy()[keep].copy() for name in events.columns}
    columns["row"] = row[keep]
    client_is_a = flows["_client_is_a"].to_numpy(bool)
    columns["c2s"] = np.array([(d == 0) == client_is_a[r] for d, r in zip(columns["dir"], columns["row"])], bool)
    return pd.DataFrame(columns)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.booleans()), min_size=1, max_size=15, unique_by=lambda f: f[0]),
       st.booleans(), st.booleans(), st.data())
def test_on_flows_same_as_copying_every_kept_row(flows_rows, sort, all_on_flows, data) -> None:
    flows_rows = sorted(flows_rows) if sort else flows_rows
    flows = pd.DataFrame({UID: np.array([u for u, _ in flows_rows], np.int64),
                          "_client_is_a": np.array([a for _, a in flows_rows], bool)})
    uids = st.sampled_from([u for u, _ in flows_rows])
    event_rows = data.draw(st.lists(st.tuples(uids if all_on_flows else st.one_of(uids, st.integers(0, 33)),
                                              st.integers(0, 1), st.floats(0, 100)), min_size=1, max_size=25))
    uid, direction, ts = (list(c) for c in zip(*event_rows))
    events = pd.DataFrame({"uid": np.array(uid, np.int64), "dir": np.array(direction, np.int8),
                           "ts": np.array(ts, np.float64), "gap": np.array(ts, np.float64) / 2})
    pd.testing.assert_frame_equal(_on_flows(events, flows), _reference(events, flows), check_index_type=False)
