"""Time-driven output: when the report is due again, and the rotated capture files."""
from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .batch import Captured

PCAP_MAGIC_NS = 0xA1B23C4D          # nanosecond pcap: live timestamps keep their precision
SNAPLEN = 262_144


@dataclass
class Every:
    """Due every `seconds` of monotonic time, counted from `start` (not from when it was
    last served: a slow report does not push every later one back)."""

    seconds: float
    start: float

    def __post_init__(self) -> None:
        self.next_at = self.start + self.seconds

    def due(self, now: float) -> bool:
        if now < self.next_at:
            return False
        missed = int((now - self.next_at) // self.seconds)     # a report slower than the period skips turns
        self.next_at += (missed + 1) * self.seconds
        return True


class PcapRotator:
    """--write-pcap DIR: what was captured, as pcap files, a new one every `seconds`.

    Files are named by the capture time of their first packet (apnstrace-20240101T120000.pcap),
    so `apnstrace analyze DIR/*.pcap` reads them back as one capture, in order. A file being
    written ends in `.part` and is renamed when it is closed: a finished name is a whole file.
    """

    def __init__(self, folder: Path, seconds: float, linktype: int, prefix: str = "apnstrace") -> None:
        self.folder, self.seconds, self.linktype, self.prefix = folder, seconds, linktype, prefix
        folder.mkdir(parents=True, exist_ok=True)
        self.handle: BinaryIO | None = None
        self.path: Path | None = None
        self.opened_ts = 0.0
        self.written: list[Path] = []

    def write(self, packets: list[Captured]) -> None:
        for p in packets:
            if self.handle is None or p.ts - self.opened_ts >= self.seconds:
                self._open(p.ts)
            sec = int(p.ts)
            nsec = min(int(round((p.ts - sec) * 1e9)), 999_999_999)
            self.handle.write(struct.pack("<IIII", sec, nsec, len(p.data), p.wire_len))
            self.handle.write(p.data)

    def flush(self) -> None:
        if self.handle is not None:
            self.handle.flush()

    def close(self) -> None:
        if self.handle is None:
            return
        self.handle.close()
        final = self.path.with_suffix("")          # drop ".part"
        self.path.rename(final)
        self.written.append(final)
        self.handle = self.path = None

    def _open(self, ts: float) -> None:
        self.close()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(ts))
        name, n = f"{self.prefix}-{stamp}", 1
        while (self.folder / f"{name}.pcap").exists() or (self.folder / f"{name}.pcap.part").exists():
            n += 1
            name = f"{self.prefix}-{stamp}-{n}"
        self.path = self.folder / f"{name}.pcap.part"
        self.handle = open(self.path, "wb")
        self.handle.write(struct.pack("<IHHiIII", PCAP_MAGIC_NS, 2, 4, 0, 0, SNAPLEN, self.linktype))
        self.opened_ts = ts
