"""heap.py: freed chunk-sized arrays stay on the heap, so the next chunk's arrays do not fault
their pages in again (counted page faults, not time)."""
from __future__ import annotations

import subprocess
import sys

import pytest

CHURN = """
import resource, sys
import numpy as np
if sys.argv[1] == "tuned":
    from apnstrace.heap import keep_freed_memory
    assert keep_freed_memory() and keep_freed_memory()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(100):                      # a chunk: 60 columns of 170,000 open flows, rebuilt
    cols = [np.ones(170_000, np.int64) for _ in range(60)]
    del cols
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", CHURN, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning is Linux-only")
def test_rebuilt_columns_reuse_their_pages() -> None:
    default, tuned = _faults("default"), _faults("tuned")
    assert tuned * 5 < default, (default, tuned)
