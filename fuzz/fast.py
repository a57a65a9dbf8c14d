"""One payload laid out as the compiled scans see a chunk: a zero-padded buffer, one offset."""
from __future__ import annotations

import numpy as np

PAD = 128       # the reader pads every chunk like this (reader/stream.py)


def one_payload(data: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    buf = np.zeros(len(data) + PAD, np.uint8)
    buf[: len(data)] = np.frombuffer(data, np.uint8)
    return buf, np.zeros(1, np.int64), np.full(1, len(data), np.int64)
