"""Options that change what the engine computes (not how it prints)."""
from __future__ import annotations

from dataclasses import dataclass

# Capture bytes decoded per batch. The metadata collector pays a fixed cost per chunk (~0.7 ms:
# numpy calls on small arrays, compiled calls, its caches warmed again after the engine's work):
# 64 MiB rather than 32 takes classification on engine_2m from ~11.5 to ~10 % of the engine. It
# costs peak memory: engine_2m engine-only 620 -> 790 MB; fleet_10g with two workers 1.80 -> 1.85 GB.
# With the collector beside the engine (analyze on more than one core) chunks are half this size:
# two are alive at once (beside.chunk_beside).
CHUNK_BYTES = 64 << 20


@dataclass(frozen=True, slots=True)
class FlowOptions:
    # A quiet APNs courier connection sends keep-alives many minutes apart and must stay one
    # flow, so TCP flows end on FIN/RST, and only a long silence ends them.
    tcp_timeout: float = 3600.0
    udp_timeout: float = 120.0
    chunk_bytes: int = CHUNK_BYTES
    # A connection whose server sent nothing this long after the client's first data is
    # `no_server_data` (docs/blocked.md): longer than a healthy first byte, shorter than client timeouts.
    server_wait_s: float = 10.0
    # Limits against hostile captures (spec section 6); what each one cut is counted in
    # RunStats.limits. None changes the output of a real capture.
    max_reassembly_bytes: int = 256 << 10    # payload bytes held per flow direction for TLS/HTTP parsing
    max_open_flows: int = 500_000            # past this, the longest-idle open flows are finished early
    max_gzip_ratio: float = 250.0            # decompressed / compressed bytes a gzip capture may reach

    def __post_init__(self) -> None:
        for name in ("tcp_timeout", "udp_timeout", "server_wait_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if self.chunk_bytes < 1 << 12:
            raise ValueError("chunk_bytes must be at least 4 KiB")
        if self.max_reassembly_bytes < 1 << 12:
            raise ValueError("max reassembly bytes must be at least 4096")
        if self.max_open_flows < 1:
            raise ValueError("max open flows must be at least 1")
        if not self.max_gzip_ratio >= 1:
            raise ValueError("max gzip ratio must be at least 1")


@dataclass(frozen=True, slots=True)
class SequenceOptions:
    """How pushes, check-ins and follow-ups are told apart and matched (docs/sequences.md)."""

    window_s: float = 60.0            # push -> check-in, and check-in -> follow-ups
    keepalive_window_s: float = 1.0   # server data this soon after the device's is an answer, not a push
    record_gap_s: float = 0.5         # server packets closer than this are one push
    burst_gap_s: float = 1.0          # payload after this much silence starts a burst
    checkin_idle_s: float = 10.0      # a request after this much device silence on an MDM connection is a check-in
    provider_window_s: float = 5.0    # a provider request this long before a push may have caused it

    def __post_init__(self) -> None:
        for name in ("window_s", "keepalive_window_s", "record_gap_s", "burst_gap_s", "checkin_idle_s",
                     "provider_window_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name.removesuffix('_s')} must be positive")
