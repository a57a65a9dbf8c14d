"""Where the nDPI corpus is (../shared beside the repository) and how tests read a capture."""
from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

import apnstrace

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus" / "ndpi"
if not (CORPUS / "pcap").is_dir():
    raise RuntimeError(f"the nDPI corpus is missing: expected it at {CORPUS} (../shared beside the repo)")
PCAPS = CORPUS / "pcap"


def flows_of(name: str) -> pd.DataFrame:
    """The flows of one corpus capture, its partial-read warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return apnstrace.analyze([PCAPS / name]).flows
