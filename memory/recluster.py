"""Periodic re-clustering of recent faces (and, separately, voices), as M3-Agent does, to repair online mistakes.

Online matching sees one track at a time, so it can create two nodes for one person (first seen
blurred, then sharp) or, rarely, attach two people to one node. Every so often the recent good
faces are clustered with HDBSCAN (M3-Agent's settings: precomputed cosine distance 1 - similarity
clipped at 0, min_cluster_size 2, label -1 = noise) and the clusters are reconciled with nodes.

Cost is bounded twice: the buffer holds at most `buffer_size` faces, and HDBSCAN clusters one mean
vector per track (a track is one person by construction), at most MAX_TRACKS of the most recent,
so the distance matrix is MAX_TRACKS^2 at worst however many faces are buffered.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .config import ReclusterConfig
from .gallery import Vectors
from .graph import connected_groups
from .hdbscan import hdbscan_labels

MAX_TRACKS = 1500


@dataclass
class TrackMeans:
    track_ids: list[int]
    units: Vectors  # (n, d) unit mean vector per track
    faces: npt.NDArray[np.int64]  # (n,) buffered faces per track


class FaceBuffer:
    """The most recent good faces (or good speech turns, in the voices' own buffer): (track id,
    unit embedding, quality). The node is looked up through the track at clustering time, so it is
    current after any merge or split.

    A ring of `size` rows made whole, zero-filled, at the first face: the memory it will hold is
    taken once and written over in place. Kept as three Python objects a face (~2.3 KB a 512-d
    face), it grew face by face for the hour or more two cameras take to fill it (BENCHMARKS.md,
    Soak)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._vectors: Vectors | None = None  # (size, d), made at the first face
        self._tracks = np.zeros(size, np.int64)
        self._qualities = np.zeros(size, np.float32)
        self._next = 0  # the slot the next face goes to
        self._count = 0
        self.new_faces = 0  # since the last run

    def __len__(self) -> int:
        return self._count

    def _slots(self) -> npt.NDArray[np.int64]:
        """The occupied slots, oldest first."""
        return (self._next - self._count + np.arange(self._count)) % self._size

    def add(self, track_id: int, embeddings: Vectors, qualities: npt.NDArray[np.float32]) -> None:
        self.new_faces += len(embeddings)
        embeddings, qualities = embeddings[-self._size :], qualities[-self._size :]  # older ones would be overwritten
        if not len(embeddings):
            return
        if self._vectors is None:
            self._vectors = np.empty((self._size, embeddings.shape[1]), np.float32)
            self._vectors.fill(0.0)  # its pages taken now, not as the ring fills
        slots = (self._next + np.arange(len(embeddings))) % self._size
        self._vectors[slots] = embeddings
        self._tracks[slots] = track_id
        self._qualities[slots] = qualities
        self._next = (self._next + len(embeddings)) % self._size
        self._count = min(self._size, self._count + len(embeddings))

    def track_ids(self) -> set[int]:
        return set(self._tracks[self._slots()].tolist())

    def forget(self, track_ids: set[int]) -> None:
        """Drops the faces of forgotten tracks (memory.forget); the others keep their order."""
        slots = self._slots()
        kept = slots[~np.isin(self._tracks[slots], list(track_ids))]
        if self._vectors is not None:
            self._vectors[: len(kept)] = self._vectors[kept]
        self._tracks[: len(kept)] = self._tracks[kept]
        self._qualities[: len(kept)] = self._qualities[kept]
        self._count, self._next = len(kept), len(kept) % self._size

    def of_tracks(self, track_ids: set[int]) -> tuple[Vectors, npt.NDArray[np.float32], list[int]]:
        slots = self._slots()
        picked = slots[np.isin(self._tracks[slots], list(track_ids))]
        if not len(picked) or self._vectors is None:
            return np.zeros((0, 0), np.float32), np.zeros(0, np.float32), []
        return self._vectors[picked], self._qualities[picked], self._tracks[picked].tolist()

    def track_means(self, max_tracks: int = MAX_TRACKS) -> TrackMeans:
        """One unit mean vector per track, of the max_tracks tracks with the most recent faces
        (newest first)."""
        slots = self._slots()[::-1]  # newest first, so the cap keeps the most recent tracks
        if not len(slots) or self._vectors is None:
            return TrackMeans([], np.zeros((0, 0), np.float32), np.zeros(0, np.int64))
        ids, newest, inverse = np.unique(self._tracks[slots], return_index=True, return_inverse=True)
        rank = np.empty(len(ids), np.int64)
        rank[np.argsort(newest)] = np.arange(len(ids))  # 0 = the track of the newest face
        row = rank[inverse]
        chosen = row < max_tracks
        n = min(len(ids), max_tracks)
        sums = np.zeros((n, self._vectors.shape[1]), np.float32)
        np.add.at(sums, row[chosen], self._vectors[slots[chosen]])  # in order: the same float32 sums face by face
        sums /= np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
        order = np.argsort(rank)[:n]
        return TrackMeans(ids[order].tolist(), sums, np.bincount(row[chosen], minlength=n).astype(np.int64))


