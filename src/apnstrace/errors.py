"""Errors raised on purpose. The CLI prints str(exc) as one line and exits 2."""
from __future__ import annotations

from pathlib import Path


class ApnstraceError(Exception):
    """Base of every error raised on purpose."""


class InputError(ApnstraceError):
    """The user gave us something we cannot use (file, option, profile)."""


class CaptureError(InputError):
    """A capture file is unreadable at some point: names the file and the record."""

    def __init__(self, path: Path | str, problem: str, record: int | None = None) -> None:
        where = str(path) if record is None else f"{path}, record {record}"
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.problem = problem
        self.record = record


class ConfigError(InputError):
    """A site profile or rules file is wrong: names the file and the entry."""


class EngineError(ApnstraceError):
    """An optional engine (scapy, tshark) is missing or failed."""
