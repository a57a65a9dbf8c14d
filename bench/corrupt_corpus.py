#!/usr/bin/env python3
"""Corrupted-corpus run: N randomly damaged variants of the corpus captures through `apnstrace flows`.

Each variant is a corpus capture with 1-3 edits -- bit flips, a truncation, a length-field edit
(pcap record caplen/orig_len, pcapng block length or packet caplen, IPv4 total length / header
length, IPv6 payload length, TCP data offset, UDP length) -- and sometimes wrapped in gzip (and
the gzip stream damaged too). Variant i is fully determined by (seed, i), so a failure
reproduces with `--only i` (and `--save DIR` writes the variant's bytes).

Every variant runs `apnstrace flows VARIANT --format csv -o /dev/null` in a long-lived worker
process (click's CliRunner: same command, exit code and stderr as the console script, without
paying the interpreter start per variant). A clean run exits 0 or 2 with no traceback; the
parent kills a worker that takes more than --timeout seconds (a hang) and starts a new one.
`--subprocess K` also runs the first K variants through the real console script.

Usage:
  nice -n 19 .venv/bin/python bench/corrupt_corpus.py                    # 10,000 variants, seed 9
  .venv/bin/python bench/corrupt_corpus.py --count 200 --workers 1
  .venv/bin/python bench/corrupt_corpus.py --only 1234 --save /tmp/bad   # reproduce one variant
"""
from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing as mp
import multiprocessing.connection
import os
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus" / "ndpi" / "pcap"
INTERESTING = [0, 1, 3, 4, 11, 12, 13, 16, 19, 20, 31, 32, 0x7F, 0xFF, 0x100, 0x5DC, 0xFFFF, 0x10000,
               262_144, 262_145, 16 << 20, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF]


# --- where the length fields are -------------------------------------------------------------

def pcap_records(data: bytes) -> tuple[str, list[tuple[int, int]]]:
    """(endian, [(record header offset, caplen)]) of a classic pcap."""
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    out, pos = [], 24
    while pos + 16 <= len(data):
        caplen = struct.unpack_from(endian + "I", data, pos + 8)[0]
        out.append((pos, caplen))
        pos += 16 + caplen
    return endian, out


def pcapng_blocks(data: bytes) -> tuple[str, list[tuple[int, int, int]]]:
    """(endian of the first section, [(block offset, type, total length)])."""
    endian = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
    out, pos = [], 0
    while pos + 12 <= len(data):
        btype, blen = struct.unpack_from(endian + "II", data, pos)
        if blen < 12 or blen % 4:
            break
        out.append((pos, btype, blen))
        pos += blen
    return endian, out


def frame_starts(data: bytes) -> list[int]:
    """Offsets of the link-layer frames (pcap records or pcapng packet blocks)."""
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        _, blocks = pcapng_blocks(data)
        return [pos + 28 for pos, btype, _ in blocks if btype == 6] + [pos + 12 for pos, btype, _ in blocks if btype == 3]
    _, records = pcap_records(data)
    return [pos + 16 for pos, _ in records]


def ip_header(data: bytes, frame: int) -> int | None:
    """Offset of an IPv4/IPv6 header in an Ethernet (or raw IP) frame, if one is plain to see."""
    for at in (frame + 14, frame + 18, frame, frame + 16, frame + 4):
        if at + 40 > len(data):
            continue
        if at >= frame + 14 and data[at - 2: at] not in (b"\x08\x00", b"\x86\xdd") and at != frame + 16:
            continue
        if data[at] >> 4 in (4, 6):
            return at
    return None


# --- edits ---------------------------------------------------------------------------------------

def edit_bitflips(rng: random.Random, data: bytearray) -> str:
    count = rng.choice([1, 1, 2, 4, 8, 32])
    head = rng.random() < 0.5              # half the time near the start, where headers are dense
    span = min(len(data), 4096) if head else len(data)
    for _ in range(count):
        at = rng.randrange(span)
        data[at] ^= 1 << rng.randrange(8)
    return f"flip{count}{'h' if head else ''}"


def edit_bytes(rng: random.Random, data: bytearray) -> str:
    at = rng.randrange(len(data))
    for i in range(rng.randint(1, 8)):
        if at + i < len(data):
            data[at + i] = rng.choice([0, 0xFF, rng.randrange(256)])
    return "bytes"


def edit_truncate(rng: random.Random, data: bytearray) -> str:
    cut = rng.randrange(len(data)) if rng.random() < 0.7 else rng.randrange(min(len(data), 200))
    del data[cut:]
    return f"cut{cut}"


