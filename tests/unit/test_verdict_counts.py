"""Counts in the verdict lines are written as the Capture line writes them (12,500,000), so a
fleet's figures read at a glance: "67,118/95,668 pushes answered", not "67118/95668"."""
from __future__ import annotations

import numpy as np

from apnstrace import schema
from apnstrace.pipeline import Result
from apnstrace.report.verdicts import _blocked, _checkins
from apnstrace.stats import RunStats


def _fleet(answered: int, silent: int, blocked: int) -> Result:
    n = answered + silent + blocked
    outcome = ["checked_in"] * answered + ["no_checkin"] * silent + ["checkin_blocked"] * blocked
    sequences = schema.to_frame({
        "device_ip": [f"10.0.{i // 250}.{i % 250}" for i in range(n)], "push_ts": np.arange(n, dtype=float),
        "latency_s": np.where(np.array(outcome) == "checked_in", 1.0, np.nan), "outcome": outcome,
        "mdm_server_inferred": np.zeros(n, bool),
    }, schema.SEQUENCES)
    flows = schema.to_frame(None, schema.FLOWS)
    blocked_rows = schema.to_frame({
        "ts": np.arange(blocked, dtype=float), "category": ["mdm"] * blocked, "sentence": ["it was blocked"] * blocked,
    }, schema.BLOCKED)
    return Result(flows=flows, stats=RunStats(), sequences=sequences, blocked=blocked_rows)


def test_verdict_counts_have_thousands_separators():
    r = _fleet(answered=67_118, silent=28_550, blocked=1_200)
    checkins = _checkins(r).text
    assert checkins.startswith("67,118/96,868 pushes answered")
    assert "28,550 pushes with no check-in" in checkins and "1,200 check-ins blocked" in checkins
    assert _blocked(r).text.startswith("1,200 (1,200 mdm); worst: it was blocked")
