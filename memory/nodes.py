"""The face and voice nodes in memory: their rows, galleries and one matching index per kind.

Every change marks what it touched dirty; `write` puts the dirty rows into the store's open
transaction. Galleries are cached (least recently used go first) and read back when needed. A node
no longer active (expired, merged away, forgotten) is never matched again: its row here holds no
mean vector (the stored row keeps it), and retention may delete an expired one (`remove`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection

import numpy as np

from .errors import NodeNotFound
from .gallery import Gallery, Vectors
from .index import NodeIndex
from .records import Node, NodeKind, NodeStatus
from .rows import NodeRow
from .store import Store

log = logging.getLogger(__name__)

IDENTITY_KINDS = (NodeKind.FACE, NodeKind.VOICE)
ACTIVE = (NodeStatus.PROVISIONAL, NodeStatus.CONFIRMED)
NEXT_ID_KEY = "last_node_id"
GALLERY_CACHE = 20_000  # galleries kept in memory; others are read back when needed


class NodeTable:
    def __init__(self, store: Store) -> None:
        self._store = store
        self.rows: dict[int, NodeRow] = {}  # face and voice nodes of every status (merged ones resolve)
        self.provisional: set[int] = set()
        self._index: dict[NodeKind, NodeIndex] = {}
        self._galleries: dict[int, Gallery] = {}  # LRU cache, most recent last
        self._dirty_nodes: set[int] = set()
        self._dirty_galleries: set[int] = set()
        self._retired: set[int] = set()  # no longer active: galleries and means leave memory at the next trim
        self._stored_keys: dict[int, list[int]] = {}  # the keys of a node's stored embeddings, where known
        # the mean each stored row holds (means are never changed in place); None also where a retired
        # row's stored mean was let go here: such a row is only ever updated, its mean left as it is
        self._stored_mean: dict[int, Vectors | None] = {}
        # deleted memories (memory.forget) leave gaps: an id is never given twice
        self._next_id = max(store.max_node_id(), int(store.meta(NEXT_ID_KEY, "0") or 0)) + 1
        self._load()

    def _load(self) -> None:
        means: dict[NodeKind, tuple[list[int], list[Vectors]]] = {}
        for row in self._store.identity_nodes():
            self.rows[row.id] = row
            if row.status not in ACTIVE:
                row.mean = None  # never matched again (see retire)
            self._stored_mean[row.id] = row.mean
            if row.status == NodeStatus.PROVISIONAL:
                self.provisional.add(row.id)
            if row.status in ACTIVE and row.mean is not None:
                ids, vecs = means.setdefault(row.kind, ([], []))
                ids.append(row.id)
                vecs.append(row.mean)
        for kind, (ids, vecs) in means.items():
            self._index_of(kind, len(vecs[0])).add_many(ids, np.stack(vecs))

    def __getitem__(self, node_id: int) -> NodeRow:
        return self.rows[node_id]

    def new_id(self) -> int:
        """A fresh node id (identity and text nodes share one sequence)."""
        self._next_id += 1
        return self._next_id - 1

    def keep_next_id(self) -> None:
        """Stores the id sequence, for when the node with the highest id was deleted (memory.forget)."""
        self._store.set_meta(NEXT_ID_KEY, str(self._next_id - 1))

    def add(self, kind: NodeKind, status: NodeStatus, now: float) -> NodeRow:
        node_id = self.new_id()
        row = self.rows[node_id] = NodeRow(node_id, kind, status, None, None, now, None, None, 0, 0, 0, None, None, set(), None)
        self._galleries[node_id] = Gallery.empty(0)
        self._stored_keys[node_id] = []  # ids are never reused: no rows wait under this one
        if status == NodeStatus.PROVISIONAL:
            self.provisional.add(node_id)
        self.touch(node_id)
        return row

    def touch(self, node_id: int) -> None:
        self._dirty_nodes.add(node_id)

    # --- resolving ids --------------------------------------------------------------------------

    def resolve(self, node_id: int) -> int:
        """The node an id names now: merged nodes lead to their survivor; text nodes are read from the store."""
        node = self.rows.get(node_id)
        if node is None:
            if self._store.node_row(node_id) is None:
                raise NodeNotFound(f"no node {node_id}")
            return node_id
        while node.merged_into is not None:
            node = self.rows[node.merged_into]
        return node.id

    def live(self, node_id: int) -> int | None:
        """The node's survivor, or None if it expired."""
        node = self.rows[self.resolve(node_id)]
        return node.id if node.status in ACTIVE else None

    def kind(self, node_id: int) -> NodeKind | None:
        node = self.rows.get(node_id)
        return None if node is None else node.kind

    def mean(self, node_id: int) -> Vectors | None:
        return self.rows[node_id].mean

    def unit_mean(self, node_id: int) -> Vectors | None:
        mean = self.rows[node_id].mean
        return None if mean is None else (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)

    # --- galleries and the index ----------------------------------------------------------------

    def index(self, kind: NodeKind) -> NodeIndex | None:
        return self._index.get(kind)

    def _index_of(self, kind: NodeKind, dim: int) -> NodeIndex:
        index = self._index.get(kind)
        if index is None:
            index = self._index[kind] = NodeIndex(dim)
        return index

    def gallery(self, node_id: int) -> Gallery:
        gallery = self._galleries.pop(node_id, None)
        if gallery is None:
            mean = self.rows[node_id].mean
            gallery = self._store.load_gallery(node_id, 0 if mean is None else len(mean))
            self._stored_keys[node_id] = gallery.keys.tolist()
        self._galleries[node_id] = gallery  # most recently used last
        return gallery

    def set_gallery(self, node_id: int, gallery: Gallery) -> None:
        node = self.rows[node_id]
        self._galleries[node_id] = gallery
        node.mean = gallery.mean()
        node.n_embeddings = len(gallery)
        if node.mean is None:
            self.unindex(node_id)
        else:
            self._index_of(node.kind, len(node.mean)).upsert(node_id, node.mean)
        self._dirty_galleries.add(node_id)
        self._dirty_nodes.add(node_id)

    def drop_gallery(self, node_id: int) -> None:
        """A merged-away node's gallery went to its survivor; its stored rows stay as they were, and
        its mean leaves memory at the next trim."""
        self.unindex(node_id)
        self._galleries.pop(node_id, None)
        self._stored_keys.pop(node_id, None)
        self._dirty_galleries.discard(node_id)
        self._retired.add(node_id)

    def retire(self, node_id: int) -> None:
        """An expired node is never matched again: out of the index now, and its gallery and mean out
        of memory once they are stored (strangers passing a camera for days would otherwise fill memory
        with vectors nothing reads; the gallery is read back from the store if ever needed)."""
        self.unindex(node_id)
        self._retired.add(node_id)

    def remove(self, node_ids: Collection[int]) -> None:
        """Nodes whose rows were deleted (memory.retention) leave memory; their ids are never given again
        (keep_next_id). Their index entries and galleries go with them, whatever the caller did first."""
        for node_id in node_ids:
            self.drop_gallery(node_id)
            del self.rows[node_id]
            self._stored_mean.pop(node_id, None)
            self.provisional.discard(node_id)
            self._dirty_nodes.discard(node_id)
            self._retired.discard(node_id)

    def unindex(self, node_id: int) -> None:
        index = self._index.get(self.rows[node_id].kind)
        if index is not None:
            index.remove(node_id)

    # --- writing --------------------------------------------------------------------------------

    def write(self) -> None:
        stored, changed = [], []
        for n in self._dirty_nodes:
            row = self.rows[n]
            (stored if n in self._stored_mean and self._stored_mean[n] is row.mean else changed).append(row)
        self._store.update_nodes(stored)
        self._store.save_nodes(changed)
        self._stored_mean.update((r.id, r.mean) for r in changed)
        self._store.save_galleries([(n, self._stored_keys.get(n), self._galleries[n]) for n in self._dirty_galleries])
        self._stored_keys.update((n, self._galleries[n].keys.tolist()) for n in self._dirty_galleries)
        self._dirty_nodes.clear()
        self._dirty_galleries.clear()

    def trim_cache(self) -> None:
        """Forgets the retired nodes' galleries and means, then the least recently used galleries; only
        right after a write, when all are clean (a retired row is then stored with its mean)."""
        for node_id in self._retired:
            self._uncache(node_id)
            self.rows[node_id].mean = self._stored_mean[node_id] = None
        self._retired.clear()
        while len(self._galleries) > GALLERY_CACHE:
            self._uncache(next(iter(self._galleries)))

    def _uncache(self, node_id: int) -> None:
        self._galleries.pop(node_id, None)
        self._stored_keys.pop(node_id, None)


def public(row: NodeRow) -> Node:
    return Node(row.id, row.kind, row.status, row.label, row.created_wall, row.first_seen_wall, row.last_seen_wall,
                row.n_observations, row.n_embeddings, sorted(row.streams), row.merged_into)  # fmt: skip
