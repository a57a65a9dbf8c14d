"""RunStats: what was read, what was skipped and why, what was malformed and why."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np


@dataclass
class FileProblem:
    """A capture file that could only be read in part (or not at all)."""

    path: str
    message: str          # one line: "<file>, record N: <problem>"
    records_read: int


@dataclass
class RunStats:
    files: list[str] = field(default_factory=list)
    records: int = 0                  # capture records read (frames)
    packets_in_flows: int = 0         # frames that were counted in a TCP/UDP flow
    icmp_errors: int = 0              # ICMP/ICMPv6 errors kept as evidence
    skipped: Counter = field(default_factory=Counter)     # not for us: reason -> count
    malformed: Counter = field(default_factory=Counter)   # broken at some layer: reason -> count
    problems: list[FileProblem] = field(default_factory=list)
    live: dict | None = None          # live capture only: interface, backend, kernel/libpcap drops
    limits: Counter = field(default_factory=Counter)      # safety limits reached (FlowOptions): what -> count

    def count_codes(self, target: Counter, codes: np.ndarray, names: tuple[str, ...]) -> None:
        """Add a column of reason codes (0 = no reason) to a counter, vectorized."""
        if codes.size == 0:
            return
        counts = np.bincount(codes, minlength=len(names))
        for code in np.flatnonzero(counts):
            if code:
                target[names[code]] += int(counts[code])

    def as_dict(self) -> dict:
        return {
            "files": list(self.files),
            "records": self.records,
            "packets_in_flows": self.packets_in_flows,
            "icmp_errors": self.icmp_errors,
            "skipped": dict(sorted(self.skipped.items())),
            "malformed": dict(sorted(self.malformed.items())),
            "problems": [p.message for p in self.problems],
            "limits": dict(sorted(self.limits.items())),
        }
