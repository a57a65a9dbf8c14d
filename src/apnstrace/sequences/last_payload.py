"""The last payload time of each open TCP flow direction, carried from chunk to chunk.

Keyed by flow direction (uid * 2 + dir) in the flow table's hash map (flows/keymap.py), with
the times in a column beside it: a chunk looks up and writes only its own keys, so the cost
follows the chunk, not the open flows (a sorted array merged every chunk cost O(open flows)).
Entries of finished flows are not removed one by one: a uid is never used again, so they are
never read; the map is rebuilt with the open flows only once it holds several times as many.
"""
from __future__ import annotations

import numpy as np

from ..flows.keymap import KeyMap
from ..metadata.key_set import isin_keys

REBUILD_MIN = 1 << 14        # below this many entries, never rebuild


class LastPayload:
    def __init__(self) -> None:
        self.map = KeyMap()
        self.ts = np.empty(1024, np.float64)
        self.used = 0

    def __len__(self) -> int:
        return len(self.map)

    def get(self, keys: np.ndarray) -> np.ndarray:
        """Last payload time per key (-inf: none carried)."""
        slots = self.map.find(keys.astype(np.uint64))
        return np.where(slots >= 0, self.ts[np.maximum(slots, 0)], -np.inf)

    def put(self, keys: np.ndarray, times: np.ndarray, open_uids: np.ndarray) -> None:
        """These keys' times replace what was carried; `open_uids` (the flows still open)
        decide what a rebuild keeps."""
        hs = keys.astype(np.uint64)
        slots = self.map.find(hs)
        new = np.flatnonzero(slots < 0)
        if new.size:
            fresh = self.used + np.arange(new.size)
            self._reserve(self.used + new.size)
            self.map.insert(hs[new], fresh)
            slots[new] = fresh
            self.used += new.size
        self.ts[slots] = times
        if len(self.map) > max(REBUILD_MIN, 8 * len(open_uids)):
            self._rebuild(open_uids)

    def keys(self) -> np.ndarray:
        """The keys held (finished flows' too, until a rebuild), sorted."""
        return np.sort(self.map.keys[self.map.vals >= 0].astype(np.int64))

    def _reserve(self, need: int) -> None:
        if need > len(self.ts):
            grown = np.empty(max(need, 2 * len(self.ts)), np.float64)
            grown[: self.used] = self.ts[: self.used]
            self.ts = grown

    def _rebuild(self, open_uids: np.ndarray) -> None:
        held = self.map.vals >= 0
        keys, slots = self.map.keys[held], self.map.vals[held]
        keep = isin_keys((keys // np.uint64(2)).astype(np.int64), open_uids)
        keys, times = keys[keep], self.ts[slots[keep]]
        self.map = KeyMap(len(keys))
        self.ts = np.empty(max(1024, 2 * len(keys)), np.float64)
        self.ts[: len(keys)] = times
        self.used = len(keys)
        self.map.insert(keys, np.arange(len(keys)))

