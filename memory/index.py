"""Nearest identity by M3-Agent's score, exact, and sublinear at scale.

M3-Agent scores a query track against a node by the mean of all pairwise cosines between their
embeddings. For unit vectors that is dot(mean(query), mean(node)), so the index holds one mean
vector per node and every reported score is that exact dot product.

Up to FLAT_MAX nodes a scan over all means is fastest (faiss's single-threaded SIMD scan: numpy's
multithreaded BLAS takes ~2 ms for one 1000 x 512 product on a busy 2-core machine). Above it an HNSW graph over the
*unit* means proposes candidates, which are re-scored exactly from the stored means. HNSW cannot
delete, so deletion is lazy: the graph may hold stale entries (removed nodes, older versions of a
node's mean, slots reused by another node). They are harmless because every candidate is re-scored
from the current matrix; a node's mean is re-inserted only once it has drifted from its indexed
version (cosine < DRIFT_COS), and the graph is rebuilt when stale entries outnumber live ones.

Above FLAT_MAX the search is approximate in *which* node it finds (recall@1 about 0.95 at 100k
nodes in the benchmark), never in the score it reports. A miss costs a provisional duplicate node,
which re-clustering merges back. A rebuild at 100k nodes takes tens of seconds (it is amortised:
one per ~100k changes); reopening a memory that large builds the graph once.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import faiss

log = logging.getLogger(__name__)

Vector = npt.NDArray[np.float32]

FLAT_MAX = 4096  # scanning 4k x 512 takes ~0.2 ms on one core
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 40
HNSW_EF_SEARCH = 128  # recall@1 ~0.95 at 100k nodes (tools/bench_memory.py), under 1 ms
CANDIDATES = 32
DRIFT_COS = 0.98


class NodeIndex:
    def __init__(self, dim: int, *, flat_max: int = FLAT_MAX) -> None:
        self.dim = dim
        self.flat_max = flat_max
        self._means = np.zeros((64, dim), np.float32)
        self._ids = np.full(64, -1, np.int64)  # node id per slot; slots [0, len(self)) are the live ones
        self._slot: dict[int, int] = {}
        self._hnsw: faiss.IndexIDMap | None = None
        self._entry: dict[int, int] = {}  # slot -> its latest entry in the graph

    def __len__(self) -> int:
        return len(self._slot)

    def __contains__(self, node_id: int) -> bool:
        return node_id in self._slot

    def mean(self, node_id: int) -> Vector:
        return self._means[self._slot[node_id]].copy()

    def upsert(self, node_id: int, mean: Vector) -> None:
        slot = self._slot.get(node_id)
        if slot is None:
            slot = self._take_slot(node_id)
        self._means[slot] = mean
        if self._hnsw is not None:
            self._index_slot(slot)
        elif len(self._slot) > self.flat_max:
            self._rebuild()

    def add_many(self, node_ids: list[int], means: Vector) -> None:
        """Bulk load (reopening a memory): one graph build instead of one insertion per node."""
        for node_id, mean in zip(node_ids, means):
            slot = self._slot[node_id] if node_id in self._slot else self._take_slot(node_id)  # may grow _means
            self._means[slot] = mean
        if len(self._slot) > self.flat_max:
            self._rebuild()

    def remove(self, node_id: int) -> None:
        """Swap-remove: the last slot fills the hole, so live slots stay contiguous for the scan."""
        slot = self._slot.pop(node_id, None)
        if slot is None:
            return
        last = len(self._slot)
        self._entry.pop(slot, None)
        if slot != last:
            moved = int(self._ids[last])
            self._means[slot], self._ids[slot], self._slot[moved] = self._means[last], moved, slot
            self._entry.pop(last, None)
            if self._hnsw is not None:
                self._index_slot(slot)  # its old entry now names another slot's node
        self._ids[last] = -1
        self._means[last] = 0.0
        if self._hnsw is not None and len(self._slot) < self.flat_max // 2:
            self._hnsw = None  # small again: the flat product is faster and exact
            self._entry.clear()

    def search(self, query: Vector, exclude: int | None = None) -> tuple[int, float] | None:
        """Best node (other than `exclude`) for a query mean vector and its exact score, or None."""
        n = len(self._slot)
        if n == 0:
            return None
        # One query gains nothing from OpenMP, and on a busy CPU its thread hand-offs cost ~10x the
        # search itself. The setting is per calling thread (an OpenMP ICV), so nothing else slows.
        import faiss  # loaded at the first search: reading a stored memory (export, timeline) needs none

        faiss.omp_set_num_threads(1)
        query = np.ascontiguousarray(query, np.float32)
        if self._hnsw is None:
            _, found = faiss.knn(query[None, :], self._means[:n], min(CANDIDATES, n), metric=faiss.METRIC_INNER_PRODUCT)
        else:
            unit = (query / max(float(np.linalg.norm(query)), 1e-12)).astype(np.float32)
            _, found = self._hnsw.search(unit[None, :], CANDIDATES)
        slots = np.unique(found[0][found[0] >= 0])
        slots = slots[self._ids[slots] >= 0]
        if exclude is not None:
            slots = slots[self._ids[slots] != exclude]
        if len(slots) == 0:
            return None
        scores = self._means[slots] @ query
        best = int(np.argmax(scores))
        return int(self._ids[slots[best]]), float(scores[best])

    def scores(self, query: Vector, node_ids: list[int]) -> npt.NDArray[np.float32]:
        """Exact scores of a query against given nodes."""
        return self._means[[self._slot[n] for n in node_ids]] @ query

    def _take_slot(self, node_id: int) -> int:
        slot = len(self._slot)
        if slot == len(self._ids):
            self._grow()
        self._slot[node_id] = slot
        self._ids[slot] = node_id
        return slot

    def _grow(self) -> None:
        cap = 2 * len(self._ids)
        means = np.zeros((cap, self.dim), np.float32)
        means[: len(self._means)] = self._means
        ids = np.full(cap, -1, np.int64)
        ids[: len(self._ids)] = self._ids
        self._means, self._ids = means, ids

    def _unit(self, slots: npt.NDArray[np.int64]) -> Vector:
        vecs = self._means[slots]
        return (vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def _index_slot(self, slot: int) -> None:
        assert self._hnsw is not None
        unit = self._unit(np.array([slot]))
        entry = self._entry.get(slot)
        if entry is not None:
            indexed = self._hnsw.index.reconstruct(entry)
            if float(indexed @ unit[0]) >= DRIFT_COS:
                return
        self._entry[slot] = self._hnsw.ntotal
        self._hnsw.add_with_ids(unit, np.array([slot], np.int64))
        if self._hnsw.ntotal > 2 * len(self._slot) + 1024:
            self._rebuild()

    def _rebuild(self) -> None:
        import faiss

        started = time.perf_counter()
        faiss.omp_set_num_threads(os.cpu_count() or 1)  # a build does use every core
        slots = np.array(sorted(self._slot.values()), np.int64)
        graph = faiss.IndexHNSWFlat(self.dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        graph.hnsw.efSearch = HNSW_EF_SEARCH
        self._hnsw = faiss.IndexIDMap(graph)
        self._hnsw.add_with_ids(self._unit(slots), slots)
        self._entry = {int(s): i for i, s in enumerate(slots)}
        log.info("rebuilt the HNSW graph over %d nodes in %.1f s", len(slots), time.perf_counter() - started)
