"""The re-clustering buffer: a fixed ring that gives the same track means as a plain list of faces,
takes its memory once, and the distance matrix exactly as the straightforward product gives it."""

from __future__ import annotations

import tracemalloc

import numpy as np
import numpy.typing as npt

from memory.recluster import FaceBuffer, cosine_distances


def unit(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def faces(rng: np.random.Generator, n_tracks: int, dim: int = 16) -> list[tuple[int, npt.NDArray[np.float32], npt.NDArray[np.float32]]]:
    return [(t, unit(rng.standard_normal((int(rng.integers(1, 6)), dim)).astype(np.float32)),
             rng.uniform(10, 30, 5).astype(np.float32)) for t in rng.permutation(n_tracks * 3) % n_tracks]  # fmt: skip


def reference_means(kept: list[tuple[int, npt.NDArray[np.float32]]], max_tracks: int) -> tuple[list[int], npt.NDArray[np.float32], list[int]]:
    """Each of the most recent max_tracks tracks' faces summed newest first, as a dict of sums does."""
    sums: dict[int, npt.NDArray[np.float32]] = {}
    counts: dict[int, int] = {}
    for t, e in reversed(kept):
        if t not in sums:
            if len(sums) == max_tracks:
                continue
            sums[t], counts[t] = np.zeros_like(e), 0
        sums[t] += e
        counts[t] += 1
    units = np.stack(list(sums.values()))
    units /= np.maximum(np.linalg.norm(units, axis=1, keepdims=True), 1e-12)
    return list(sums), units, list(counts.values())


def test_ring_gives_the_means_of_the_last_faces_and_keeps_the_newest_tracks() -> None:
    rng = np.random.default_rng(3)
    buffer = FaceBuffer(50)
    kept: list[tuple[int, npt.NDArray[np.float32]]] = []
    for t, e, q in faces(rng, 40):
        buffer.add(t, e, q[: len(e)])
        kept.extend((t, row) for row in e)
        kept = kept[-50:]
        assert len(buffer) == len(kept)
        for cap in (3, 1500):
            ids, units, counts = reference_means(kept, cap)
            means = buffer.track_means(cap)
            assert means.track_ids == ids
            assert np.array_equal(means.units, units)  # the same float32 sums, face by face
            assert means.faces.tolist() == counts
    assert buffer.new_faces == sum(len(e) for _, e, _ in faces(np.random.default_rng(3), 40))


def test_forget_and_of_tracks_keep_the_order_of_the_rest() -> None:
    rng = np.random.default_rng(4)
    buffer = FaceBuffer(30)
    kept: list[tuple[int, npt.NDArray[np.float32], float]] = []
    for t, e, q in faces(rng, 12):
        buffer.add(t, e, q[: len(e)])
        kept.extend((t, row, float(qq)) for row, qq in zip(e, q))
        kept = kept[-30:]
    assert buffer.track_ids() == {t for t, _, _ in kept}
    buffer.forget({1, 5})
    kept = [f for f in kept if f[0] not in {1, 5}]
    assert len(buffer) == len(kept)
    vectors, qualities, tracks = buffer.of_tracks({2, 3, 7})
    picked = [f for f in kept if f[0] in {2, 3, 7}]
    assert tracks == [t for t, _, _ in picked]
    assert np.array_equal(vectors, np.stack([e for _, e, _ in picked]))
    assert np.allclose(qualities, [q for _, _, q in picked])
    extra = unit(rng.standard_normal((4, 16)).astype(np.float32))
    buffer.add(99, extra, np.ones(4, np.float32))  # after a forget the ring goes on from the rest
    assert buffer.of_tracks({99})[2] == [99] * 4
    assert buffer.track_means(1).track_ids == [99]


def test_memory_is_taken_once_at_the_first_face() -> None:
    rng = np.random.default_rng(5)
    size, dim = 2000, 512
    buffer = FaceBuffer(size)
    batches = [unit(rng.standard_normal((4, dim)).astype(np.float32)) for _ in range(size // 4 * 3)]
    quality = np.ones(4, np.float32)
    buffer.add(0, batches[0], quality)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for t, batch in enumerate(batches[1:], start=1):  # fills the ring, then overwrites it twice
            buffer.add(t, batch.copy(), quality)  # the buffer the only holder, as in a run
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(buffer) == size
    assert grown < 64 * 1024  # a face held as its own objects took ~2.3 KB: 4.6 MB for these


def test_distances_are_exactly_the_float64_product() -> None:
    units = unit(np.random.default_rng(6).standard_normal((300, 512)).astype(np.float32))
    expected = 1.0 - units.astype(np.float64) @ units.T.astype(np.float64)
    np.clip(expected, 0.0, None, out=expected)
    np.fill_diagonal(expected, 0.0)
    distance = cosine_distances(units)
    assert distance.dtype == np.float64 and distance.flags.c_contiguous and distance.flags.writeable
    assert np.array_equal(distance, expected)
