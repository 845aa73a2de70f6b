"""A node's stored embeddings follow its gallery row for row, though only the rows that changed are
written (memory.store.Store.save_galleries)."""

from __future__ import annotations

import numpy as np
import pytest
from support.postgres import STORES

from memory import MemoryConfig
from memory.gallery import Gallery
from memory.nodes import NodeTable
from memory.records import NodeKind, NodeStatus
from memory.store import Store

DIM = 8
CAPACITY = 4


def _faces(rng: np.random.Generator, track: int, n: int) -> Gallery:
    vecs = rng.standard_normal((n, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return Gallery.new(vecs, rng.uniform(10, 30, n).astype(np.float32), np.full(n, track, np.int64))


def _stored(store: Store, node_id: int) -> tuple[list[bytes], list[float], list[int]]:
    g = store.load_gallery(node_id, DIM)
    return [e.tobytes() for e in g.embeddings], g.qualities.tolist(), g.track_ids.tolist()


def _held(g: Gallery) -> tuple[list[bytes], list[float], list[int]]:
    return [e.tobytes() for e in g.embeddings.astype(np.float32)], g.qualities.astype(np.float32).tolist(), g.track_ids.tolist()


def _two_faces(cfg: MemoryConfig, seed: int) -> tuple[Store, NodeTable, int, int]:
    """A node table on a new store with two face nodes of three embeddings each: one to go, one kept."""
    rng = np.random.default_rng(seed)
    store = Store(cfg.db)
    nodes = NodeTable(store)
    gone, kept = (nodes.add(NodeKind.FACE, NodeStatus.PROVISIONAL, 0.0).id for _ in range(2))
    for n in (gone, kept):
        nodes.set_gallery(n, _faces(rng, n, 3))
    return store, nodes, gone, kept


@pytest.mark.parametrize("cfg", STORES, indirect=True)
def test_stored_galleries_follow_growth_trims_merges_and_splits(cfg: MemoryConfig) -> None:
    rng = np.random.default_rng(7)
    store = Store(cfg.db)
    nodes = NodeTable(store)
    a, b = (nodes.add(NodeKind.FACE, NodeStatus.PROVISIONAL, 0.0).id for _ in range(2))
    track = 0
    for step in range(40):
        node = (a, b)[step % 2]
        track += 1
        if step == 25:  # b merges into a: a keeps the best of both, b's rows stay as they were
            nodes.set_gallery(a, nodes.gallery(a).extended(nodes.gallery(b), CAPACITY))
            nodes.drop_gallery(b)
            b = nodes.add(NodeKind.FACE, NodeStatus.PROVISIONAL, 0.0).id
        elif step == 31:  # a split: the first track's embeddings move to a new node
            g = nodes.gallery(a)
            moved = g.track_ids == g.track_ids[0]
            c = nodes.add(NodeKind.FACE, NodeStatus.PROVISIONAL, 0.0).id
            nodes.set_gallery(a, g.subset(~moved))
            nodes.set_gallery(c, g.subset(moved))
        else:  # one to three new faces; a full gallery drops the ones worth least, old or new
            nodes.set_gallery(node, nodes.gallery(node).extended(_faces(rng, track, int(rng.integers(1, 4))), CAPACITY))
        nodes.write()
        store.commit()
        for n in (a, b):
            assert _stored(store, n) == _held(nodes.gallery(n)), f"step {step}, node {n}"
    assert _stored(store, c) == _held(nodes.gallery(c))
    store.close()
    reopened = Store(cfg.db)  # a restart reads the galleries back in the same order
    fresh = NodeTable(reopened)
    for n in (a, b, c):
        assert _held(fresh.gallery(n)) == _held(nodes.gallery(n))
    reopened.close()


def test_an_expired_nodes_gallery_leaves_the_cache_once_stored(cfg: MemoryConfig) -> None:
    """Strangers who pass by expire by the thousand over days: their galleries are stored, then no
    longer held in memory; one is read back whole if ever asked for. A live node's stays held."""
    store, nodes, gone, kept = _two_faces(cfg, seed=3)
    held = _held(nodes.gallery(gone))
    nodes.retire(gone)
    nodes.write()
    store.commit()
    nodes.trim_cache()
    assert gone not in nodes._galleries and kept in nodes._galleries
    assert _held(nodes.gallery(gone)) == held == _stored(store, gone)


def test_a_removed_node_leaves_the_index_and_the_cache(cfg: MemoryConfig) -> None:
    """Retention deletes a node's rows; matching must never find it again, whatever the caller did first."""
    store, nodes, gone, kept = _two_faces(cfg, seed=5)
    query = nodes.unit_mean(gone)
    index = nodes.index(NodeKind.FACE)
    assert index is not None and index.search(query)[0] == gone
    nodes.remove([gone])
    assert index.search(query)[0] == kept
    assert gone not in nodes._galleries and gone not in nodes.rows
    store.close()
