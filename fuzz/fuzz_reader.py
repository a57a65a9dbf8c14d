"""atheris: whole files through apnstrace.analyze -- the pcap / pcapng / gzip reader, the
vectorized decoders, the flow table and the metadata collector. Any bytes give a Result or a
CaptureError; anything else is a crash. The first input byte picks the wrapping: odd -> the
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
    import apnstrace
    from apnstrace.errors import CaptureError


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
        try:
            apnstrace.analyze(SCRATCH)
        except CaptureError:
            pass


if __name__ == "__main__":
    fuzz("reader", test_one_input)