def cluster(units: Vectors, cfg: ReclusterConfig, pairwise: bool = False) -> npt.NDArray[np.int64]:
    """HDBSCAN labels (-1 = noise) of unit vectors, then clusters as close as a merge accepts are joined
    (closeness of two groups: see `centre`).

    The join is one addition to M3-Agent: HDBSCAN keeps a person's sharp and blurred faces as two
    clusters (each is dense on its own), which is exactly the duplicate this pass exists to find.
    HDBSCAN's cluster_selection_epsilon would do this inside the tree, but scikit-learn's failed
    with numpy 2 and memory.hdbscan has only the defaults, so it is done on the cluster means."""
    if len(units) < max(cfg.min_cluster_size, 2):
        return np.full(len(units), -1, np.int64)
    labels = hdbscan_labels(cosine_distances(units), cfg.min_cluster_size)
    return _join_close_clusters(units, labels, cfg.merge_min_similarity, pairwise)


def cosine_distances(units: Vectors) -> npt.NDArray[np.float64]:
    """1 - cosine similarity of unit vectors, clipped at 0, in float64: (n, n), the one matrix of
    that size a run holds (the subtraction and the clip are done in place).

    The matrix and the float64 copies it is the product of live in anonymous mappings of their
    own, returned to the system as soon as they are dropped (the copies on return, the matrix with
    the run). From malloc they grew with the buffer (18 MB at MAX_TRACKS) run after run, and
    glibc, which raises its mmap threshold to the largest block freed, then served them and every
    smaller block from its heaps, where their freed pages stayed until the next trim and the heaps
    grew apart (BENCHMARKS.md, Soak)."""
    n, d = units.shape
    copies = _mapped(2 * n * d)  # a mapping of their own: unmapped on return, not held through the run
    left, right = copies[: n * d].reshape(n, d), copies[n * d :].reshape(d, n)
    left[...] = units
    right[...] = units.T  # a second array: numpy would take the product of one with its own transpose another way
    distance = _mapped(n * n).reshape(n, n)
    np.matmul(left, right, out=distance)
    np.subtract(1.0, distance, out=distance)
    np.clip(distance, 0.0, None, out=distance)
    np.fill_diagonal(distance, 0.0)
    return distance


def _mapped(size: int) -> npt.NDArray[np.float64]:
    """`size` float64 in a private anonymous mapping (the process' own memory, not shared memory as
    mmap's default would count it), unmapped once no array refers to it."""
    return np.frombuffer(mmap.mmap(-1, max(size, 1) * 8, flags=mmap.MAP_PRIVATE), np.float64, count=size)


def _join_close_clusters(
    units: Vectors, labels: npt.NDArray[np.int64], min_similarity: float, pairwise: bool
) -> npt.NDArray[np.int64]:
    found = sorted(set(labels.tolist()) - {-1})
    if len(found) < 2:
        return labels
    means = np.stack([centre(units[labels == c], np.ones(int((labels == c).sum()), units.dtype), pairwise) for c in found])
    i, j = np.nonzero(np.triu(means @ means.T >= min_similarity, k=1))
    joined = labels.copy()
    for group in connected_groups(zip(i.tolist(), j.tolist())):
        for member in group[1:]:
            joined[labels == found[member]] = found[group[0]]
    return joined