def edit_capture_length(rng: random.Random, data: bytearray) -> str:
    value = rng.choice(INTERESTING) if rng.random() < 0.7 else rng.randrange(1 << 32)
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        endian, blocks = pcapng_blocks(bytes(data))
        if not blocks:
            return "none"
        pos, btype, blen = rng.choice(blocks)
        field = rng.choice([4, blen - 4] + ([20, 24] if btype == 6 else []) + ([8] if btype == 3 else []))
        where = "pcapng"
    else:
        endian, records = pcap_records(bytes(data))
        if not records:
            return "none"
        pos, _ = rng.choice(records)
        field = rng.choice([8, 12])
        where = "pcap"
    if pos + field + 4 > len(data):
        return "none"
    struct.pack_into(endian + "I", data, pos + field, value)
    return f"{where}len@{pos + field}={value}"


def edit_ip_length(rng: random.Random, data: bytearray) -> str:
    frames = frame_starts(bytes(data))
    if not frames:
        return "none"
    for _ in range(8):
        at = ip_header(data, rng.choice(frames))
        if at is not None:
            break
    else:
        return "none"
    v4 = data[at] >> 4 == 4
    ihl = (data[at] & 0x0F) * 4 if v4 else 40
    proto = data[at + 9] if v4 else data[at + 6]
    choices = ["ip_total", "ihl"] if v4 else ["ip6_payload"]
    if proto == 6:
        choices.append("tcp_offset")
    if proto == 17:
        choices.append("udp_len")
    what = rng.choice(choices)
    word = rng.choice([0, 1, 8, 19, 20, 21, 40, 0x5DC, 0xFFFF, rng.randrange(1 << 16)])
    if what == "ip_total":
        struct.pack_into("!H", data, at + 2, word)
    elif what == "ip6_payload":
        struct.pack_into("!H", data, at + 4, word)
    elif what == "ihl":
        data[at] = 0x40 | rng.randrange(16)
    elif what == "tcp_offset" and at + ihl + 13 <= len(data):
        data[at + ihl + 12] = rng.randrange(16) << 4 | (data[at + ihl + 12] & 0x0F)
    elif what == "udp_len" and at + ihl + 6 <= len(data):
        struct.pack_into("!H", data, at + ihl + 4, word)
    return f"{what}@{at}"


EDITS = [(edit_bitflips, 3), (edit_bytes, 1), (edit_truncate, 2), (edit_capture_length, 3), (edit_ip_length, 3)]


def make_variant(corpus: list[Path], seed: int, index: int) -> tuple[bytes, str]:
    """Variant `index`: its bytes and a short description of what was done."""
    rng = random.Random(seed * 1_000_003 + index)
    source = corpus[rng.randrange(len(corpus))]
    data = bytearray(source.read_bytes())
    done = []
    funcs, weights = zip(*EDITS)
    for _ in range(rng.choice([1, 1, 2, 3])):
        if not data:
            break
        done.append(rng.choices(funcs, weights)[0](rng, data))
    if rng.random() < 0.15:
        data = bytearray(gzip.compress(bytes(data), compresslevel=1, mtime=0))
        done.append("gzip")
        if rng.random() < 0.4:
            if rng.random() < 0.5:
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
                done.append("gzflip")
            else:
                del data[rng.randrange(len(data)):]
                done.append("gzcut")
    return bytes(data), f"{source.name}: {' '.join(done)}"


# --- running -------------------------------------------------------------------------------------

def _worker(conn, scratch: str) -> None:
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    from click.testing import CliRunner

    from apnstrace.cli import cli
    runner = CliRunner()
    while True:
        job = conn.recv()
        if job is None:
            return
        index, data = job
        path = Path(scratch) / f"variant-{os.getpid()}.pcap"
        path.write_bytes(data)
        began = time.perf_counter()
        result = runner.invoke(cli, ["flows", str(path), "--format", "csv", "-o", os.devnull])
        took = time.perf_counter() - began
        exc = result.exception
        crash = None
        if exc is not None and not isinstance(exc, SystemExit):
            import traceback
            crash = "".join(traceback.format_exception(exc)).strip().splitlines()[-1]
        text = result.stderr if hasattr(result, "stderr") else result.output
        if "Traceback" in text:
            crash = crash or "Traceback in stderr"
        conn.send((index, result.exit_code, took, crash, text.strip().splitlines()[-1:] or [""]))


class Worker:
    def __init__(self, scratch: str) -> None:
        self.conn, child = mp.Pipe()
        self.proc = mp.get_context("fork").Process(target=_worker, args=(child, scratch), daemon=True)
        self.proc.start()
        self.job: tuple[int, float] | None = None     # (index, start time)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.join()


