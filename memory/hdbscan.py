"""HDBSCAN of a precomputed distance matrix, numpy only (Campello, Moulavi & Sander 2013).

Re-clustering needs one call, HDBSCAN(min_cluster_size=m, metric="precomputed") with everything
else at scikit-learn's defaults: min_samples = m, excess-of-mass selection, the root never a
cluster (a single cluster of everything is noise), no cluster_selection_epsilon. This module is
that and nothing more, so the service need not import scikit-learn (~90 MB of RSS) for it.

The steps, each the textbook one:
1. core distance of a point: its distance to its min_samples-th nearest point, itself included;
2. mutual reachability of two points: max(core a, core b, distance a-b), computed one row at a time
   inside Prim's algorithm (no second n x n matrix);
3. Prim's algorithm on that complete graph, from point 0, always taking the lowest-indexed of the
   nearest points. Each step is recorded as an edge from the point added just before: the edges
   then form a chain in Prim's order, and for every threshold the points joined by edges at or
   below it are runs of that chain, the same groups as the tree's own edges give (Prim's leaves a
   group only once nothing below the threshold leads out of it). scikit-learn records the same
   chain, and ties are broken as it does, so the labels agree with it exactly
   (tests/memory/test_hdbscan.py);
4. single linkage: the chain's edges, sorted by weight, merged with a union-find into a binary tree;
5. the condensed tree: walking down from the root, a split where both sides hold at least
   min_cluster_size points is a split into two new clusters; otherwise the small side's points
   fall out of the cluster at that level (lambda = 1 / distance) and the cluster goes on;
6. stability of a cluster: the sum over what leaves it (points, child clusters) of
   (lambda when it leaves - lambda the cluster was born at) x its size;
7. excess of mass: from the leaves up, a cluster is kept if it is at least as stable as its
   children's selection together, and then nothing below it is; the root is never kept;
8. a point's label is its nearest kept cluster above it (clusters numbered in the order they were
   made), -1 (noise) if none.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

CORE_ROWS = 256  # rows of the distance matrix partitioned at once: bounds that copy to 256 x n


def hdbscan_labels(distance: npt.NDArray[np.floating], min_cluster_size: int) -> npt.NDArray[np.int64]:
    """Cluster labels (-1 = noise) of n points given their symmetric (n, n) distance matrix, which
    is read, never written."""
    n = len(distance)
    if distance.ndim != 2 or distance.shape != (n, n):
        raise ValueError(f"the distance matrix must be square, not {distance.shape}")
    if n < 2:
        raise ValueError("HDBSCAN needs at least 2 points")
    if not 2 <= min_cluster_size <= n:
        raise ValueError(f"min_cluster_size must be between 2 and the number of points ({n}), not {min_cluster_size}")
    distance = np.asarray(distance, dtype=np.float64)
    if not (distance.min() >= 0.0 and distance.max() < math.inf):  # NaN fails both; no n x n temporaries
        raise ValueError("distances must be finite and non-negative")
    core = core_distances(distance, min_cluster_size)
    sources, targets, weights = prim_chain(distance, core)
    order = np.argsort(weights)  # the same sort (and so the same order of equal weights) as scikit-learn's
    tree = single_linkage(sources[order].tolist(), targets[order].tolist(), weights[order].tolist(), n)
    rows = condense(tree, n, min_cluster_size)
    return _labels(rows, n, _select(rows, n))


def core_distances(distance: npt.NDArray[np.float64], min_samples: int) -> npt.NDArray[np.float64]:
    core = np.empty(len(distance))
    k = min_samples - 1  # the point itself (distance 0) is the first
    for start in range(0, len(distance), CORE_ROWS):
        core[start : start + CORE_ROWS] = np.partition(distance[start : start + CORE_ROWS], k, axis=1)[:, k]
    return core


def prim_chain(
    distance: npt.NDArray[np.float64], core: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    """The n - 1 edges of a minimum spanning tree of the mutual reachability graph, as the chain of
    Prim's order: (point added before, point added, its mutual reachability to the tree)."""
    n = len(distance)
    sources = np.empty(n - 1, np.intp)
    targets = np.empty(n - 1, np.intp)
    weights = np.empty(n - 1)
    nearest = np.full(n, np.inf)  # each point's least mutual reachability to the tree so far
    taken = np.zeros(n)  # +inf once a point is in the tree: keeps it out of `nearest`
    row = np.empty(n)
    current = 0
    taken[0] = np.inf
    for i in range(n - 1):
        np.maximum(distance[current], core, out=row)
        np.maximum(row, core[current], out=row)
        np.maximum(row, taken, out=row)
        np.minimum(nearest, row, out=nearest)
        added = int(np.argmin(nearest))  # the first of equal ones, as the reference does
        sources[i], targets[i], weights[i] = current, added, nearest[added]
        taken[added] = nearest[added] = np.inf
        current = added
    return sources, targets, weights


