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


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.integers(0, 1)), min_size=1, max_size=20),
       st.data(), st.sampled_from(["string[pyarrow]", object]))
def test_blocked_details_same_as_last_row_of_the_flow(rows, data, text) -> None:
    """A new MDM connection that was blocked says the last blocked-table row of its flow (not a DNS row)."""
    n = len(rows)
    flows = pd.DataFrame({"flow_id": np.arange(n, dtype=np.int64) * 3, "blocked": [b for b, _, _ in rows],
                          "_syns": [s for _, _, s in rows], "client_ip": "10.0.0.1", "ts_start": np.arange(n, dtype=float),
                          "server_name": "mdm.example", "server_ip": "17.1.1.1", "server_port": 443})
    mdm = np.array([m for _, m, _ in rows], bool)
    picked = data.draw(st.lists(st.tuples(st.integers(-1, n), st.sampled_from(["reset", "no_response", "dns_nxdomain"]),
                                          st.sampled_from(["apns", "mdm"])), max_size=12))
    blocked = pd.DataFrame({"flow_id": pd.array([None if i < 0 and not r.startswith("dns_") else max(i, 0) * 3 for i, r, _ in picked], "Int64"),
                            "reason": pd.array([r for _, r, _ in picked], dtype=text),
                            "category": [c for _, _, c in picked], "client_ip": "10.0.0.1",
                            "ts": np.arange(len(picked), dtype=float) + 0.5,
                            "sentence": pd.array([f"s{k}" for k in range(len(picked))], dtype=text),
                            "server_name": "mdm.example"})
    starts = pd.DataFrame({"row": np.empty(0, np.int64), "c2s": np.empty(0, bool), "gap": np.empty(0), "ts": np.empty(0)})
    events = checkin_events(flows, mdm, starts, blocked, SequenceOptions())
    got = {ts: None if pd.isna(d) else d for ts, d in zip(events["ts"], events["detail"]) if float(ts).is_integer()}
    want = {}
    for row in range(n):
        if mdm[row] and rows[row][2] > 0:
            said = [f"{r}: s{k}" for k, (i, r, _) in enumerate(picked) if i == row and not r.startswith("dns_")]
            want[float(row)] = said[-1] if rows[row][0] and said else None
    assert got == want
