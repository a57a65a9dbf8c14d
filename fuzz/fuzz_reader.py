"""atheris: whole files through the fast engine -- the pcap / pcapng / gzip reader, the
vectorized decoders, the flow table and the metadata collector (the stages after the flow
table, which only see its columns, are left out: they cost most of a call's time and the
corrupted-corpus run, bench/corrupt_corpus.py, covers them). Any bytes give flows or a
CaptureError; anything else is a crash. The flows frame is built for one input in eight
(by length), as it costs most of a call's time. The first input byte picks the wrapping: odd -> the
rest is gzip-compressed first (so the fuzzer mutates the capture, not the deflate stream),
2 -> the rest is written as is, but cut to a gzip stream's first half (a broken gzip file)."""
from __future__ import annotations

import gzip
import os
import tempfile
import warnings

import atheris
from common import COMPILED, fuzz

with atheris.instrument_imports(include=["apnstrace"], exclude=COMPILED):
    from apnstrace.errors import CaptureError
    from apnstrace.metadata import attach
    from apnstrace.pipeline import Session
    from apnstrace.reader import iter_batches


SCRATCH = tempfile.NamedTemporaryFile(prefix="apnstrace-fuzz-", suffix=".cap", delete=False,
                                      dir="/dev/shm" if os.path.isdir("/dev/shm") else None).name


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0], data[1:]
    if mode & 1:
        body = gzip.compress(body, compresslevel=1, mtime=0)
    elif mode == 2:
        body = gzip.compress(body, compresslevel=1, mtime=0)
        body = body[: len(body) // 2]
    with open(SCRATCH, "wb") as f:
        f.write(body)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = Session(sequences=False)
        try:
            for raw in iter_batches(SCRATCH, session.stats, session.options.chunk_bytes):
                session.add(raw)
        except CaptureError:
            pass
        session.collector.finish()
        if len(data) % 8 == 0:      # building the flows frame costs ~0.1 s of pandas: one input in 8
            attach(session.table.finish(), session.collector)


if __name__ == "__main__":
    fuzz("reader", test_one_input)
