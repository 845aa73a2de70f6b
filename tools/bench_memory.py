"""Benchmarks of the memory's two costly paths: identity matching and re-clustering.

    python tools/bench_memory.py            # 1k, 10k, 100k nodes; 10k buffered faces
    python tools/bench_memory.py --sizes 1000 10000 --queries 500

Synthetic 512-d data shaped like face embeddings: each node is an identity centre with 10
embeddings around it (M3-Agent's max_img_embeddings); a query is a 3-face track of one identity.
Latency is per query, single caller, on whatever CPU runs it; recall@1 compares with the exact
brute-force answer (mean of pairwise cosines against every node).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import numpy.typing as npt

from memory.config import ReclusterConfig
from memory.index import NodeIndex
from memory.recluster import FaceBuffer, cluster

DIM = 512
Vectors = npt.NDArray[np.float32]


def unit(x: npt.NDArray[np.floating]) -> Vectors:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def faces_of(centres: Vectors, rng: np.random.Generator, per: int, spread: float = 0.9) -> Vectors:
    """per faces around each centre; spread 0.9 gives same-identity cosines around 0.55, like ArcFace."""
    noise = unit(rng.standard_normal((len(centres), per, DIM)))
    return unit(centres[:, None, :] + spread * noise)


def identities(n: int, rng: np.random.Generator) -> Vectors:
    """Identity centres with the structure of real face embeddings: they gather in looser groups
    (similar-looking people), so two identities' cosines spread around 0.1 instead of the
    near-exact 0 +- 0.04 of independent random 512-d vectors, a worst case no face model produces."""
    groups = unit(rng.standard_normal((max(n // 100, 1), DIM)))
    return unit(groups[rng.integers(0, len(groups), n)] + 2.0 * unit(rng.standard_normal((n, DIM))))


def bench_matching(n_nodes: int, n_queries: int, rng: np.random.Generator) -> None:
    centres = identities(n_nodes, rng)
    index = NodeIndex(DIM)
    started = time.perf_counter()
    chunk = 10_000
    means = np.concatenate([faces_of(centres[lo : lo + chunk], rng, 10).mean(axis=1) for lo in range(0, n_nodes, chunk)])
    index.add_many(list(range(n_nodes)), means)  # node means, from 10 embeddings each
    build = time.perf_counter() - started
    targets = rng.integers(0, n_nodes, n_queries)
    queries = faces_of(centres[targets], rng, 3).mean(axis=1)
    index.search(queries[0])  # warm-up
    started = time.perf_counter()
    found = [index.search(q) for q in queries]
    per_query = (time.perf_counter() - started) / n_queries
    exact = [int(np.argmax(means @ q)) for q in queries[: min(n_queries, 200)]]  # node i is row i
    recall = np.mean([f is not None and f[0] == e for f, e in zip(found, exact)])
    kind = "flat" if index._hnsw is None else "HNSW + exact re-score"
    print(f"match  {n_nodes:>7} nodes  {per_query * 1e3:7.3f} ms/query  recall@1 {recall:.3f}  ({kind}; load {build:.1f} s)")


def bench_recluster(n_faces: int, per_track: int, rng: np.random.Generator) -> None:
    cfg = ReclusterConfig(buffer_size=n_faces)
    n_tracks = n_faces // per_track
    people = unit(rng.standard_normal((max(n_tracks // 5, 1), DIM)))
    track_centres = unit(people[rng.integers(0, len(people), n_tracks)] + 0.5 * unit(rng.standard_normal((n_tracks, DIM))))
    buffer = FaceBuffer(cfg.buffer_size)
    faces = faces_of(track_centres, rng, per_track)
    for t in range(n_tracks):
        buffer.add(t, faces[t], np.full(per_track, 20.0, np.float32))
    started = time.perf_counter()
    tracks = buffer.track_means()
    labels = cluster(tracks.units, cfg)
    took = time.perf_counter() - started
    print(f"recluster {len(buffer):>6} faces in {n_tracks:>5} tracks ({len(tracks.track_ids)} clustered): "
          f"{took:6.3f} s, {labels.max() + 1} clusters")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--faces", type=int, default=10_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for n in args.sizes:
        bench_matching(n, args.queries, rng)
    for per_track in (10, 1):  # a typical buffer, and the worst case: every face its own track
        bench_recluster(args.faces, per_track, rng)


if __name__ == "__main__":
    main()
