"""Sequence kernels (src/apnstrace/sequences/kernels.py, build._match, followups) against
straightforward Python versions of the rules in docs/sequences.md."""
from __future__ import annotations

from bisect import bisect_left, bisect_right

import numpy as np
import pandas as pd
import pytest

from apnstrace.options import SequenceOptions
from apnstrace.sequences import kernels
from apnstrace.sequences.build import DURING_SESSION, _match
from apnstrace.sequences.followups import FOLLOWUP_CATEGORIES, followups

WINDOW = 60.0


# ---- references ---------------------------------------------------------------------------

def ref_match(pushes: list[tuple], events: list[tuple], window: float) -> list[dict]:
    """pushes: (device, ts, row, bytes); events: (device, ts, row, ok, detail, server)."""
    rows, unsolicited = [], []
    devices = list(dict.fromkeys([p[0] for p in sorted(pushes, key=lambda p: p[1])]))
    devices += [d for d in dict.fromkeys(e[0] for e in events) if d not in devices]
    for device in devices:
        ev = sorted((e for e in events if e[0] == device), key=lambda e: e[1])
        ts = [e[1] for e in ev]
        taken = [False] * len(ev)
        session_end = -np.inf
        for _, p, prow, pbytes in sorted((p for p in pushes if p[0] == device), key=lambda p: p[1]):
            row = dict(device_ip=device, push_ts=p, push_row=prow, push_bytes=pbytes, checkin_ts=np.nan,
                       checkin_row=np.nan, mdm_server=None, outcome="no_checkin", detail=None)
            lo, hi = bisect_right(ts, p), bisect_right(ts, p + window)
            free = [i for i in range(lo, hi) if not taken[i]]
            good = [i for i in free if ev[i][3]]
            if good:
                i = good[0]
                row.update(outcome="checked_in", checkin_ts=ts[i], checkin_row=ev[i][2], mdm_server=ev[i][5])
                session_end = ts[i] + window
                for j in range(lo, bisect_right(ts, session_end)):
                    taken[j] = True
            elif free:
                i = free[0]
                row.update(outcome="checkin_blocked", checkin_ts=ts[i], checkin_row=ev[i][2], mdm_server=ev[i][5],
                           detail=ev[i][4])
                for j in free:
                    taken[j] = True
            elif p <= session_end:
                row["detail"] = DURING_SESSION
            rows.append(row)
        until = -np.inf
        for e, t in zip(ev, taken):
            if t or e[1] <= until:
                continue
            until = e[1] + window
            unsolicited.append(dict(device_ip=device, push_ts=np.nan, push_row=np.nan, push_bytes=np.nan,
                                    checkin_ts=e[1], checkin_row=e[2], mdm_server=e[5],
                                    outcome="unsolicited_checkin", detail=None if e[3] else e[4]))
    return rows + unsolicited


def ref_provider(push_ts: list[float], req_ts: list[float], before: float) -> list[int]:
    taken, out = set(), []
    for p in push_ts:
        pick = next((j for j in range(len(req_ts)) if p - before <= req_ts[j] <= p and j not in taken), -1)
        if pick >= 0:
            taken.add(pick)
        out.append(pick)
    return out


def ref_followups(devices, outcomes, checkin_ts, flows: pd.DataFrame, window: float):
    names, counts = [], []
    for device, outcome, t in zip(devices, outcomes, checkin_ts):
        if outcome != "checked_in":
            names.append(None)
            counts.append(np.nan)
            continue
        hit = flows[(flows["client_ip"] == device) & flows["category"].isin(FOLLOWUP_CATEGORIES)
                    & (flows["ts_start"] > t) & (flows["ts_start"] <= t + window)].sort_values("ts_start", kind="stable")
        names.append(",".join(dict.fromkeys(hit["category"])) or None)
        counts.append(float(hit["blocked"].fillna(False).sum()))
    return names, counts


# ---- helpers ------------------------------------------------------------------------------

