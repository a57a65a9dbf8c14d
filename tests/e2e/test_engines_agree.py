"""The fast engine and the scapy reference engine build the same flows (docs/flows.md).

Every sample capture and every file of the nDPI corpus (../shared/corpus/ndpi/pcap) goes
through both engines; every column docs/flows.md defines must agree: times within 1e-6 s
(rtt_ms and ttfb_ms within 1e-3 ms), everything else exactly. A file neither engine can read must raise
CaptureError in both. Differences that are understood, and whose cause is known, are listed
in KNOWN_DIFFERENCES with the reason; they are strict xfails, so fixing one fails the test
until it is taken off the list.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import apnstrace

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "sample_pcaps"
CORPUS = REPO.parent / "shared/corpus/ndpi/pcap"
if not CORPUS.is_dir():
    raise RuntimeError(f"the nDPI corpus is missing: expected it at {CORPUS} (../shared beside the repo)")

SAMPLE_CAPTURES = sorted(p for p in SAMPLES.iterdir() if p.name.endswith((".pcap", ".pcapng", ".gz")))
CORPUS_CAPTURES = sorted(p for p in CORPUS.iterdir() if p.is_file())

# docs/flows.md: times (seconds), the key and sides, the counters, conn_state.
TIMES = ["ts_start", "ts_end", "duration"]
EXACT = ["flow_id", "transport", "client_ip", "client_port", "server_ip", "server_port", "vlan", "state",
         "pkts_c2s", "pkts_s2c", "bytes_c2s", "bytes_s2c", "syn_retries", "retransmits"]
TIME_TOLERANCE = 1e-6          # seconds
RTT_TOLERANCE = 1e-3           # milliseconds: the same 1e-6 s

# capture -> why the engines differ there (the engine at fault is named first).
KNOWN_DIFFERENCES: dict[str, str] = {}


def _params(captures: list[Path], group: str) -> list:
    params = []
    for capture in captures:
        marks = ()
        if capture.name in KNOWN_DIFFERENCES and group == "corpus":
            marks = pytest.mark.xfail(strict=True, raises=AssertionError, reason=KNOWN_DIFFERENCES[capture.name])
        params.append(pytest.param(capture, id=f"{group}/{capture.name}", marks=marks))
    return params


def _flows(capture: Path, engine: str) -> pd.DataFrame | apnstrace.CaptureError:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # partly readable files warn; not what we test
        try:
            return apnstrace.analyze([capture], engine=engine).flows.reset_index(drop=True)
        except apnstrace.CaptureError as exc:
            return exc


def _mismatch(fast: pd.DataFrame, ref: pd.DataFrame) -> str:
    """'' when the frames agree, else what differs (first rows only)."""
    if len(fast) != len(ref):
        keys = ["transport", "client_ip", "client_port", "server_ip", "server_port", "pkts_c2s", "pkts_s2c"]
        both = fast[keys].merge(ref[keys], how="outer", indicator=True)
        only = both[both["_merge"] != "both"].copy()
        only["_merge"] = only["_merge"].astype(str).map({"left_only": "fast only", "right_only": "scapy only"})
        return f"{len(fast)} flows (fast) vs {len(ref)} (scapy):\n{only.head(10).to_string()}"
    bad = np.zeros(len(fast), bool)
    columns = []
    for col in TIMES + ["rtt_ms", "ttfb_ms"]:
        a = fast[col].astype("Float64").to_numpy(np.float64, na_value=np.nan)
        b = ref[col].astype("Float64").to_numpy(np.float64, na_value=np.nan)
        tol = RTT_TOLERANCE if col.endswith("_ms") else TIME_TOLERANCE
        differ = ~((np.isnan(a) & np.isnan(b)) | (np.abs(a - b) <= tol))
        if differ.any():
            bad |= differ
            columns.append(col)
    for col in EXACT:
        a, b = fast[col].astype(object), ref[col].astype(object)
        differ = ~np.array([(pd.isna(x) and pd.isna(y)) if (pd.isna(x) or pd.isna(y)) else x == y
                            for x, y in zip(a, b)], bool)
        if differ.any():
            bad |= differ
            columns.append(col)
    if not bad.any():
        return ""
    rows = np.flatnonzero(bad)[:5]
    show = ["client_ip", "client_port", "server_ip", "server_port"] + [c for c in columns if c not in
                                                                      ("client_ip", "client_port", "server_ip", "server_port")]
    side = pd.concat({"fast": fast.loc[rows, show], "scapy": ref.loc[rows, show]}, axis=1)
    return f"{int(bad.sum())} flows differ in {columns}:\n{side.to_string()}"


@pytest.fixture(autouse=True, scope="module")
def _quiet_scapy():
    logger = logging.getLogger("scapy")
    level = logger.level
    logger.setLevel(logging.ERROR)            # scapy warns about every odd pcapng block
    yield
    logger.setLevel(level)


def test_known_differences_name_real_captures() -> None:
    names = {p.name for p in CORPUS_CAPTURES}
    assert set(KNOWN_DIFFERENCES) <= names, set(KNOWN_DIFFERENCES) - names
    assert SAMPLE_CAPTURES, f"no sample captures in {SAMPLES}"


@pytest.mark.parametrize("capture", _params(SAMPLE_CAPTURES, "sample") + _params(CORPUS_CAPTURES, "corpus"))
def test_engines_agree(capture: Path) -> None:
    fast = _flows(capture, "fast")
    ref = _flows(capture, "scapy")
    if isinstance(fast, Exception) or isinstance(ref, Exception):
        assert isinstance(fast, apnstrace.CaptureError) and isinstance(ref, apnstrace.CaptureError), \
            f"only one engine could not read {capture.name}: fast {fast!r:.300}, scapy {ref!r:.300}"
        return
    assert list(fast.columns) == list(ref.columns)
    problem = _mismatch(fast, ref)
    assert not problem, f"{capture.name}: {problem}"
