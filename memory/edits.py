"""Changes to identities as wholes: label, merge and split, by hand or by re-clustering.

A merge moves everything of one node (embeddings, tracks, crops, edges, presence) into the
survivor; a split moves some tracks (with their embeddings, crops, observations or speech turns)
into a new node. Splits made by hand are remembered, and no merge ever joins the two parts again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np

from .characters import Characters
from .crops import CropShelf
from .errors import MemoryGraphError
from .events import EventLog
from .gallery import Gallery
from .identity import Identities
from .nodes import ACTIVE, NodeTable
from .presence import PresenceBoard
from .recluster import cluster, pairs, plan_merges, plan_splits
from .records import NodeKind, NodeStatus
from .store import Store
from .tracks import TrackTable

log = logging.getLogger(__name__)


class Edits:
    def __init__(
        self,
        store: Store,
        nodes: NodeTable,
        tracks: TrackTable,
        identities: Identities,
        events: EventLog,
        presence: PresenceBoard,
        crops: CropShelf,
        characters: Characters,
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._nodes = nodes
        self._tracks = tracks
        self._identities = identities
        self._events = events
        self._presence = presence
        self._crops = crops
        self._characters = characters  # ties follow merges and are re-decided after splits
        self._clock = clock
        self.cannot_link = pairs((nodes.resolve(a), nodes.resolve(b)) for a, b in store.cannot_links())

    # --- by hand --------------------------------------------------------------------------------

    def label(self, node_id: int, name: str) -> None:
        node = self._nodes.rows.get(self._nodes.resolve(node_id))
        if node is None:
            raise MemoryGraphError(f"only face and voice nodes take labels, not node {node_id}")
        previous, node.label = node.label, name
        self._nodes.touch(node.id)
        self._events.labelled(node, previous)

    def merge(self, keep: int, other: int) -> int:
        keep, other = self._nodes.resolve(keep), self._nodes.resolve(other)
        for n in (keep, other):
            if n not in self._nodes.rows or self._nodes[n].status not in ACTIVE:
                raise MemoryGraphError(f"node {n} is not an active face or voice node")
        kept, gone = self._nodes[keep].kind, self._nodes[other].kind
        if kept != gone:
            raise MemoryGraphError(f"cannot merge a {gone.value} node into a {kept.value} node")
        if keep != other:
            self.merge_into(keep, other, manual=True)
        return keep

    def split(self, node_id: int, track_ids: Sequence[int]) -> int:
        """Moves tracks (with their embeddings, crops and observations) to a new node; re-clustering
        will not merge the two back."""
        node_id = self._nodes.resolve(node_id)
        if not track_ids:
            raise MemoryGraphError("split needs at least one track")
        strangers = [t for t in track_ids if self._tracks.node_of(t) != node_id]
        if strangers:
            raise MemoryGraphError(f"tracks {strangers} are not tracks of node {node_id}")
        new_id = self._split(node_id, list(track_ids), manual=True)
        self.cannot_link.add((node_id, new_id))
        self._store.add_cannot_link(node_id, new_id)
        return new_id

    # --- the moves ------------------------------------------------------------------------------

    def merge_into(self, keep: int, other: int, manual: bool) -> None:
        now = self._clock()
        k, o = self._nodes[keep], self._nodes[other]
        capacity = self._identities.policies[k.kind].capacity
        self._nodes.set_gallery(keep, self._nodes.gallery(keep).extended(self._nodes.gallery(other), capacity))
        self._nodes.drop_gallery(other)
        if NodeStatus.CONFIRMED in (k.status, o.status):
            k.status = NodeStatus.CONFIRMED
        k.label = k.label or o.label
        k.n_observations += o.n_observations
        k.good_faces += o.good_faces
        k.first_good_t = _min(k.first_good_t, o.first_good_t)
        k.last_good_t = _max(k.last_good_t, o.last_good_t)
        k.first_seen_wall = _min(k.first_seen_wall, o.first_seen_wall)
        k.last_seen_wall = _max(k.last_seen_wall, o.last_seen_wall)
        k.streams |= o.streams
        o.status, o.merged_into = NodeStatus.MERGED, keep
        self._identities.merged(keep, other)
        self._nodes.touch(keep)
        self._nodes.touch(other)
        self._tracks.move(other, None, keep)
        self._crops.move(other, keep)
        self._store.move_edges(other, keep)
        self.cannot_link = pairs((keep if a == other else a, keep if b == other else b) for a, b in self.cannot_link)
        self._events.merged(k, other, manual)
        for stream, presence in self._presence.drop(other):
            self._identities.announce(keep, stream, self._presence.put(stream, keep, presence))
        self._events.updated(keep, now)
        self._characters.merged(keep, other)

    def _split(self, node_id: int, track_ids: list[int], manual: bool) -> int:
        now = self._clock()
        node = self._nodes[node_id]
        moving = set(track_ids)
        self._identities.founder.pop(node_id, None)
        new_id = self._identities.create(node.kind, None, now, status=node.status)
        new = self._nodes[new_id]
        new.created_wall = node.created_wall  # a provisional part keeps its original deadline
        gallery = self._nodes.gallery(node_id)
        moved = np.isin(gallery.track_ids, list(moving))
        staying = set(self._tracks.of_node(node_id)) - moving
        self._nodes.set_gallery(node_id, gallery.subset(~moved) if (~moved).any() else self._buffered(staying, node.kind))
        self._nodes.set_gallery(new_id, gallery.subset(moved) if moved.any() else self._buffered(moving, node.kind))
        self._tracks.write()
        self._nodes.write()
        stats = self._store.track_stats(track_ids)
        new.n_observations = min(stats.n_observations, node.n_observations)
        node.n_observations -= new.n_observations
        new.good_faces = new.n_embeddings
        new.first_good_t, new.last_good_t = node.first_good_t, node.last_good_t
        new.first_seen_wall, new.last_seen_wall, new.streams = stats.first_wall, stats.last_wall, stats.streams
        self._tracks.move(node_id, track_ids, new_id)
        self._crops.move(node_id, new_id, moving)
        self._events.split(node, new_id, sorted(moving), manual)
        self._events.updated(node_id, now)
        self._characters.split()
        return new_id

    def _buffered(self, track_ids: set[int], kind: NodeKind) -> Gallery:
        """A gallery from the buffered embeddings of some tracks (for a split part that kept none)."""
        embeddings, qualities, tracks = self._identities.buffers[kind].of_tracks(track_ids)
        if not len(tracks):
            return Gallery.empty(0)
        return Gallery.new(embeddings, qualities, np.array(tracks, np.int64)).trimmed(self._identities.policies[kind].capacity)

    # --- re-clustering --------------------------------------------------------------------------

    def recluster(self, kind: NodeKind) -> None:
        """HDBSCAN over one kind's buffered tracks, then splits and merges (see memory.recluster)."""
        started = time.perf_counter()
        buffer = self._identities.buffers[kind]
        policy = self._identities.policies[kind]
        cfg, pairwise = policy.recluster, policy.pairwise_groups
        buffer.new_faces = 0
        tracks = buffer.track_means()
        labels = cluster(tracks.units, cfg, pairwise)
        for node_id, groups in plan_splits(tracks, labels, self._node_map(tracks.track_ids), cfg, pairwise):
            for group in groups:
                self._split(node_id, group, manual=False)
        node_of = self._node_map(tracks.track_ids)
        mergeable = partial(policy.mergeable, self._nodes)
        merges = plan_merges(tracks, labels, node_of, mergeable, self._priority, self.cannot_link)
        for survivor, *others in merges:
            for other in others:
                self.merge_into(survivor, other, manual=False)
        log.info("re-clustered %d %s tracks in %.3f s: %d merges", len(tracks.track_ids), kind.value,
                 time.perf_counter() - started, len(merges))  # fmt: skip

    def _node_map(self, track_ids: list[int]) -> dict[int, int]:
        return {t: n for t in track_ids if (n := self._tracks.node_of(t)) is not None}

    def _priority(self, node_id: int) -> tuple[float, ...]:
        """Which node survives a merge: a named one, then a confirmed one, then the oldest."""
        node = self._nodes[node_id]
        return (node.label is None, node.status != NodeStatus.CONFIRMED, node_id)


def _min(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)
