"""Side by side: where nfstream (nDPI labels) and apnstrace disagree on "is this APNs / Apple".

Runs both on the corpus captures that carry Apple traffic (nDPI's expected output names an
Apple protocol) and on the captures with non-Apple traffic on port 5223, matches flows by
protocol and unordered endpoint pair, and prints every flow where the two answers differ.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/compare_nfstream.py [--corpus DIR] [--csv OUT]
"""
from __future__ import annotations

import argparse
import warnings
from collections import Counter
from pathlib import Path

import pandas as pd

import apnstrace

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "ndpi"
NOT_APPLE_5223 = ["jabber.pcap", "hpvirtgrp.pcap", "cloudflare-warp.pcap", "KakaoTalk_chat.pcap"]
APPLE_CATEGORIES = {"apns", "enrollment", "apple"}


def apple_captures(corpus: Path) -> list[Path]:
    names = set(NOT_APPLE_5223)
    for out in (corpus / "expected").glob("*.out"):
        if "/Apple" in out.read_text(errors="replace") or ".Apple" in out.read_text(errors="replace"):
            names.add(out.name.removesuffix(".out"))
    return sorted(corpus / "pcap" / n for n in names if (corpus / "pcap" / n).exists())


def _key(proto: str, a: tuple, b: tuple) -> tuple:
    lo, hi = sorted([a, b])
    return proto, lo, hi


def nfstream_view(path: Path) -> dict[tuple, dict]:
    from nfstream import NFStreamer
    frame = NFStreamer(source=str(path), n_meters=1).to_pandas()
    out: dict[tuple, dict] = {}
    for row in frame.itertuples():
        proto = {6: "tcp", 17: "udp"}.get(row.protocol)
        if proto is None:
            continue
        k = _key(proto, (row.src_ip, row.src_port), (row.dst_ip, row.dst_port))
        app = str(row.application_name)
        seen = out.setdefault(k, {"nfstream_label": app, "nf_apns": False, "nf_apple": False})
        seen["nf_apns"] |= "ApplePush" in app
        seen["nf_apple"] |= "Apple" in app
    return out


def apnstrace_view(path: Path) -> dict[tuple, dict]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flows = apnstrace.analyze([path]).flows
    out: dict[tuple, dict] = {}
    for row in flows.itertuples():
        k = _key(row.transport, (row.client_ip, row.client_port), (row.server_ip, row.server_port))
        apple = row.category in APPLE_CATEGORIES or row.service == "apple-update"
        seen = out.setdefault(k, {"apnstrace": f"{row.category}/{row.service}/{row.classified_by}",
                                  "name": row.server_name if isinstance(row.server_name, str) else "",
                                  "ours_apns": False, "ours_apple": False})
        seen["ours_apns"] |= row.category == "apns"
        seen["ours_apple"] |= apple
    return out


def compare(captures: list[Path]) -> pd.DataFrame:
    rows = []
    for path in captures:
        theirs, ours = nfstream_view(path), apnstrace_view(path)
        for k in sorted(set(theirs) | set(ours), key=str):
            t = theirs.get(k, {"nfstream_label": "(no flow)", "nf_apns": False, "nf_apple": False})
            o = ours.get(k, {"apnstrace": "(no flow)", "name": "", "ours_apns": False, "ours_apple": False})
            if t["nf_apns"] != o["ours_apns"] or t["nf_apple"] != o["ours_apple"]:
                rows.append({"capture": path.name, "flow": f"{k[0]} {k[1][0]}:{k[1][1]} <-> {k[2][0]}:{k[2][1]}",
                             "nfstream": t["nfstream_label"], "apnstrace": o["apnstrace"], "server_name": o["name"],
                             "apns nf/ours": f"{int(t['nf_apns'])}/{int(o['ours_apns'])}",
                             "apple nf/ours": f"{int(t['nf_apple'])}/{int(o['ours_apple'])}"})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--csv", type=Path, help="also write the disagreements here")
    args = parser.parse_args()
    captures = apple_captures(args.corpus)
    diff = compare(captures)
    print(f"{len(captures)} captures compared; {len(diff)} flows where nfstream and apnstrace disagree\n")
    if len(diff):
        with pd.option_context("display.width", 250, "display.max_rows", 1000, "display.max_colwidth", 60):
            print(diff.to_string(index=False))
        print("\nby kind (apns nf/ours, apple nf/ours):")
        for kind, count in Counter(zip(diff["apns nf/ours"], diff["apple nf/ours"])).most_common():
            print(f"  apns {kind[0]}  apple {kind[1]}: {count}")
    if args.csv:
        diff.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
