"""What DNS answers leave behind: address -> name columns and the failed lookups."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DnsRecords:
    """Columns of DNS answers (address -> name) and failures, in capture order."""

    ts: list[float] = field(default_factory=list)
    address: list[str] = field(default_factory=list)
    name: list[str] = field(default_factory=list)
    failures: list[DnsFailure] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class DnsFailure:
    """A DNS answer that failed the client: an error rcode, or only sinkhole addresses."""

    ts: float
    uid: int                 # the DNS flow (client and server come from it)
    qname: str
    qtype: str
    rcode: str               # NXDOMAIN, SERVFAIL, REFUSED, ... or SINKHOLE (0.0.0.0, 127/8, ::, ::1)