def single_linkage(sources: list[int], targets: list[int], weights: list[float], n: int) -> list[tuple[int, int, float, int]]:
    """Merges in order of weight: row i makes node n + i of (left root, right root, weight, size)."""
    parent = list(range(2 * n - 1))
    size = [1] * n + [0] * (n - 1)

    def root(x: int) -> int:
        top = x
        while parent[top] != top:
            top = parent[top]
        while parent[x] != top:  # path compression
            parent[x], x = top, parent[x]
        return top

    tree = []
    for i, (a, b, w) in enumerate(zip(sources, targets, weights)):
        ra, rb = root(a), root(b)
        node = n + i
        parent[ra] = parent[rb] = node
        size[node] = size[ra] + size[rb]
        tree.append((ra, rb, w, size[node]))
    return tree


def condense(tree: list[tuple[int, int, float, int]], n: int, min_cluster_size: int) -> list[tuple[int, int, float, int]]:
    """The condensed tree's rows (parent cluster, child, lambda, child size), top down. Clusters are
    numbered from n (the root) in the order they are made; a child below n is a point."""

    def size(node: int) -> int:
        return tree[node - n][3] if node >= n else 1

    def top_down(top: int) -> list[int]:  # a subtree's nodes level by level, left before right
        nodes, level = [], [top]
        while level:
            nodes.extend(level)
            level = [child for node in level if node >= n for child in tree[node - n][:2]]
        return nodes

    root = 2 * n - 2
    cluster_of = {root: n}
    made = n + 1
    gone = bytearray(root + 1)  # nodes whose points have already fallen out
    rows: list[tuple[int, int, float, int]] = []
    for node in top_down(root):
        if node < n or gone[node]:
            continue
        left, right, d, _ = tree[node - n]
        lam = 1.0 / d if d > 0.0 else math.inf
        cluster = cluster_of[node]
        if size(left) >= min_cluster_size and size(right) >= min_cluster_size:
            for child in (left, right):
                cluster_of[child] = made
                rows.append((cluster, made, lam, size(child)))
                made += 1
            continue
        for child in (left, right):
            if size(child) >= min_cluster_size:
                cluster_of[child] = cluster  # the cluster goes on, less the other side's points
                continue
            for sub in top_down(child):
                gone[sub] = 1
                if sub < n:
                    rows.append((cluster, sub, lam, 1))
    return rows


def _select(rows: list[tuple[int, int, float, int]], n: int) -> set[int]:
    """The clusters excess of mass keeps (never the root, n)."""
    birth = {n: 0.0}
    children: dict[int, list[int]] = {}
    for parent, child, lam, _ in rows:
        if child >= n:
            birth[child] = lam
            children.setdefault(parent, []).append(child)
    stability = dict.fromkeys(birth, 0.0)
    for parent, _, lam, size in rows:  # in the rows' order: the same float sums as the reference
        stability[parent] += (lam - birth[parent]) * size
    kept: set[int] = set()
    for cluster in sorted(stability, reverse=True)[:-1]:  # children are numbered after their parents
        below = 0.0
        for child in children.get(cluster, []):
            below += stability[child]
        if below > stability[cluster]:
            stability[cluster] = below
        else:
            kept -= _descendants(cluster, children)
            kept.add(cluster)
    return kept


def _descendants(cluster: int, children: dict[int, list[int]]) -> set[int]:
    found: set[int] = set()
    todo = list(children.get(cluster, []))
    while todo:
        c = todo.pop()
        found.add(c)
        todo.extend(children.get(c, []))
    return found


def _labels(rows: list[tuple[int, int, float, int]], n: int, kept: set[int]) -> npt.NDArray[np.int64]:
    number = {c: i for i, c in enumerate(sorted(kept))}
    up = {child: parent for parent, child, _, _ in rows}
    labels = np.full(n, -1, np.int64)
    for point in range(n):
        cluster = up[point]
        while cluster not in kept and cluster != n:
            cluster = up[cluster]
        if cluster in kept:
            labels[point] = number[cluster]
    return labels
