"""Which flow keys may continue across a file boundary: what a worker spills, what the merge replays.

Merge side (exact): a key continues a flow from an earlier file when its first frame here is
within the idle timeout of its last frame there, unless that flow was closed (FIN both ways
or RST) and this file starts the key with a pure SYN (the flow table then starts a new flow,
as the worker did). Both files' packets of such a key are replayed.

Worker side (a guess made before the other files are read, so that a worker spills the
packets of few keys, not of every packet it read): a key's packets are kept when its first
frame is near the file's start and is not a TCP SYN (a SYN only continues a flow left open:
SYN retries; kept within SYN_WINDOW_S, or later while the key sent no data, which is cheap),
or when the key is still open near the file's end and not closed (a closed connection is
continued only by stray packets: kept within CLOSE_WINDOW_S).
"Near" is the idle timeout plus the most time may step back across a boundary (merge checks
it). A key the merge needs but a worker did not keep is rare (a port reused while its earlier
connection was left open, a stray packet minutes after a close): that file is read again.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..options import FlowOptions

TCP = 6
SYN_WINDOW_S = 30.0         # SYN retries 1, 2, 4, 8, 16 s apart; later ones are kept while no data flows
CLOSE_WINDOW_S = 10.0       # packets after a close: the last ACKs and RSTs
SUMMARY = ("h", "proto", "first_ts", "last_ts", "syn_first", "closed_end", "kept")


def worth_keeping(keys: dict[str, np.ndarray], ts_min: float, ts_max: float, options: FlowOptions) -> np.ndarray:
    """Per flow key of a file: keep its packets for a possible replay (see above). `keys` holds
    SUMMARY's columns but `kept`, and `quiet` (no payload in this file)."""
    tcp = keys["proto"] == TCP
    near = np.where(tcp, options.tcp_timeout, options.udp_timeout) + min(options.tcp_timeout, options.udp_timeout)
    since_start = keys["first_ts"] - ts_min
    before_end = ts_max - keys["last_ts"]
    start = (since_start <= near) & (~(tcp & keys["syn_first"]) | (since_start <= SYN_WINDOW_S) | keys["quiet"])
    end = (before_end <= near) & (~keys["closed_end"] | (before_end <= CLOSE_WINDOW_S))
    return start | end


def replay_plan(summaries: Sequence[dict[str, np.ndarray]], options: FlowOptions) -> tuple[list, list]:
    """Per file: the keys whose packets in it are replayed, and those of them its worker did not keep."""
    empty = [np.empty(0, np.uint64) for _ in summaries]
    if len(summaries) < 2:
        return empty, list(empty)
    col = {name: np.concatenate([s[name] for s in summaries]) for name in SUMMARY}
    file = np.concatenate([np.full(len(s["h"]), i) for i, s in enumerate(summaries)])
    order = np.lexsort((file, col["h"]))
    col = {name: v[order] for name, v in col.items()}
    file = file[order]
    h, proto = col["h"], col["proto"]
    same = h[1:] == h[:-1]
    timeout = np.where(proto[1:] == TCP, options.tcp_timeout, options.udp_timeout)
    near = same & (col["first_ts"][1:] - col["last_ts"][:-1] <= timeout)
    # A closed connection followed by a SYN is a new flow, as its worker saw it; only when the
    # earlier file's flow did not itself continue one from before (then its state is the replay's).
    entered = np.zeros(len(h), bool)
    entered[1:] = near
    fresh = (proto[1:] == TCP) & col["closed_end"][:-1] & col["syn_first"][1:] & ~entered[:-1]
    joins = np.flatnonzero(near & ~fresh)
    replay = np.zeros(len(h), bool)
    replay[joins] = True
    replay[joins + 1] = True
    missing = replay & ~col["kept"]
    return ([h[replay & (file == i)] for i in range(len(summaries))],
            [h[missing & (file == i)] for i in range(len(summaries))])
