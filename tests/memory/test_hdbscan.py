"""memory.hdbscan gives scikit-learn's HDBSCAN labels exactly, as re-clustering called it
(metric="precomputed", min_cluster_size m, everything else at its defaults)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from sklearn.cluster import HDBSCAN
from support.realfaces import FaceBank

from memory.hdbscan import hdbscan_labels
from memory.recluster import cosine_distances


def reference(distance: npt.NDArray[np.float64], m: int) -> npt.NDArray[np.int64]:
    return HDBSCAN(min_cluster_size=m, metric="precomputed", copy=True).fit_predict(distance).astype(np.int64)


def assert_same(distance: npt.NDArray[np.float64], m: int) -> None:
    before = distance.copy()
    labels = hdbscan_labels(distance, m)
    np.testing.assert_array_equal(distance, before)  # read, never written
    np.testing.assert_array_equal(labels, reference(distance, m))


def euclidean(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))


def unit(rng: np.random.Generator, n: int, d: int) -> npt.NDArray[np.float32]:
    u = rng.normal(size=(n, d)).astype(np.float32)
    return u / np.linalg.norm(u, axis=1, keepdims=True)


@pytest.mark.parametrize("seed", range(4))
def test_random_and_clustered_points(seed: int) -> None:
    rng = np.random.default_rng(seed)
    found = 0
    for _ in range(60):
        n = int(rng.integers(2, 300))
        m = int(rng.integers(2, min(n, 8) + 1))
        centres = rng.normal(size=(int(rng.integers(1, 8)), 6)) * 4
        x = centres[rng.integers(0, len(centres), n)] + rng.normal(size=(n, 6)) * rng.uniform(0.05, 1.5)
        assert_same(euclidean(x), m)
        found += int(reference(euclidean(x), m).max() >= 1)
    assert found > 10  # most inputs had clusters to find, not only noise


@pytest.mark.parametrize("seed", range(3))
def test_ties_and_duplicates(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    for _ in range(40):
        n = int(rng.integers(2, 500))
        m = int(rng.integers(2, min(n, 12) + 1))
        d = rng.integers(0, 4, size=(n, n)).astype(np.float64)  # few distinct distances, zeros among them
        d = np.minimum(d, d.T)
        np.fill_diagonal(d, 0.0)
        assert_same(d, m)
        x = np.round(rng.normal(size=(n, 2)) * 2)  # points on a grid: repeated points, equal distances
        assert_same(np.abs(x[:, None] - x[None]).sum(-1), m)


@pytest.mark.parametrize("value", [0.0, 1.0])
@pytest.mark.parametrize("n", [2, 3, 5, 40, 333])
def test_all_points_alike(n: int, value: float) -> None:
    d = np.full((n, n), value)
    np.fill_diagonal(d, 0.0)
    for m in sorted({2, min(n, 3), n}):
        assert_same(d, m)


def test_cosine_distances_of_unit_vectors_with_repeats() -> None:
    rng = np.random.default_rng(7)
    for _ in range(30):
        n = int(rng.integers(2, 400))
        u = unit(rng, n, 32)[rng.integers(0, n, n)]  # the same track mean more than once
        assert_same(cosine_distances(u), 2)  # as computed for re-clustering: not exactly symmetric


def test_real_faces(bank: FaceBank) -> None:
    people = bank.distinct()
    units = np.concatenate([bank.faces(p, 6, hard=i % 2 == 1).embeddings for i, p in enumerate(people)])
    distance = cosine_distances(units)
    assert_same(distance, 2)
    assert reference(distance, 2).max() >= len(people) // 2  # real structure, not one blob


@pytest.mark.parametrize(
    ("distance", "m", "message"),
    [
        (np.zeros((3, 2)), 2, "square"),
        (np.zeros((1, 1)), 2, "at least 2"),
        (np.zeros((3, 3)), 4, "min_cluster_size"),
        (np.zeros((3, 3)), 1, "min_cluster_size"),
        (np.full((3, 3), np.nan), 2, "finite"),
        (-np.ones((3, 3)), 2, "non-negative"),
    ],
)
def test_bad_input_is_a_clear_error(distance: npt.NDArray[np.float64], m: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        hdbscan_labels(distance, m)
