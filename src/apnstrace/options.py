"""Options that change what the engine computes (not how it prints)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FlowOptions:
    # A quiet APNs courier connection sends keep-alives many minutes apart and must stay one
    # flow, so TCP flows end on FIN/RST, and only a long silence ends them.
    tcp_timeout: float = 3600.0
    udp_timeout: float = 120.0
    chunk_bytes: int = 32 << 20        # capture bytes decoded per batch
    # A connection whose server sent nothing this long after the client's first data is
    # `no_server_data` (docs/blocked.md): longer than a healthy first byte, shorter than client timeouts.
    server_wait_s: float = 10.0

    def __post_init__(self) -> None:
        for name in ("tcp_timeout", "udp_timeout", "server_wait_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if self.chunk_bytes < 1 << 12:
            raise ValueError("chunk_bytes must be at least 4 KiB")
