"""Memory: the one object the streamer talks to. Used from one thread at a time.

State lives in memory for speed (nodes, their mean vectors, recent tracks, presence, open clips)
and is written to the store in batches: every change marks what it touched dirty, and `flush`
writes the dirty rows and commits once. Events go into the same transaction as the state they
describe, so a crash loses both or neither, and the outbox only ever sees committed events.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np

from .config import MemoryConfig
from .crops import CropShelf
from .errors import MemoryGraphError, NodeNotFound
from .gallery import Gallery, Vectors
from .graph import Clips, OpenClip, connected_groups, episodic_text
from .index import NodeIndex
from .presence import Presence, PresenceBoard
from .recluster import FaceBuffer, cluster, pairs, plan_merges, plan_splits
from .records import FaceObservation, MemoryEvent, Node, NodeKind, NodeStatus, TrackEvidence
from .store import NodeRow, Store, TrackRow

log = logging.getLogger(__name__)

IDENTITY_KINDS = (NodeKind.FACE, NodeKind.VOICE)
ACTIVE = (NodeStatus.PROVISIONAL, NodeStatus.CONFIRMED)
UPDATE_EVENT_MIN_SECONDS = 5.0  # node.updated at most this often per node
PRUNE_EVERY_SECONDS = 3600.0  # retention runs this rarely
TRACK_IDLE_SECONDS = 3600.0  # tracks idle this long leave memory (they stay in the store)
TRACK_ID_BLOCK = 1000  # track ids are reserved in blocks, one commit per block
MAX_PENDING_OBSERVATIONS = 5000  # flush early rather than hold more rows
GALLERY_CACHE = 20_000  # galleries kept in memory; others are read back when needed


@dataclass
class _Track:
    row: TrackRow
    touched: float  # clock time of the last evidence or observation
    n_observations: int = 0  # recorded before the track had a node, counted into the node it gets
    query_sum: Vectors | None = None  # sum of every embedding, while unassigned: matching uses their mean
    query_count: int = 0


class Memory:
    def __init__(self, cfg: MemoryConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self._clock = clock
        self._store = Store(cfg.db)
        now = clock()
        self._nodes: dict[int, NodeRow] = {}  # face and voice nodes of every status (merged ones resolve)
        self._index: dict[NodeKind, NodeIndex] = {}
        self._galleries: dict[int, Gallery] = {}  # LRU cache, most recent last
        self._provisional: set[int] = set()
        # Stream-time span over which each provisional node was observed, for confirmation.
        self._provisional_span: dict[int, tuple[float, float]] = {}
        # Nodes that only the track that created them has reached: node -> that track.
        self._founder: dict[int, int] = {}
        self._unflushed_events = 0
        self._dirty_nodes: set[int] = set()
        self._dirty_galleries: set[int] = set()
        self._tracks: dict[int, _Track] = {}
        self._dirty_tracks: set[int] = set()
        self._pending_observations: list[tuple[Any, ...]] = []
        self._crops = CropShelf(self._store, cfg.crops_per_node)
        self._presence = PresenceBoard(cfg.absent_after_seconds)
        self._clips = Clips(cfg.interval_seconds)
        self._buffer = FaceBuffer(cfg.recluster.buffer_size)
        self._last_update_event: dict[int, float] = {}
        self._update_due: set[int] = set()
        self._next_node_id = self._store.max_node_id() + 1
        self._next_track_id = self._track_id_limit = int(self._store.meta("next_track_id", "1") or 1)
        self._last_flush = self._last_recluster = self._last_prune = now
        self._load_nodes()
        self._cannot_link = pairs((self.resolve(a), self.resolve(b)) for a, b in self._store.cannot_links())

    def _load_nodes(self) -> None:
        means: dict[NodeKind, tuple[list[int], list[Vectors]]] = {}
        for row in self._store.identity_nodes():
            self._nodes[row.id] = row
            if row.status == NodeStatus.PROVISIONAL:
                self._provisional.add(row.id)
            if row.status in ACTIVE and row.mean is not None:
                ids, vecs = means.setdefault(row.kind, ([], []))
                ids.append(row.id)
                vecs.append(row.mean)
        for kind, (ids, vecs) in means.items():
            self._index_of(kind, len(vecs[0])).add_many(ids, np.stack(vecs))
        log.info("opened %s: %d identity nodes", self.cfg.db, len(self._nodes))

    # --- context manager ------------------------------------------------------------------------

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._write_pending()
        self._store.close()

    def flush(self) -> None:
        self._write_pending()
        self._store.commit()
        self._unflushed_events = 0
        self._last_flush = self._clock()
        while len(self._galleries) > GALLERY_CACHE:
            del self._galleries[next(iter(self._galleries))]  # everything is clean right after a write

    def flush_events(self) -> bool:
        """Commit now if events wait, so the feed can publish them at once (events_after only sees
        committed ones); True if it did. Cheap when nothing happened, as on most frames."""
        if not self._unflushed_events:
            return False
        self.flush()
        return True

    def _write_pending(self) -> None:
        if self._pending_observations:
            self._store.add_observations(self._pending_observations)
            self._pending_observations = []
        self._store.save_tracks(self._tracks[t].row for t in self._dirty_tracks if t in self._tracks)
        self._store.save_nodes(self._nodes[n] for n in self._dirty_nodes)
        for n in self._dirty_galleries:
            self._store.save_gallery(n, self._galleries[n])
        self._dirty_tracks.clear()
        self._dirty_nodes.clear()
        self._dirty_galleries.clear()

    # --- tracks ---------------------------------------------------------------------------------

    def new_track_id(self) -> int:
        if self._next_track_id >= self._track_id_limit:
            self._track_id_limit = self._next_track_id + TRACK_ID_BLOCK
            self._store.set_meta("next_track_id", str(self._track_id_limit))
            self.flush()  # the reservation must be durable before any id of the block is handed out
        self._next_track_id += 1
        return self._next_track_id - 1

    def node_of_track(self, track_id: int) -> int | None:
        track = self._tracks.get(track_id)
        if track is not None:
            return self._live_node(track)
        row = self._store.track(track_id)
        return None if row is None or row.node_id is None else self._live(row.node_id)

    def _track(self, track_id: int, stream: str, t: float, wall: float, now: float) -> _Track:
        track = self._tracks.get(track_id)
        if track is None:
            row = self._store.track(track_id) or TrackRow(track_id, stream, None, t, t, wall, wall)
            track = self._tracks[track_id] = _Track(row, now)
        row = track.row
        row.first_t, row.last_t = min(row.first_t, t), max(row.last_t, t)
        row.first_wall, row.last_wall = min(row.first_wall, wall), max(row.last_wall, wall)
        track.touched = now
        self._dirty_tracks.add(track_id)
        return track

    def _live(self, node_id: int) -> int | None:
        """The node's survivor, or None if it expired."""
        node = self._nodes[self.resolve(node_id)]
        return node.id if node.status in ACTIVE else None

    def _live_node(self, track: _Track) -> int | None:
        if track.row.node_id is None:
            return None
        node = self._live(track.row.node_id)
        if node != track.row.node_id:
            track.row.node_id = node
            self._dirty_tracks.add(track.row.id)
        return node

    # --- the hot path ---------------------------------------------------------------------------

    def record_faces(self, obs: Sequence[FaceObservation]) -> None:
        now = self._clock()
        for o in obs:
            track = self._track(o.track_id, o.stream, o.t, o.wall_time, now)
            self._pending_observations.append(
                (o.track_id, o.stream, o.t, o.wall_time, *o.bbox, o.det_score, o.quality, o.face_type)
            )
            closed = self._clips.observe(o.stream, o.t, o.wall_time, o.track_id)
            if closed is not None:
                self._close_clip(closed)
            self._presence.advance(o.stream, o.t)
            node_id = self._live_node(track)
            if node_id is None:
                track.n_observations += 1
            else:
                self._nodes[node_id].n_observations += 1
                self._seen(node_id, o.stream, o.t, o.wall_time, now)
        if len(self._pending_observations) >= MAX_PENDING_OBSERVATIONS:
            self.flush()

    def identify_track(self, ev: TrackEvidence, kind: NodeKind = NodeKind.FACE) -> int | None:
        """Matches (and, with good faces, creates or extends) the node of a track; voices pass kind=VOICE."""
        if kind not in IDENTITY_KINDS:
            raise MemoryGraphError(f"identify_track takes face or voice evidence, not {kind.value}")
        now = self._clock()
        track = self._track(ev.track_id, ev.stream, ev.t, ev.wall_time, now)
        if len(ev.embeddings) == 0:
            return self._live_node(track)
        good = np.asarray(ev.good, bool)
        node_id = self._live_node(track)
        if node_id is None:
            node_id = self._match(track, ev, kind)
            if node_id is None:
                if not good.any():
                    return None
                node_id = self._create(kind, ev.stream, now)
                self._founder[node_id] = ev.track_id
            elif self._founder.get(node_id) != ev.track_id:
                self._founder.pop(node_id, None)
            self._assign(track, node_id)
        if good.any():
            faces = Gallery(ev.embeddings[good], ev.qualities[good], np.full(int(good.sum()), ev.track_id, np.int64))
            self._extend(node_id, faces, ev.t, ev.t, now)
            if kind == NodeKind.FACE:
                self._buffer.add(ev.track_id, faces.embeddings, faces.qualities)
            if ev.crop_jpeg is not None:
                self._crops.offer(node_id, ev.track_id, ev.crop_quality, ev.crop_jpeg)
            if self._founder.get(node_id) == ev.track_id:
                node_id = self._catch_up(node_id)
        self._seen(node_id, ev.stream, ev.t, ev.wall_time, now)
        return node_id

    def _catch_up(self, node_id: int) -> int:
        """A node made by one track, whose faces now match another node, joins it (node.merged).

        A returning person's track can start on a blurred or turned face that matches nobody; its
        later, better faces show who it is, long before the next re-clustering would. The test is
        the one that track would have passed had it shown these faces first."""
        node = self._nodes[node_id]
        index = self._index.get(node.kind)
        if node.mean is None or index is None:
            return node_id
        hit = index.search(node.mean, exclude=node_id)
        threshold = self.cfg.img_matching_threshold if node.kind == NodeKind.FACE else self.cfg.audio_matching_threshold
        if hit is None or hit[1] < threshold or pairs([(hit[0], node_id)]) <= self._cannot_link:
            return node_id
        self._merge(hit[0], node_id, manual=False)
        return hit[0]

    def _match(self, track: _Track, ev: TrackEvidence, kind: NodeKind) -> int | None:
        emb = np.asarray(ev.embeddings, np.float32)
        track.query_sum = emb.sum(axis=0) if track.query_sum is None else track.query_sum + emb.sum(axis=0)
        track.query_count += len(emb)
        index = self._index.get(kind)
        hit = None if index is None else index.search(track.query_sum / track.query_count)
        threshold = self.cfg.img_matching_threshold if kind == NodeKind.FACE else self.cfg.audio_matching_threshold
        return hit[0] if hit is not None and hit[1] >= threshold else None

    def _assign(self, track: _Track, node_id: int) -> None:
        track.row.node_id = node_id
        track.query_sum, track.query_count = None, 0
        self._nodes[node_id].n_observations += track.n_observations
        track.n_observations = 0
        self._dirty_tracks.add(track.row.id)

    def _seen(self, node_id: int, stream: str, t: float, wall: float, now: float) -> None:
        node = self._nodes[node_id]
        node.first_seen_wall = wall if node.first_seen_wall is None else min(node.first_seen_wall, wall)
        node.last_seen_wall = wall if node.last_seen_wall is None else max(node.last_seen_wall, wall)
        node.streams.add(stream)
        self._dirty_nodes.add(node_id)
        if node.status == NodeStatus.PROVISIONAL:
            first, last = self._provisional_span.get(node_id, (t, t))
            self._provisional_span[node_id] = (min(first, t), max(last, t))
            self._maybe_confirm(node_id)
        self._announce(node_id, stream, self._presence.seen(stream, node_id, t, now))

    def _announce(self, node_id: int, stream: str, presence: Presence) -> None:
        """person.appeared, once per presence, and only for a confirmed node."""
        if presence.announced or self._nodes[node_id].status != NodeStatus.CONFIRMED:
            return
        presence.announced = True
        self._emit("person.appeared", stream, {"node": node_id, "kind": self._nodes[node_id].kind.value,
                                               "label": self._nodes[node_id].label, "t": presence.first_t})  # fmt: skip

    # --- node life ------------------------------------------------------------------------------

    def _create(self, kind: NodeKind, stream: str | None, now: float, status: NodeStatus = NodeStatus.PROVISIONAL) -> int:
        node_id = self._next_node_id
        self._next_node_id += 1
        self._nodes[node_id] = NodeRow(node_id, kind, status, None, None, now, None, None, 0, 0, 0, None, None, set(), None)
        self._galleries[node_id] = Gallery.empty(0)
        if status == NodeStatus.PROVISIONAL:
            self._provisional.add(node_id)
        self._dirty_nodes.add(node_id)
        self._last_update_event[node_id] = now  # node.created says it all; updates are throttled from here
        self._emit("node.created", stream, {"node": node_id, "kind": kind.value, "status": status.value})
        return node_id

    def _extend(self, node_id: int, faces: Gallery, first_t: float, last_t: float, now: float) -> None:
        node = self._nodes[node_id]
        self._set_gallery(node_id, self._gallery(node_id).extended(faces, self._capacity(node.kind)))
        node.good_faces += len(faces)
        node.first_good_t = first_t if node.first_good_t is None else min(node.first_good_t, first_t)
        node.last_good_t = last_t if node.last_good_t is None else max(node.last_good_t, last_t)
        self._maybe_confirm(node_id)
        self._updated(node_id, now)

    def _maybe_confirm(self, node_id: int) -> None:
        """Seen enough: confirm_min_faces observations (embedded or not: the streamer embeds a
        steady face only now and then) over confirm_min_seconds of stream time, one of them good."""
        node = self._nodes[node_id]
        if node.status != NodeStatus.PROVISIONAL or node.good_faces < 1 or node.n_observations < self.cfg.confirm_min_faces:
            return
        first, last = self._provisional_span.get(node_id, (0.0, 0.0))
        if last - first >= self.cfg.confirm_min_seconds:
            self._confirm(node_id)

    def _confirm(self, node_id: int) -> None:
        node = self._nodes[node_id]
        node.status = NodeStatus.CONFIRMED
        self._provisional.discard(node_id)
        self._provisional_span.pop(node_id, None)
        self._dirty_nodes.add(node_id)
        self._emit("node.confirmed", None, {"node": node_id, "kind": node.kind.value})
        for stream, presence in self._presence.of_node(node_id):
            self._announce(node_id, stream, presence)

    def _capacity(self, kind: NodeKind) -> int:
        return self.cfg.max_img_embeddings if kind == NodeKind.FACE else self.cfg.max_audio_embeddings

    def _index_of(self, kind: NodeKind, dim: int) -> NodeIndex:
        index = self._index.get(kind)
        if index is None:
            index = self._index[kind] = NodeIndex(dim)
        return index

    def _gallery(self, node_id: int) -> Gallery:
        gallery = self._galleries.pop(node_id, None)
        if gallery is None:
            mean = self._nodes[node_id].mean
            gallery = self._store.load_gallery(node_id, 0 if mean is None else len(mean))
        self._galleries[node_id] = gallery  # most recently used last
        return gallery

    def _set_gallery(self, node_id: int, gallery: Gallery) -> None:
        node = self._nodes[node_id]
        self._galleries[node_id] = gallery
        node.mean = gallery.mean()
        node.n_embeddings = len(gallery)
        if node.mean is None:
            self._unindex(node_id)
        else:
            self._index_of(node.kind, len(node.mean)).upsert(node_id, node.mean)
        self._dirty_galleries.add(node_id)
        self._dirty_nodes.add(node_id)

    def _unindex(self, node_id: int) -> None:
        index = self._index.get(self._nodes[node_id].kind)
        if index is not None:
            index.remove(node_id)

    def _updated(self, node_id: int, now: float) -> None:
        """node.updated, throttled: at most one per UPDATE_EVENT_MIN_SECONDS, the last change always told."""
        self._dirty_nodes.add(node_id)
        if now - self._last_update_event.get(node_id, -np.inf) >= UPDATE_EVENT_MIN_SECONDS:
            self._emit_update(node_id, now)
        else:
            self._update_due.add(node_id)

    def _emit_update(self, node_id: int, now: float) -> None:
        node = self._nodes[node_id]
        self._update_due.discard(node_id)
        self._last_update_event[node_id] = now
        if node.status in ACTIVE:
            self._emit("node.updated", None, {"node": node_id, "kind": node.kind.value, "status": node.status.value,
                                              "label": node.label, "n_embeddings": node.n_embeddings,
                                              "n_observations": node.n_observations})  # fmt: skip

    # --- periodic work --------------------------------------------------------------------------

    def tick(self) -> None:
        now = self._clock()
        for node_id in [n for n in self._provisional if now - self._nodes[n].created_wall >= self.cfg.provisional_ttl_seconds]:
            self._expire(node_id)
        rc = self.cfg.recluster
        if self._buffer.new_faces and (self._buffer.new_faces >= rc.every_faces or now - self._last_recluster >= rc.every_seconds):
            self.recluster()
        for stream, node_id, presence in self._presence.gone(now):
            self._left(stream, node_id, presence)
        for node_id in [n for n in self._update_due if now - self._last_update_event[n] >= UPDATE_EVENT_MIN_SECONDS]:
            self._emit_update(node_id, now)
        if now - self._last_prune >= PRUNE_EVERY_SECONDS:
            self.prune()
        if now - self._last_flush >= self.cfg.flush_every_seconds:
            self.flush()

    def _expire(self, node_id: int) -> None:
        node = self._nodes[node_id]
        node.status = NodeStatus.EXPIRED
        self._provisional.discard(node_id)
        self._provisional_span.pop(node_id, None)
        self._unindex(node_id)
        self._presence.drop(node_id)  # never announced: it was provisional
        self._move_tracks(node_id, None, None)
        self._dirty_nodes.add(node_id)
        self._emit("node.expired", None, {"node": node_id, "kind": node.kind.value})

    def _left(self, stream: str, node_id: int, presence: Presence) -> None:
        if presence.announced:
            self._emit("person.left", stream, {"node": node_id, "kind": self._nodes[node_id].kind.value, "t": presence.last_t})

    def end_stream(self, stream: str, still: bool = False) -> None:
        """The stream ended or disconnected. A still photo is one deliberate look at each face in it,
        not a passer-by: its provisional nodes with a good face are confirmed (still=True)."""
        if still:
            for node_id in sorted(self._provisional):
                node = self._nodes[node_id]
                if stream in node.streams and node.good_faces > 0:
                    self._confirm(node_id)
        clip = self._clips.close(stream)
        if clip is not None:
            self._close_clip(clip)
        for node_id, presence in self._presence.end_stream(stream):
            self._left(stream, node_id, presence)

    def prune(self) -> int:
        """Retention: drops observations older than retention_days; nodes and crops stay."""
        now = self._clock()
        self._last_prune = now
        self._write_pending()
        removed = self._store.prune_observations(now - self.cfg.retention_days * 86400.0)
        buffered = self._buffer.track_ids()
        for track_id in [t for t, tr in self._tracks.items() if now - tr.touched > TRACK_IDLE_SECONDS and t not in buffered]:
            del self._tracks[track_id]
        log.info("retention pruned %d observations", removed)
        return removed

    def _close_clip(self, clip: OpenClip) -> None:
        nodes = sorted({
            n for t in clip.track_ids
            if (n := self.node_of_track(t)) is not None and self._nodes[n].status == NodeStatus.CONFIRMED
        })  # fmt: skip
        clip_id = self._store.add_clip(clip.stream, clip.index, clip.first_t, clip.last_t, clip.first_wall, clip.last_wall)
        text, memory_id = None, None
        if nodes:
            text = episodic_text([self._tag(n) for n in nodes], clip.stream, clip.first_wall, clip.last_wall)
            memory_id = self._next_node_id
            self._next_node_id += 1
            row = NodeRow(memory_id, NodeKind.EPISODIC, NodeStatus.CONFIRMED, None, None, self._clock(),
                          clip.first_wall, clip.last_wall, 0, 0, 0, None, None, {clip.stream}, None)  # fmt: skip
            self._store.add_text_node(row, clip_id, text)
            self._store.add_edges((memory_id, n, 1.0) for n in nodes)
        self._emit("clip.closed", clip.stream, {"clip": clip.index, "start": clip.first_wall, "end": clip.last_wall,
                                                "text": text, "nodes": nodes, "memory": memory_id})  # fmt: skip

    def _tag(self, node_id: int) -> str:
        return f"<{self._nodes[node_id].kind.value}_{node_id}>"

    # --- re-clustering --------------------------------------------------------------------------

    def recluster(self) -> None:
        """HDBSCAN over the buffered faces' tracks, then splits and merges (see memory.recluster)."""
        started = time.perf_counter()
        self._last_recluster = self._clock()
        self._buffer.new_faces = 0
        tracks = self._buffer.track_means()
        labels = cluster(tracks.units, self.cfg.recluster)
        for node_id, groups in plan_splits(tracks, labels, self._node_map(tracks.track_ids), self.cfg.recluster):
            for group in groups:
                self._split(node_id, group, manual=False)
        node_of = self._node_map(tracks.track_ids)
        merges = plan_merges(tracks, labels, node_of, self._unit_mean, self._priority, self._cannot_link, self.cfg.recluster)
        for survivor, *others in merges:
            for other in others:
                self._merge(survivor, other, manual=False)
        log.info("re-clustered %d tracks in %.3f s: %d merges", len(tracks.track_ids), time.perf_counter() - started, len(merges))

    def _node_map(self, track_ids: list[int]) -> dict[int, int]:
        return {t: n for t in track_ids if (n := self.node_of_track(t)) is not None}

    def _unit_mean(self, node_id: int) -> Vectors | None:
        mean = self._nodes[node_id].mean
        return None if mean is None else (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)

    def _priority(self, node_id: int) -> tuple[float, ...]:
        """Which node survives a merge: a named one, then a confirmed one, then the oldest."""
        node = self._nodes[node_id]
        return (node.label is None, node.status != NodeStatus.CONFIRMED, node_id)

    # --- edits by hand (and by re-clustering) ---------------------------------------------------

    def label(self, node_id: int, name: str) -> None:
        node = self._nodes.get(self.resolve(node_id))
        if node is None:
            raise MemoryGraphError(f"only face and voice nodes take labels, not node {node_id}")
        previous, node.label = node.label, name
        self._dirty_nodes.add(node.id)
        self._emit("node.labelled", None, {"node": node.id, "label": name, "previous": previous})

    def merge(self, keep: int, other: int) -> int:
        keep, other = self.resolve(keep), self.resolve(other)
        for n in (keep, other):
            if n not in self._nodes or self._nodes[n].status not in ACTIVE:
                raise MemoryGraphError(f"node {n} is not an active face or voice node")
        if self._nodes[keep].kind != self._nodes[other].kind:
            raise MemoryGraphError(f"cannot merge a {self._nodes[other].kind.value} node into a {self._nodes[keep].kind.value} node")
        if keep != other:
            self._merge(keep, other, manual=True)
        return keep

    def _merge(self, keep: int, other: int, manual: bool) -> None:
        now = self._clock()
        k, o = self._nodes[keep], self._nodes[other]
        self._set_gallery(keep, self._gallery(keep).extended(self._gallery(other), self._capacity(k.kind)))
        self._unindex(other)
        self._galleries.pop(other, None)
        self._dirty_galleries.discard(other)
        if NodeStatus.CONFIRMED in (k.status, o.status):
            k.status = NodeStatus.CONFIRMED
            self._provisional.discard(keep)
        k.label = k.label or o.label
        k.n_observations += o.n_observations
        k.good_faces += o.good_faces
        k.first_good_t = _min(k.first_good_t, o.first_good_t)
        k.last_good_t = _max(k.last_good_t, o.last_good_t)
        k.first_seen_wall = _min(k.first_seen_wall, o.first_seen_wall)
        k.last_seen_wall = _max(k.last_seen_wall, o.last_seen_wall)
        k.streams |= o.streams
        o.status, o.merged_into = NodeStatus.MERGED, keep
        self._founder.pop(keep, None)
        self._founder.pop(other, None)
        self._provisional.discard(other)
        self._dirty_nodes.update((keep, other))
        self._move_tracks(other, None, keep)
        self._crops.move(other, keep)
        self._store.move_edges(other, keep)
        self._cannot_link = pairs((keep if a == other else a, keep if b == other else b) for a, b in self._cannot_link)
        self._emit("node.merged", None, {"from": [other], "into": keep, "manual": manual})
        for stream, presence in self._presence.drop(other):
            self._announce(keep, stream, self._presence.put(stream, keep, presence))
        self._updated(keep, now)

    def split(self, node_id: int, track_ids: Sequence[int]) -> int:
        """Moves tracks (with their embeddings, crops and observations) to a new node; re-clustering
        will not merge the two back."""
        node_id = self.resolve(node_id)
        if not track_ids:
            raise MemoryGraphError("split needs at least one track")
        strangers = [t for t in track_ids if self.node_of_track(t) != node_id]
        if strangers:
            raise MemoryGraphError(f"tracks {strangers} are not tracks of node {node_id}")
        new_id = self._split(node_id, list(track_ids), manual=True)
        self._cannot_link.add((node_id, new_id))
        self._store.add_cannot_link(node_id, new_id)
        return new_id

    def _split(self, node_id: int, track_ids: list[int], manual: bool) -> int:
        now = self._clock()
        node = self._nodes[node_id]
        moving = set(track_ids)
        self._founder.pop(node_id, None)
        new_id = self._create(node.kind, None, now, status=node.status)
        new = self._nodes[new_id]
        new.created_wall = node.created_wall  # a provisional part keeps its original deadline
        gallery = self._gallery(node_id)
        moved = np.isin(gallery.track_ids, list(moving))
        staying = set(self._tracks_of(node_id)) - moving
        self._set_gallery(node_id, gallery.subset(~moved) if (~moved).any() else self._buffered(staying, node.kind))
        self._set_gallery(new_id, gallery.subset(moved) if moved.any() else self._buffered(moving, node.kind))
        self._write_pending()
        stats = self._store.track_stats(track_ids)
        new.n_observations = min(stats.n_observations, node.n_observations)
        node.n_observations -= new.n_observations
        new.good_faces = new.n_embeddings
        new.first_good_t, new.last_good_t = node.first_good_t, node.last_good_t
        new.first_seen_wall, new.last_seen_wall, new.streams = stats.first_wall, stats.last_wall, stats.streams
        self._move_tracks(node_id, track_ids, new_id)
        self._crops.move(node_id, new_id, moving)
        self._emit("node.split", None, {"from": node_id, "into": [new_id], "tracks": sorted(moving), "manual": manual})
        self._updated(node_id, now)
        return new_id

    def _tracks_of(self, node_id: int) -> list[int]:
        self._write_pending()
        return self._store.tracks_of(node_id)

    def _buffered(self, track_ids: set[int], kind: NodeKind) -> Gallery:
        """A gallery from the buffered faces of some tracks (for a split part that kept no embeddings)."""
        embeddings, qualities, tracks = self._buffer.of_tracks(track_ids)
        if not len(tracks):
            return Gallery.empty(0)
        return Gallery(embeddings, qualities, np.array(tracks, np.int64)).trimmed(self._capacity(kind))

    def _move_tracks(self, node_id: int, track_ids: Sequence[int] | None, new_node: int | None) -> None:
        self._store.move_tracks(node_id, track_ids, new_node)
        chosen = None if track_ids is None else set(track_ids)
        for track in self._tracks.values():
            if track.row.node_id == node_id and (chosen is None or track.row.id in chosen):
                track.row.node_id = new_node

    # --- reading --------------------------------------------------------------------------------

    def resolve(self, node_id: int) -> int:
        node = self._nodes.get(node_id)
        if node is None:
            if self._store.node_row(node_id) is None:
                raise NodeNotFound(f"no node {node_id}")
            return node_id
        while node.merged_into is not None:
            node = self._nodes[node.merged_into]
        return node.id

    def node(self, node_id: int) -> Node:
        node_id = self.resolve(node_id)
        row = self._nodes.get(node_id) or self._store.node_row(node_id)
        assert row is not None  # resolve found it
        return _public(row)

    def nodes(self, kind: NodeKind | None = None, include_inactive: bool = False) -> list[Node]:
        found = [
            _public(n)
            for n in self._nodes.values()
            if (kind is None or n.kind == kind) and (include_inactive or n.status in ACTIVE)
        ]
        if kind not in IDENTITY_KINDS:
            found += [_public(n) for n in self._store.text_node_rows(kind)]
        return sorted(found, key=lambda n: n.id)

    def text(self, node_id: int) -> str | None:
        """The text of an episodic or semantic node."""
        return self._store.text(self.resolve(node_id))

    def edges(self, node_id: int) -> list[tuple[int, int, float]]:
        """(src, dst, weight) of every edge touching a node (text node -> face/voice node)."""
        self._write_pending()
        return self._store.edges(self.resolve(node_id))

    def clips(self, stream: str | None = None) -> list[dict[str, Any]]:
        return self._store.clips(stream)

    def crops(self, node_id: int) -> list[bytes]:
        return self._crops.jpegs(self.resolve(node_id))

    def events_after(self, seq: int, limit: int = 1000) -> list[MemoryEvent]:
        """Committed events after `seq`, in order (a crash can never take back an event read here)."""
        return self._store.events_after(seq, limit)

    def published_seq(self) -> int:
        return int(self._store.meta("published_seq", "0") or 0)

    def mark_published(self, seq: int) -> None:
        """Committed with the next flush: after a crash the outbox may publish a few events again
        (at-least-once; events carry a uuid for consumers that dedupe)."""
        self._store.set_meta("published_seq", str(seq))

    def export_faces(self) -> Iterator[dict[str, Any]]:
        self._write_pending()
        for stream, t, wall, x1, y1, x2, y2, det, quality, face_type, node_id in self._store.observations():
            yield {"stream": stream, "t": t, "wall_time": wall, "bbox": [x1, y1, x2, y2], "det_score": det,
                   "quality": quality, "face_type": face_type,
                   "node": None if node_id is None else self._live(node_id)}  # fmt: skip

    def export_nodes(self) -> Iterator[dict[str, Any]]:
        self._write_pending()
        track_counts = self._store.track_counts()
        merged_from: dict[int, list[int]] = {}
        for n in self._nodes.values():
            if n.status == NodeStatus.MERGED:
                merged_from.setdefault(self.resolve(n.id), []).append(n.id)
        for n in sorted(self._nodes.values(), key=lambda n: n.id):
            if n.status in ACTIVE:
                yield {"id": n.id, "tag": self._tag(n.id), "kind": n.kind.value, "status": n.status.value,
                       "label": n.label, "created": n.created_wall, "first_seen": n.first_seen_wall,
                       "last_seen": n.last_seen_wall, "streams": sorted(n.streams),
                       "n_observations": n.n_observations, "n_embeddings": n.n_embeddings,
                       "n_tracks": track_counts.get(n.id, 0), "merged_from": sorted(merged_from.get(n.id, []))}  # fmt: skip

    # --- characters -----------------------------------------------------------------------------

    def add_equivalence(self, face_id: int, voice_id: int) -> None:
        face, voice = self.resolve(face_id), self.resolve(voice_id)
        if self._kind(face) != NodeKind.FACE or self._kind(voice) != NodeKind.VOICE:
            raise MemoryGraphError(f"an equivalence links a face node to a voice node, not {face_id} to {voice_id}")
        self._store.add_equivalence(face, voice)

    def characters(self) -> list[list[int]]:
        """Face and voice nodes grouped by equivalences (after merges); nodes without one are left out."""
        links = [(self.resolve(f), self.resolve(v)) for f, v in self._store.equivalences()]
        return connected_groups((f, v) for f, v in links if self._live(f) and self._live(v))

    def _kind(self, node_id: int) -> NodeKind | None:
        node = self._nodes.get(node_id)
        return None if node is None else node.kind

    # --- events ---------------------------------------------------------------------------------

    def _emit(self, type_: str, stream: str | None, data: dict[str, Any]) -> None:
        self._store.add_event(uuid.uuid4().hex, type_, self._clock(), stream, data)
        self._unflushed_events += 1


def _public(row: NodeRow) -> Node:
    return Node(row.id, row.kind, row.status, row.label, row.created_wall, row.first_seen_wall, row.last_seen_wall,
                row.n_observations, row.n_embeddings, sorted(row.streams), row.merged_into)  # fmt: skip


def _min(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)
