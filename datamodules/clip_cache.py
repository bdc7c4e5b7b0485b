"""Decoded clips held in memory under a byte budget, so a small data set is decoded once per process.

A few-shot phase reads the same 32-100 clips every epoch; decoding them again each time cost as much as the
training steps of the demo's 4-shot phase. `ClipCache` keeps what `VideoDataset` decoded, keyed by the file
(path, size, inode and times: a changed file is decoded again) and by how it was read. A training clip is
kept whole (every frame, at the size the decoder would give its sampled frames), so each epoch still draws
its own random TSN offsets from the cached frames; an evaluation clip keeps its fixed views. Samples are
identical with and without the cache (the frames a decode gives do not depend on which others are read).

The budget is per process: a DataLoader worker fills its own copy. When the next clip does not fit, the cache
stops taking clips (`full`) and the rest are decoded per read as without it; a budget of 0 keeps nothing.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np


class ClipCache:
    """uint8 frame arrays by key, up to `budget_bytes` in total (first come, first kept).

    Args:
        budget_bytes: most bytes of frames to hold; 0 holds none.
    """

    def __init__(self, budget_bytes: int):
        if budget_bytes < 0:
            raise ValueError(f"the clip cache budget must be >= 0 bytes, got {budget_bytes}")
        self.budget = budget_bytes
        self.used = 0
        self.full = budget_bytes == 0  # a clip did not fit: stop decoding whole clips for the cache
        self._frames: dict[Hashable, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._frames)

    def __repr__(self) -> str:
        return f"ClipCache({len(self)} clips, {self.used / 2**20:.1f} of {self.budget / 2**20:.0f} MiB)"

    def get(self, key: Hashable) -> np.ndarray | None:
        return self._frames.get(key)

    def put(self, key: Hashable, frames: np.ndarray) -> bool:
        """Keep `frames` if they fit in what is left of the budget; once one does not, `full` is set."""
        if self.full or self.used + frames.nbytes > self.budget:
            self.full = True
            return False
        self._frames[key] = frames
        self.used += frames.nbytes
        return True