def centre(units: Vectors, weights: npt.NDArray[Any], pairwise: bool) -> Vectors:
    """The vector that stands for a group in comparisons: dot(centre_a, centre_b) is the cosine of
    their mean directions, or with `pairwise` M3-Agent's mean pairwise cosine between their members.

    Faces compare directions. Speaker embeddings share a large common part that averaging keeps,
    so the directions of two big groups of different speakers grow alike (toward that common
    part) while their mean pairwise cosine stays where single turns are: voices compare that."""
    total = (units * weights[:, None]).sum(axis=0)
    if pairwise:
        return (total / max(float(weights.sum()), 1e-12)).astype(np.float32)
    return (total / max(float(np.linalg.norm(total)), 1e-12)).astype(np.float32)


def plan_splits(
    tracks: TrackMeans, labels: npt.NDArray[np.int64], node_of: dict[int, int], cfg: ReclusterConfig, pairwise: bool = False
) -> list[tuple[int, list[list[int]]]]:
    """Nodes whose tracks fall into clearly different clusters: (node, [track ids to move out, per new node]).

    The cluster with the most faces stays; another leaves only if its mean is at most
    split_max_similarity to the staying one (noise never causes a split)."""
    by_node: dict[int, dict[int, list[int]]] = {}
    for i, (t, label) in enumerate(zip(tracks.track_ids, labels)):
        if label >= 0 and t in node_of:
            by_node.setdefault(node_of[t], {}).setdefault(int(label), []).append(i)
    plans = []
    for node, groups in by_node.items():
        if len(groups) < 2:
            continue
        means = {lab: centre(tracks.units[idx], tracks.faces[idx], pairwise) for lab, idx in groups.items()}
        main = max(groups, key=lambda lab: int(tracks.faces[groups[lab]].sum()))
        leave = [
            [tracks.track_ids[i] for i in idx]
            for lab, idx in sorted(groups.items())
            if lab != main and float(means[lab] @ means[main]) <= cfg.split_max_similarity
        ]
        if leave:
            plans.append((node, leave))
    return plans


def plan_merges(
    tracks: TrackMeans,
    labels: npt.NDArray[np.int64],
    node_of: dict[int, int],
    mergeable: Callable[[int, int], bool],
    priority: Callable[[int], tuple[float, ...]],
    cannot_link: set[tuple[int, int]],
) -> list[list[int]]:
    """Groups of nodes to merge, survivor first.

    Nodes sharing a cluster merge only if their kind's test says the candidate is the survivor's
    person (HDBSCAN puts even noise-level points in some cluster when the data are sparse, so the
    cluster alone is not proof; see memory.policy) and no hand-made split forbids the pair."""
    nodes_in: dict[int, set[int]] = {}
    for t, label in zip(tracks.track_ids, labels):
        if label >= 0 and t in node_of:
            nodes_in.setdefault(int(label), set()).add(node_of[t])
    plans = []
    for members in nodes_in.values():
        if len(members) < 2:
            continue
        groups: list[list[int]] = []
        for node in sorted(members, key=priority):
            home = next((g for g in groups if _can_join(g, node, mergeable, cannot_link)), None)
            if home is None:
                groups.append([node])
            else:
                home.append(node)
        plans.extend(g for g in groups if len(g) > 1)
    return plans


def _can_join(group: list[int], node: int, mergeable: Callable[[int, int], bool], cannot_link: set[tuple[int, int]]) -> bool:
    if not mergeable(group[0], node):
        return False
    return not any(_pair(node, other) in cannot_link for other in group)


def agreement(a: Vectors, b: Vectors, min_members: int) -> tuple[float, float | None]:
    """How well two groups of unit vectors (k, d) agree: the median cosine across them, and the median
    cosine within them (each group with at least min_members vectors gives the median of its own
    pairs; their average; None if neither has that many).

    Medians, because one odd member (a speech turn holding two people) moves a mean pairwise
    cosine as much as many typical ones, and not a median."""
    cross = float(np.median(a @ b.T))
    own = [float(np.median((g @ g.T)[np.triu_indices(len(g), 1)])) for g in (a, b) if len(g) >= max(min_members, 2)]
    return cross, (sum(own) / len(own) if own else None)


def _pair(a: int, b: int) -> tuple[int, int]:
    return (min(a, b), max(a, b))


def pairs(links: Iterable[tuple[int, int]]) -> set[tuple[int, int]]:
    return {_pair(a, b) for a, b in links}
