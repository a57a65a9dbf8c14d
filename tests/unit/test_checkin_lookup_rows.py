"""sequences/checkins.py: failed lookups of MDM names find their DNS flow's row by binary search
(sequences/rows.py) when flow ids are sorted: the same rows as a hash lookup over every flow."""
from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from apnstrace.options import SequenceOptions
from apnstrace.sequences.checkins import checkin_events


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=30, unique=True), st.booleans(), st.data())
def test_failed_lookup_rows_same_as_index_lookup(ids, shuffled, data) -> None:
    flow_id = np.array(ids if shuffled else sorted(ids), np.int64)
    n = len(flow_id)
    flows = pd.DataFrame({"flow_id": flow_id, "blocked": False, "_syns": 0, "client_ip": "10.0.0.1",
                          "ts_start": np.arange(n, dtype=float), "server_name": "mdm.example",
                          "server_ip": "17.1.1.1", "server_port": 443})
    picked = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.sampled_from(["mdm", "dns"])), min_size=1, max_size=10))
    blocked = pd.DataFrame({"flow_id": [int(flow_id[i]) for i, _ in picked], "reason": "dns_nxdomain",
                            "category": [c for _, c in picked], "client_ip": "10.0.0.1",
                            "ts": np.arange(len(picked), dtype=float) + 0.5, "sentence": "s", "server_name": "mdm.example"})
    starts = pd.DataFrame({"row": np.empty(0, np.int64), "c2s": np.empty(0, bool), "gap": np.empty(0), "ts": np.empty(0)})
    events = checkin_events(flows, np.zeros(n, bool), starts, blocked, SequenceOptions())
    mdm = blocked[blocked["category"] == "mdm"]
    want = dict(zip(mdm["ts"], pd.Index(flow_id).get_indexer(mdm["flow_id"].to_numpy(np.int64)).tolist()))
    assert dict(zip(events["ts"], events["row"].tolist())) == want
