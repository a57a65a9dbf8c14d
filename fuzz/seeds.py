#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, from the sample captures and the nDPI corpus beside the
repository: capture heads (reader), and transport payloads as the parsers see them (tls, dns,
http, quic), found by apnstrace's own reader and decoders. Written to fuzz/out/<target>/seeds."""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from common import OUT  # noqa: E402

from apnstrace.decode import decode_chunk  # noqa: E402
from apnstrace.reader import iter_batches  # noqa: E402
from apnstrace.stats import RunStats  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus" / "ndpi" / "pcap"
HEAD_BYTES = 6000          # reader seeds: the start of each capture (small inputs fuzz faster)
PER_KIND = 400
HTTP_STARTS = (b"GET ", b"POST", b"HEAD", b"PUT ", b"HTTP")


def captures() -> list[Path]:
    found = sorted(p for p in (REPO / "sample_pcaps").iterdir() if p.name.endswith((".pcap", ".pcapng", ".gz")))
    if CORPUS.is_dir():
        found += sorted(p for p in CORPUS.iterdir() if p.is_file())
    return found


def kind_of(payload: bytes, proto: int, sport: int, dport: int) -> str | None:
    if proto == 17 and 53 in (sport, dport) or proto == 17 and 5353 in (sport, dport):
        return "dns"
    if proto == 6 and 53 in (sport, dport):
        return "dns"
    if proto == 6 and len(payload) > 5 and payload[0] in (0x16, 0x15) and payload[1] == 3:
        return "tls"
    if proto == 6 and payload[:4] in HTTP_STARTS:
        return "http"
    if proto == 17 and len(payload) >= 20 and payload[0] & 0xC0 == 0xC0:
        return "quic"
    return None


def main() -> None:
    seeds: dict[str, dict[str, bytes]] = {k: {} for k in ("reader", "tls", "dns", "http", "quic")}
    for path in captures():
        raw = path.read_bytes()
        if path.suffix != ".gz":
            seeds["reader"][path.name] = b"\x00" + raw[:HEAD_BYTES]
            if len(seeds["reader"]) % 7 == 0:
                seeds["reader"][path.name + ".gz"] = b"\x01" + raw[:HEAD_BYTES]
        try:
            for batch in iter_batches(path, RunStats(), 1 << 22):
                packets, _ = decode_chunk(batch, RunStats())
                buf = batch.buf.view(np.ndarray)
                for i in range(len(packets)):
                    cap = int(packets.payload_cap[i])
                    if cap == 0:
                        continue
                    off = int(packets.payload_off[i])
                    payload = buf[off: off + cap].tobytes()
                    kind = kind_of(payload, int(packets.proto[i]), int(packets.port_a[i]), int(packets.port_b[i]))
                    if kind and len(seeds[kind]) < PER_KIND * 4:
                        seeds[kind].setdefault(hashlib.sha1(payload[:64]).hexdigest(), payload)
                break                                   # the first chunk is plenty
        except Exception as exc:                        # noqa: BLE001 -- a seed source, not a test
            print(f"skipped {path.name}: {exc}", file=sys.stderr)
    for kind, found in seeds.items():
        folder = OUT / kind / "seeds"
        folder.mkdir(parents=True, exist_ok=True)
        chosen = sorted(found.items())[: PER_KIND] if kind != "reader" else sorted(found.items())
        for name, data in chosen:
            (folder / hashlib.sha1(name.encode()).hexdigest()[:16]).write_bytes(data)
        print(f"{kind}: {len(chosen)} seeds in {folder.relative_to(REPO)}")


if __name__ == "__main__":
    main()
