"""The index reports M3-Agent's exact score; the gallery keeps a diverse, sharp set."""

from __future__ import annotations

import numpy as np
import pytest

from memory.gallery import Gallery, select
from memory.index import NodeIndex


def unit_rows(rng: np.random.Generator, n: int, d: int = 64) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def people(rng: np.random.Generator, n_nodes: int, per_node: int, d: int = 64) -> list[np.ndarray]:
    """Embeddings clustered around n_nodes centres, like faces of different people."""
    centres = unit_rows(rng, n_nodes, d)
    out = []
    for c in centres:
        e = c + 0.6 * unit_rows(rng, per_node, d)
        out.append((e / np.linalg.norm(e, axis=1, keepdims=True)).astype(np.float32))
    return out


def mean_pairwise_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([[float(x.astype(np.float64) @ y.astype(np.float64)) for y in b] for x in a]))


@pytest.mark.parametrize("flat_max", [10_000, 50], ids=["flat", "hnsw"])
def test_score_equals_mean_of_pairwise_cosines(flat_max: int) -> None:
    rng = np.random.default_rng(7)
    nodes = people(rng, 300, 10)
    index = NodeIndex(64, flat_max=flat_max)
    for i, emb in enumerate(nodes):
        index.upsert(i + 1, Gallery.new(emb, np.ones(10, np.float32), np.zeros(10, np.int64)).mean())
    for target in range(0, 300, 30):
        query = nodes[target][:4] + 0.3 * unit_rows(rng, 4)
        query /= np.linalg.norm(query, axis=1, keepdims=True)
        hit = index.search(query.mean(axis=0))
        assert hit is not None
        brute = [mean_pairwise_cosine(query, emb) for emb in nodes]
        assert hit[0] == int(np.argmax(brute)) + 1
        assert hit[1] == pytest.approx(max(brute), abs=1e-5)


@pytest.mark.parametrize("flat_max", [10_000, 50], ids=["flat", "hnsw"])
def test_index_follows_updates_and_removals(flat_max: int) -> None:
    rng = np.random.default_rng(3)
    nodes = people(rng, 200, 5)
    index = NodeIndex(64, flat_max=flat_max)
    for i, emb in enumerate(nodes):
        index.upsert(i, emb.mean(axis=0))
    # node 5 now holds node 150's person (its embeddings were replaced): queries for them find 5
    index.upsert(5, nodes[150].mean(axis=0))
    index.remove(150)
    hit = index.search(nodes[150][:2].mean(axis=0))
    assert hit is not None and hit[0] == 5
    assert 150 not in index and len(index) == 199
    # a removed node is never returned, even as the only good candidate
    index.remove(5)
    hit = index.search(nodes[150][:2].mean(axis=0))
    assert hit is not None and hit[0] not in (5, 150)
    assert hit[1] == pytest.approx(max(float(nodes[150][:2].mean(0) @ nodes[i].mean(0)) for i in range(200) if i not in (5, 150)), abs=1e-5)


def test_hnsw_is_rebuilt_when_stale_entries_pile_up() -> None:
    rng = np.random.default_rng(5)
    index = NodeIndex(64, flat_max=20)
    for i in range(40):
        index.upsert(i, unit_rows(rng, 1)[0])
    for _ in range(30):  # each change moves the mean far: a new graph entry every time
        for i in range(40):
            index.upsert(i, unit_rows(rng, 1)[0])
    assert index._hnsw is not None and index._hnsw.ntotal <= 2 * 40 + 1024
    probe = unit_rows(rng, 1)[0]
    hit = index.search(probe)
    assert hit is not None and hit[1] == pytest.approx(max(float(probe @ index.mean(i)) for i in range(40)), abs=1e-5)


def test_full_gallery_drops_the_redundant_blurry_duplicate() -> None:
    rng = np.random.default_rng(11)
    base = unit_rows(rng, 4)
    duplicate = base[0] + 0.01 * unit_rows(rng, 1)[0]
    emb = np.vstack([base, duplicate / np.linalg.norm(duplicate)]).astype(np.float32)
    qualities = np.array([25, 24, 23, 22, 12], np.float32)  # the duplicate is the blurry one
    kept = select(emb, qualities, 4)
    assert list(kept) == [0, 1, 2, 3]
    qualities = np.array([12, 24, 23, 22, 25], np.float32)  # now the original is the blurry one
    assert list(select(emb, qualities, 4)) == [1, 2, 3, 4]


def test_gallery_never_exceeds_capacity_and_keeps_track_ids() -> None:
    rng = np.random.default_rng(2)
    g = Gallery.empty(0)
    for track in range(6):
        g = g.extended(Gallery.new(unit_rows(rng, 4), np.full(4, 20.0, np.float32), np.full(4, track, np.int64)), 10)
        assert len(g) == min(10, 4 * (track + 1))
    assert set(g.track_ids.tolist()) <= set(range(6))
    assert g.embeddings.shape == (10, 64)


def _drop_one_at_a_time(emb: np.ndarray, qualities: np.ndarray, capacity: int) -> list[int]:
    """The module docstring's rule, recomputed on what is left after each drop."""
    kept = list(range(len(qualities)))
    weight = np.maximum(qualities, 1e-6) / max(float(qualities.max()), 1e-6)
    while len(kept) > capacity:
        values = []
        for i in kept:
            redundancy = max(float(emb[i] @ emb[j]) for j in kept if j != i)
            values.append(float(weight[i]) * (1.0 - redundancy))
        kept.pop(int(np.argmin(values)))
    return kept


def test_gallery_selection_drops_what_one_at_a_time_drops() -> None:
    rng = np.random.default_rng(5)
    for trial in range(200):
        n, capacity = int(rng.integers(2, 16)), int(rng.integers(1, 12))
        emb = unit_rows(rng, n)
        if trial % 2:  # near-duplicates, so redundancy decides
            emb[n // 2 :] = emb[: n - n // 2] + 0.05 * unit_rows(rng, n - n // 2)
            emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        qualities = rng.uniform(5, 30, n).astype(np.float32)
        assert select(emb.astype(np.float32), qualities, capacity).tolist() == _drop_one_at_a_time(emb, qualities, capacity)


def test_random_churn_matches_brute_force() -> None:
    """Creations, updates and removals in any order (crossing the flat/HNSW boundary both ways)."""
    rng = np.random.default_rng(9)
    index = NodeIndex(64, flat_max=60)
    truth: dict[int, np.ndarray] = {}
    for step in range(1500):
        node = int(rng.integers(0, 150))
        if rng.random() < 0.3 and node in truth:
            index.remove(node)
            del truth[node]
        else:
            truth[node] = (unit_rows(rng, 1)[0] * rng.uniform(0.5, 1.0)).astype(np.float32)
            index.upsert(node, truth[node])
        if step % 50 == 0:
            probe = truth[next(iter(truth))] + 0.05 * unit_rows(rng, 1)[0]
            hit = index.search(probe)
            best = max(truth, key=lambda n: float(truth[n] @ probe))
            assert hit is not None and hit[0] == best and hit[1] == pytest.approx(float(truth[best] @ probe), abs=1e-5)
    assert len(index) == len(truth)
