"""Malformed: the per-packet parsers' (tls, dns, http) one way of saying "these bytes are bad"."""
from __future__ import annotations

__all__ = ["Malformed"]


class Malformed(Exception):
    """A payload a protocol parser cannot read. Internal signal, counted by reason, never shown.

    `reason` is a stable snake_case string ("tls_record_truncated", "dns_name_loop", ...) that
    the caller counts in RunStats.malformed.
    """

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