def frames(pushes: list[tuple], events: list[tuple]) -> tuple[pd.DataFrame, pd.DataFrame]:
    p = pd.DataFrame(pushes, columns=["device_ip", "push_ts", "row", "push_bytes"]).astype(
        {"device_ip": object, "push_ts": float, "row": np.int64, "push_bytes": np.int64})
    e = pd.DataFrame(events, columns=["device_ip", "ts", "row", "ok", "detail", "server"]).astype(
        {"device_ip": object, "ts": float, "row": np.int64, "ok": bool, "detail": object, "server": object})
    # as build_sequences and checkin_events hand them over
    p = p.sort_values(["push_ts", "device_ip"], kind="stable").reset_index(drop=True)
    e = e.sort_values(["device_ip", "ts"], kind="stable").reset_index(drop=True)
    return p, e


def run_match(pushes, events, window=WINDOW) -> pd.DataFrame:
    p, e = frames(pushes, events)
    got = pd.DataFrame(_match(p, e, SequenceOptions(window_s=window)))
    want = pd.DataFrame(ref_match(list(p.itertuples(index=False, name=None)),
                                  list(e.itertuples(index=False, name=None)), window), columns=list(got.columns))
    # same rows; the kernel lists push rows grouped by device, the reference per device
    key = ["device_ip", "push_ts", "checkin_ts", "outcome"]
    got_s = got.sort_values(key, kind="stable").reset_index(drop=True)
    want_s = want.sort_values(key, kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(got_s, want_s, check_dtype=False)
    return got


def ev(device, ts, ok=True, row=0, detail=None, server="mdm:8443"):
    return (device, ts, row, ok, detail if not ok else None, server)


# ---- match --------------------------------------------------------------------------------

def test_events_without_pushes_are_unsolicited_sessions():
    got = run_match([], [ev("a", 10), ev("a", 30), ev("a", 71), ev("b", 5, ok=False, detail="dns_nxdomain: x")])
    assert list(got["outcome"]) == ["unsolicited_checkin"] * 3
    assert sorted(got["checkin_ts"]) == [5, 10, 71]


def test_pushes_without_events():
    got = run_match([("a", 1.0, 3, 100), ("a", 200.0, 3, 90), ("b", 5.0, 4, 80)], [])
    assert list(got["outcome"]) == ["no_checkin"] * 3
    assert got["detail"].isna().all()


def test_two_pushes_in_one_session():
    got = run_match([("a", 0.0, 1, 100), ("a", 20.0, 1, 100)], [ev("a", 2), ev("a", 25), ev("a", 61)])
    assert list(got["outcome"]) == ["checked_in", "no_checkin"]
    assert got["detail"].iloc[1] == DURING_SESSION


def test_blocked_only_window():
    got = run_match([("a", 0.0, 1, 100), ("a", 100.0, 1, 100)],
                    [ev("a", 1, ok=False, detail="no_response: x"), ev("a", 3, ok=False, detail="rst: y"),
                     ev("a", 101, ok=False, detail="dns_nxdomain: z"), ev("a", 102)])
    assert list(got["outcome"]) == ["checkin_blocked", "checked_in"]
    assert got["detail"].iloc[0] == "no_response: x"


def test_event_at_push_time_is_not_taken():
    got = run_match([("a", 10.0, 1, 100)], [ev("a", 10.0), ev("a", 70.0)])
    assert list(got["outcome"]) == ["checked_in", "unsolicited_checkin"]
    assert got["checkin_ts"].iloc[0] == 70.0


def test_null_device_events_have_no_rows():
    got = run_match([("a", 0.0, 1, 100)], [ev(None, 5), ev("a", 5)])
    assert len(got) == 1


@pytest.mark.parametrize("seed", range(40))
def test_random_against_reference(seed):
    rng = np.random.default_rng(seed)
    devices = [f"10.0.0.{i}" for i in range(rng.integers(1, 6))]
    pushes = [(str(rng.choice(devices)), float(rng.integers(0, 400)), int(rng.integers(0, 9)), int(rng.integers(50, 300)))
              for _ in range(rng.integers(0, 25))]
    events = []
    for _ in range(rng.integers(0, 40)):
        ok = bool(rng.random() < 0.7)
        events.append(ev(str(rng.choice(devices)), float(rng.integers(0, 460)), ok=ok, row=int(rng.integers(0, 9)),
                         detail=f"reason{rng.integers(0, 5)}", server=str(rng.choice(["m:8443", "n"]))))
    run_match(pushes, events, window=float(rng.choice([30.0, 60.0])))


# ---- provider -----------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(30))
def test_provider_first_in_first_out(seed):
    rng = np.random.default_rng(seed)
    req = np.sort(rng.integers(0, 200, rng.integers(0, 40)).astype(float))
    pushes = np.sort(rng.integers(0, 220, rng.integers(0, 40)).astype(float))
    got = kernels.take_first_in(pushes, req, 5.0)
    assert got.tolist() == ref_provider(pushes.tolist(), req.tolist(), 5.0)


def test_provider_requests_outside_windows():
    req = np.array([0.0, 10.0, 20.0, 20.5])
    got = kernels.take_first_in(np.array([4.0, 9.9, 20.5, 20.5, 20.5, 40.0]), req, 5.0)
    assert got.tolist() == [0, -1, 2, 3, -1, -1]
    assert kernels.take_first_in(np.array([1.0]), np.empty(0), 5.0).tolist() == [-1]


# ---- follow-ups ---------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(30))
def test_followups_against_reference(seed):
    rng = np.random.default_rng(seed)
    devices = [f"10.0.0.{i}" for i in range(4)]
    n = int(rng.integers(0, 60))
    flows = pd.DataFrame({
        "client_ip": pd.array([str(rng.choice(devices)) for _ in range(n)], dtype="string"),
        "ts_start": rng.integers(0, 300, n).astype(float),
        "category": pd.array([rng.choice(list(FOLLOWUP_CATEGORIES) + ["web", None]) for _ in range(n)], dtype="string"),
        "blocked": pd.array([rng.choice([True, False, None]) for _ in range(n)], dtype="boolean"),
    })
    m = int(rng.integers(0, 20))
    out = {"device_ip": np.array([str(rng.choice(devices + ["10.9.9.9"])) for _ in range(m)], object),
           "outcome": np.array([rng.choice(["checked_in", "no_checkin", "unsolicited_checkin"]) for _ in range(m)], object),
           "checkin_ts": rng.integers(0, 300, m).astype(float)}
    names, counts = followups(out, flows, 60.0)
    want_names, want_counts = ref_followups(out["device_ip"], out["outcome"], out["checkin_ts"], flows, 60.0)
    assert list(names) == want_names
    np.testing.assert_array_equal(counts, np.array(want_counts, float))


def test_followups_order_of_first_appearance():
    flows = pd.DataFrame({"client_ip": pd.array(["d"] * 4, dtype="string"), "ts_start": [12.0, 11.0, 13.0, 14.0],
                          "category": pd.array(["sus", "file_share", "sus", "http_distribution"], dtype="string"),
                          "blocked": pd.array([True, False, True, None], dtype="boolean")})
    out = {"device_ip": np.array(["d", "d"], object), "outcome": np.array(["checked_in", "checked_in"], object),
           "checkin_ts": np.array([10.0, 13.0])}
    names, counts = followups(out, flows, 60.0)
    assert list(names) == ["file_share,sus,http_distribution", "http_distribution"]
    assert counts.tolist() == [2.0, 0.0]


# ---- without numba ------------------------------------------------------------------------

def test_plain_python_kernels_agree():
    """The same functions uncompiled (what runs where numba cannot load)."""
    rng = np.random.default_rng(7)
    ev_dev = np.sort(rng.integers(-1, 4, 60))
    ev_ts = np.concatenate([np.sort(rng.integers(0, 300, int((ev_dev == d).sum())).astype(float)) for d in range(-1, 4)])
    ev_ok = rng.random(60) < 0.7
    start, end = kernels.segments(ev_dev, 4)
    push_dev = np.sort(rng.integers(0, 4, 30))
    push_ts = np.concatenate([np.sort(rng.integers(0, 300, int((push_dev == d).sum())).astype(float)) for d in range(4)])
    calls = [(kernels.match_pushes, (push_dev, push_ts, ev_ts, ev_ok, start, end, 60.0)),
             (kernels.unsolicited_starts, (ev_dev, ev_ts, np.zeros(60, bool), 60.0)),
             (kernels.take_first_in, (np.sort(push_ts), np.sort(ev_ts), 5.0)),
             (kernels.window_ranges, (push_dev, push_ts, ev_ts, start, end, 60.0))]
    for kernel, args in calls:
        want, got = kernel(*args), getattr(kernel, "py_func", kernel)(*args)
        want, got = (want, got) if isinstance(want, tuple) else ((want,), (got,))
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
