"""Open a capture file (gzip or plain) and tell its format from its first bytes."""
from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import CaptureError

PCAP_MAGICS = {
    # magic bytes as stored -> (big endian?, nanosecond timestamps?)
    bytes.fromhex("d4c3b2a1"): (False, False),
    bytes.fromhex("a1b2c3d4"): (True, False),
    bytes.fromhex("4d3cb2a1"): (False, True),
    bytes.fromhex("a1b23c4d"): (True, True),
}
PCAPNG_MAGIC = bytes.fromhex("0a0d0d0a")
GZIP_MAGIC = bytes.fromhex("1f8b")
OTHER_FORMATS = {
    bytes.fromhex("34cdb2a1"): "a modified (Kuznetzov) pcap",
    bytes.fromhex("a1b2cd34"): "a modified (Kuznetzov) pcap",
    b"\x00\x00\x00\x00": None,
}


@dataclass(frozen=True, slots=True)
class Opened:
    stream: BinaryIO
    raw: BinaryIO        # the file itself (the stream may be a gzip reader over it)
    kind: str            # "pcap" or "pcapng"
    compressed: bool
    head: bytes          # the bytes already read to sniff the format (start of the stream)

    def close(self) -> None:
        self.stream.close()
        self.raw.close()


def open_capture(path: Path) -> Opened:
    """Open `path`, unwrapping gzip, and sniff pcap vs pcapng. Raises CaptureError."""
    try:
        raw = open(path, "rb")
    except FileNotFoundError:
        raise CaptureError(path, "no such file") from None
    except IsADirectoryError:
        raise CaptureError(path, "is a directory, not a capture file") from None
    except OSError as exc:
        raise CaptureError(path, f"cannot open: {exc.strerror or exc}") from None
    compressed = raw.read(2) == GZIP_MAGIC
    raw.seek(0)
    stream: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
    try:
        head = stream.read(4)
    except (OSError, EOFError, zlib.error) as exc:   # zlib.error is not an OSError
        raw.close()
        raise CaptureError(path, f"gzip data is corrupt: {exc}") from None
    if len(head) == 0:
        raw.close()
        raise CaptureError(path, "file is empty, not a capture")
    if head in PCAP_MAGICS:
        kind = "pcap"
    elif head == PCAPNG_MAGIC:
        kind = "pcapng"
    else:
        raw.close()
        what = OTHER_FORMATS.get(head)
        if what:
            raise CaptureError(path, f"{what} file, which apnstrace does not read (convert it with editcap)")
        shown = head.hex(" ")
        raise CaptureError(path, f"not a pcap or pcapng capture (starts with bytes {shown})")
    return Opened(stream=stream, raw=raw, kind=kind, compressed=compressed, head=head)
