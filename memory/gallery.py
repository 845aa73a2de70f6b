"""The embeddings one identity keeps, and which ones it keeps when it is full.

M3-Agent samples a full node's embeddings at random. Here a full gallery drops, one at a time,
the embedding whose loss costs least: value_i = quality_i / max(quality) * (1 - redundancy_i),
where redundancy_i is the highest cosine between i and any other kept embedding. So of two
near-duplicates the blurrier one goes first, while a sharp face from a new angle (low redundancy)
stays: a diverse, high-quality set, and the node's mean (what matching uses) does not collapse
onto the pose seen most often. Selection is deterministic, so a restart keeps the same gallery.

Each embedding carries a key that follows it through trims, merges and splits, so the store can
tell which of a node's stored rows a new gallery kept and write only what changed (memory.nodes).
Keys are handed out in this process and never stored.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]

_next_key = itertools.count()


def new_keys(n: int) -> npt.NDArray[np.int64]:
    return np.fromiter(itertools.islice(_next_key, n), np.int64, n)


@dataclass
class Gallery:
    embeddings: Vectors  # (k, d), L2-normalised
    qualities: npt.NDArray[np.float32]  # (k,)
    track_ids: npt.NDArray[np.int64]  # (k,), the track each embedding came from (for splits)
    keys: npt.NDArray[np.int64]  # (k,), which embedding this is (see the module docstring)

    @classmethod
    def new(cls, embeddings: Vectors, qualities: npt.NDArray[np.float32], track_ids: npt.NDArray[np.int64]) -> Gallery:
        """Embeddings not in any gallery yet, with fresh keys."""
        return cls(embeddings, qualities, track_ids, new_keys(len(qualities)))

    @classmethod
    def empty(cls, dim: int) -> Gallery:
        return cls.new(np.zeros((0, dim), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.qualities)

    def mean(self) -> Vectors | None:
        """Mean of the unit vectors: dot(mean_a, mean_b) is the mean pairwise cosine (M3-Agent's score)."""
        return self.embeddings.mean(axis=0, dtype=np.float64).astype(np.float32) if len(self) else None

    def extended(self, other: Gallery, capacity: int) -> Gallery:
        if not len(self) or not len(other):
            return (other if len(other) else self).trimmed(capacity)
        merged = Gallery(
            np.concatenate([self.embeddings, other.embeddings]),
            np.concatenate([self.qualities, other.qualities]),
            np.concatenate([self.track_ids, other.track_ids]),
            np.concatenate([self.keys, other.keys]),
        )
        return merged.trimmed(capacity)

    def subset(self, mask: npt.NDArray[np.bool_]) -> Gallery:
        return Gallery(self.embeddings[mask], self.qualities[mask], self.track_ids[mask], self.keys[mask])

    def trimmed(self, capacity: int) -> Gallery:
        keep = select(self.embeddings, self.qualities, capacity)
        return Gallery(self.embeddings[keep], self.qualities[keep], self.track_ids[keep], self.keys[keep])


def select(embeddings: Vectors, qualities: npt.NDArray[np.float32], capacity: int) -> npt.NDArray[np.int64]:
    """Indices (in input order) of at most `capacity` embeddings to keep; see the module docstring."""
    n = len(qualities)
    keep = np.arange(n)
    if n <= capacity:
        return keep
    sims = embeddings @ embeddings.T
    np.fill_diagonal(sims, -np.inf)
    weight = np.maximum(qualities, 1e-6) / max(float(qualities.max()), 1e-6)
    dropped = np.zeros(n, bool)
    for _ in range(n - capacity):
        value = weight * (1.0 - sims.max(axis=1))
        value[dropped] = np.inf
        gone = int(np.argmin(value))
        dropped[gone] = True
        sims[:, gone] = -np.inf  # a dropped embedding makes no other redundant (no copy of the kept part)
    return keep[~dropped]
