"""health/rst_origin.py: a RST with another TTL than the server's own packets came from a box
on the path; the server's TTL comes from the same connection, else from other flows."""
from __future__ import annotations

import numpy as np
import pandas as pd

from apnstrace.health.rst_origin import rst_origin

NAN = np.nan


def _flows(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["server_ip", "block_reason", "_s_ttl", "_s_rst_ttl"])


def test_same_connection_ttl_decides_and_a_hop_of_slack_is_allowed() -> None:
    flows = _flows([("17.1.1.1", "reset_after_handshake", 52, 64),
                    ("17.1.1.2", "reset_after_handshake", 52, 53),
                    ("17.1.1.3", "reset_after_handshake", 52, 54)])
    notes, injected = rst_origin(flows, np.arange(3))
    assert injected.tolist() == [True, False, True]
    assert "TTL 64" in notes[0] and "TTL 52" in notes[0] and "this connection" in notes[0]
    assert "matches" in notes[1] and "(53)" in notes[1]


def test_a_reset_flow_borrows_the_most_common_ttl_of_the_address() -> None:
    flows = _flows([("17.1.1.1", "reset", NAN, 64),
                    ("17.1.1.1", None, 52, NAN), ("17.1.1.1", None, 52, NAN), ("17.1.1.1", None, 250, NAN),
                    ("17.9.9.9", None, 64, NAN)])                # another address: not a reference
    notes, injected = rst_origin(flows, np.array([0]))
    assert injected.tolist() == [True]
    assert "TTL 52" in notes[0] and "in 3 other flows" in notes[0]


def test_no_reference_no_note_and_other_reasons_untouched() -> None:
    flows = _flows([("17.1.1.1", "reset", NAN, 64),            # nothing else from 17.1.1.1
                    ("17.1.1.2", "no_response", NAN, NAN),
                    ("17.1.1.3", "tls_alert", 52, 64),          # not a reset reason
                    ("17.1.1.4", "reset", NAN, NAN)])           # no RST TTL known
    notes, injected = rst_origin(flows, np.arange(4))
    assert notes.tolist() == ["", "", "", ""] and not injected.any()


def test_only_the_given_rows_are_read() -> None:
    flows = _flows([(f"17.0.0.{i}", "reset_after_handshake", 52, 64) for i in range(5)])
    notes, injected = rst_origin(flows, np.array([3, 1]))
    assert len(notes) == 2 and injected.all()


def test_without_ttl_columns_nothing_is_said() -> None:
    flows = _flows([("17.1.1.1", "reset", NAN, 64)]).drop(columns=["_s_ttl", "_s_rst_ttl"])
    notes, injected = rst_origin(flows, np.array([0]))
    assert notes.tolist() == [""] and not injected.any()