def run(args, corpus: list[Path], indexes: list[int]) -> dict:
    scratch = tempfile.mkdtemp(prefix="corrupt-")
    workers = [Worker(scratch) for _ in range(args.workers)]
    pending = list(reversed(indexes))
    codes: Counter = Counter()
    times: list[float] = []
    failures: list[dict] = []
    described: dict[int, str] = {}
    slowest: list[tuple[float, int, str]] = []
    done = 0
    began = time.monotonic()
    while pending or any(w.job for w in workers):
        for i, w in enumerate(workers):
            if w.job is None and pending:
                index = pending.pop()
                data, what = make_variant(corpus, args.seed, index)
                described[index] = what
                if args.save:
                    Path(args.save).mkdir(parents=True, exist_ok=True)
                    (Path(args.save) / f"variant-{args.seed}-{index}.pcap").write_bytes(data)
                w.conn.send((index, data))
                w.job = (index, time.monotonic())
        busy = [w for w in workers if w.job]
        ready = mp.connection.wait([w.conn for w in busy], timeout=0.5)
        now = time.monotonic()
        for w in busy:
            index, start = w.job
            if w.conn in ready:
                try:
                    _, code, took, crash, last = w.conn.recv()
                except EOFError:            # the worker died (segfault in compiled code)
                    code, took, crash, last = "died", now - start, f"worker died ({w.proc.exitcode})", [""]
                    workers[workers.index(w)] = Worker(scratch)
                    w.stop()
            elif now - start > args.timeout:
                code, took, crash, last = "hang", now - start, f"no answer after {args.timeout:.0f} s", [""]
                w.stop()
                workers[workers.index(w)] = Worker(scratch)
            else:
                continue
            w.job = None
            codes[code] += 1
            times.append(took)
            slowest = sorted([*slowest, (round(took, 3), index, described[index])], reverse=True)[:5]
            done += 1
            if crash or code not in (0, 2):
                failures.append({"index": index, "variant": described[index], "exit": code, "problem": crash or last[0]})
                print(f"FAIL variant {index} ({described[index]}): exit {code}: {crash or last[0]}", flush=True)
            if done % args.every == 0:
                print(f"{done}/{len(indexes)} variants, {time.monotonic() - began:.0f} s, exits {dict(codes)}, "
                      f"{len(failures)} failures", flush=True)
    for w in workers:
        w.conn.send(None)
        w.proc.join(timeout=5)
    return {"seed": args.seed, "variants": len(indexes), "exit_codes": {str(k): v for k, v in sorted(codes.items(), key=str)},
            "max_s": round(max(times), 3) if times else 0, "median_s": round(statistics.median(times), 3) if times else 0,
            "wall_s": round(time.monotonic() - began, 1), "slowest": slowest, "failures": failures}


def check_subprocesses(args, corpus: list[Path], count: int) -> list[dict]:
    """The first `count` variants through the real console script (a sample: start-up costs ~1 s)."""
    exe = Path(sys.executable).with_name("apnstrace")
    bad = []
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(count):
            data, what = make_variant(corpus, args.seed, index)
            path = Path(scratch) / "variant.pcap"
            path.write_bytes(data)
            try:
                proc = subprocess.run([str(exe), "flows", str(path), "--format", "csv", "-o", os.devnull],
                                      capture_output=True, text=True, timeout=args.timeout + 10)
            except subprocess.TimeoutExpired:
                bad.append({"index": index, "variant": what, "exit": "hang"})
                continue
            if proc.returncode not in (0, 2) or "Traceback" in proc.stderr:
                bad.append({"index": index, "variant": what, "exit": proc.returncode, "problem": proc.stderr[-300:]})
    return bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--start", type=int, default=0, help="first variant index")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--only", type=int, action="append", help="run just this variant (repeatable)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before a variant counts as a hang")
    parser.add_argument("--subprocess", type=int, default=0, help="also run the first K variants as real processes")
    parser.add_argument("--save", help="write each variant's bytes into this folder")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--every", type=int, default=500, help="progress line every N variants")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    corpus = sorted(p for p in args.corpus.iterdir()
                    if p.is_file() and p.stat().st_size > 0 and p.suffix in (".pcap", ".pcapng", ".cap", ".gz"))
    indexes = args.only or list(range(args.start, args.start + args.count))
    figures = run(args, corpus, indexes)
    if args.subprocess:
        figures["subprocess_checked"] = args.subprocess
        figures["subprocess_failures"] = check_subprocesses(args, corpus, args.subprocess)
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    sys.exit(1 if figures["failures"] or figures.get("subprocess_failures") else 0)


if __name__ == "__main__":
    main()
