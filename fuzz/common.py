"""Shared by the atheris harnesses: where seeds and findings live, and the libFuzzer entry."""
from __future__ import annotations

import sys
from pathlib import Path

import atheris

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"                      # git-ignored: working corpus, crash artifacts, logs
TARGETS = ("reader", "tls", "dns", "http", "quic")
# Numba-compiled modules: instrumenting their bytecode breaks compilation, so they are left as
# they are (libFuzzer still sees what the Python around them does with their answers).
COMPILED = ["apnstrace.reader.walk", "apnstrace.flows.keys", "apnstrace.decode.tls_fast", "apnstrace.decode.dns_fast",
            "apnstrace.decode.http_fast", "apnstrace.metadata.dns_feed", "apnstrace.sequences.kernels"]


def fuzz(name: str, test_one_input) -> None:
    """Run libFuzzer on `test_one_input`; seeds from fuzz/out/<name>/seeds (fuzz/seeds.py)."""
    work = OUT / name
    (work / "corpus").mkdir(parents=True, exist_ok=True)
    argv = [sys.argv[0], *sys.argv[1:]]
    if not any(not a.startswith("-") for a in argv[1:]):     # no corpus folders given: the usual ones
        argv += [str(work / "corpus"), str(work / "seeds")]
    if not any(a.startswith("-artifact_prefix=") for a in argv):
        argv.append(f"-artifact_prefix={work}/")
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


def call_each(calls, data: bytes, allowed: type[Exception]) -> None:
    """Every parser on the same bytes: `allowed` (Malformed) is an answer, anything else a finding."""
    for call in calls:
        try:
            call(data)
        except allowed:
            pass
