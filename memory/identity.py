"""Online identity, one machinery for faces and voices: match, create, extend, confirm, expire.

A track (a face across frames, or one speech turn) is matched by M3-Agent's score, the mean
pairwise cosine between its embeddings and a node's, against its kind's threshold. Unmatched
good evidence creates a provisional node; only good evidence extends a node (up to its kind's
capacity) or feeds re-clustering. A provisional node is confirmed once its kind's rule says it has
been seen (or heard) enough, and expires if that does not happen within its kind's time.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from .crops import CropShelf
from .events import EventLog
from .gallery import Gallery
from .nodes import NodeTable
from .policy import KindPolicy, Progress
from .presence import Presence, PresenceBoard
from .recluster import FaceBuffer, pairs
from .records import NodeKind, NodeStatus, TrackEvidence
from .tracks import TrackState, TrackTable


class Identities:
    def __init__(
        self,
        policies: dict[NodeKind, KindPolicy],
        nodes: NodeTable,
        tracks: TrackTable,
        events: EventLog,
        presence: PresenceBoard,
        crops: CropShelf,
    ) -> None:
        self.policies = policies
        self._nodes = nodes
        self._tracks = tracks
        self._events = events
        self._presence = presence
        self._crops = crops
        # Recent good embeddings per kind, for re-clustering.
        self.buffers = {kind: FaceBuffer(p.recluster.buffer_size) for kind, p in policies.items()}
        self.progress: dict[int, Progress] = {}  # provisional nodes only
        # Nodes that only the track that created them has reached: node -> that track.
        self.founder: dict[int, int] = {}

    # --- matching -------------------------------------------------------------------------------

    def match_or_create(self, track: TrackState, ev: TrackEvidence, kind: NodeKind, any_good: bool, now: float) -> int | None:
        """The track's node: the one it has, else the best match, else (with good evidence) a new one."""
        node_id = self._tracks.node(track)
        if node_id is not None:
            return node_id
        node_id = self._match(track, ev, kind)
        if node_id is None:
            if not any_good:
                return None
            node_id = self.create(kind, ev.stream, now)
            self.founder[node_id] = ev.track_id
        elif self.founder.get(node_id) != ev.track_id:
            self.founder.pop(node_id, None)
        self._tracks.assign(track, node_id)
        return node_id

    def _match(self, track: TrackState, ev: TrackEvidence, kind: NodeKind) -> int | None:
        emb = np.asarray(ev.embeddings, np.float32)
        track.query_sum = emb.sum(axis=0) if track.query_sum is None else track.query_sum + emb.sum(axis=0)
        track.query_count += len(emb)
        index = self._nodes.index(kind)
        hit = None if index is None else index.search(track.query_sum / track.query_count)
        return hit[0] if hit is not None and hit[1] >= self.policies[kind].matching_threshold else None

    def catch_up_target(self, node_id: int, track_id: int, cannot_link: set[tuple[int, int]]) -> int | None:
        """The node that a node made by one track should join, now that the track's faces match it.

        A returning person's track can start on a blurred or turned face that matches nobody; its
        later, better faces show who it is, long before the next re-clustering would. The test is
        the one that track would have passed had it shown these faces first."""
        node = self._nodes[node_id]
        index = self._nodes.index(node.kind)
        if self.founder.get(node_id) != track_id or node.mean is None or index is None:
            return None
        hit = index.search(node.mean, exclude=node_id)
        if hit is None or hit[1] < self.policies[node.kind].matching_threshold or pairs([(hit[0], node_id)]) <= cannot_link:
            return None
        return hit[0]

    # --- node life ------------------------------------------------------------------------------

    def create(self, kind: NodeKind, stream: str | None, now: float, status: NodeStatus = NodeStatus.PROVISIONAL) -> int:
        node = self._nodes.add(kind, status, now)
        self._events.created(node, stream, now)
        return node.id

    def absorb(
        self,
        node_id: int,
        ev: TrackEvidence,
        good: npt.NDArray[np.bool_],
        span: tuple[float, float],
        now: float,
        speech_seconds: float = 0.0,
    ) -> None:
        """Good evidence of a track reshapes its node: gallery, re-clustering buffer, crops."""
        kind = self._nodes[node_id].kind
        faces = Gallery.new(ev.embeddings[good], ev.qualities[good], np.full(int(good.sum()), ev.track_id, np.int64))
        self._extend(node_id, faces, span, now, speech_seconds)
        self.buffers[kind].add(ev.track_id, faces.embeddings, faces.qualities)
        if ev.crop_jpeg is not None:
            self._crops.offer(node_id, ev.track_id, ev.crop_quality, ev.crop_jpeg)

    def _extend(self, node_id: int, faces: Gallery, span: tuple[float, float], now: float, speech_seconds: float) -> None:
        node = self._nodes[node_id]
        self._nodes.set_gallery(node_id, self._nodes.gallery(node_id).extended(faces, self.policies[node.kind].capacity))
        node.good_faces += len(faces)
        node.first_good_t = span[0] if node.first_good_t is None else min(node.first_good_t, span[0])
        node.last_good_t = span[1] if node.last_good_t is None else max(node.last_good_t, span[1])
        if speech_seconds > 0 and node.status == NodeStatus.PROVISIONAL:
            self.progress.setdefault(node_id, Progress(*span)).add_speech(speech_seconds)
        self.maybe_confirm(node_id)
        self._events.updated(node_id, now)

    def maybe_confirm(self, node_id: int) -> None:
        node = self._nodes[node_id]
        if node.status != NodeStatus.PROVISIONAL:
            return
        if self.policies[node.kind].ready(node, self.progress.get(node_id, Progress(0.0, 0.0))):
            self.confirm(node_id)

    def confirm(self, node_id: int) -> None:
        node = self._nodes[node_id]
        node.status = NodeStatus.CONFIRMED
        self._nodes.provisional.discard(node_id)
        self.progress.pop(node_id, None)
        self._nodes.touch(node_id)
        self._events.confirmed(node)
        for stream, presence in self._presence.of_node(node_id):
            self.announce(node_id, stream, presence)

    def expire_due(self, now: float) -> None:
        """Provisional nodes past their kind's time expire; their tracks lose them."""
        for node_id in sorted(self._nodes.provisional):
            node = self._nodes[node_id]
            if now - node.created_wall >= self.policies[node.kind].provisional_ttl:
                self._expire(node_id)

    def _expire(self, node_id: int) -> None:
        node = self._nodes[node_id]
        node.status = NodeStatus.EXPIRED
        self._nodes.provisional.discard(node_id)
        self.progress.pop(node_id, None)
        self.founder.pop(node_id, None)
        self._nodes.retire(node_id)
        self._presence.drop(node_id)  # never announced: it was provisional
        self._tracks.move(node_id, None, None)
        self._nodes.touch(node_id)
        self._events.expired(node)
        self._events.forget([node_id])  # its last changes need no node.updated: it is not active

    def merged(self, keep: int, other: int) -> None:
        """Bookkeeping of a merge: the survivor takes the other's speech toward confirmation."""
        self.founder.pop(keep, None)
        self.founder.pop(other, None)
        self._nodes.provisional.discard(other)
        gone = self.progress.pop(other, None)
        if self._nodes[keep].status == NodeStatus.CONFIRMED:
            self._nodes.provisional.discard(keep)
            self.progress.pop(keep, None)
        elif gone is not None and gone.good_turns:  # (a face node's span stays its own)
            self.progress.setdefault(keep, Progress(gone.first_t, gone.last_t)).absorb_speech(gone)

    # --- presence -------------------------------------------------------------------------------

    def seen(self, node_id: int, stream: str, span: tuple[float, float], wall: tuple[float, float], now: float) -> None:
        """The node was observed in a stream over stream times `span` and wall times `wall`."""
        node = self._nodes[node_id]
        node.first_seen_wall = wall[0] if node.first_seen_wall is None else min(node.first_seen_wall, wall[0])
        node.last_seen_wall = wall[1] if node.last_seen_wall is None else max(node.last_seen_wall, wall[1])
        node.streams.add(stream)
        self._nodes.touch(node_id)
        if node.status == NodeStatus.PROVISIONAL:
            progress = self.progress.setdefault(node_id, Progress(*span))
            progress.first_t, progress.last_t = min(progress.first_t, span[0]), max(progress.last_t, span[1])
            self.maybe_confirm(node_id)
        absent_after = self.policies[node.kind].absent_after
        self.announce(node_id, stream, self._presence.seen(stream, node_id, span[0], span[1], now, absent_after))

    def restore_presence(
        self, latest: list[tuple[str, int, int, str, float]], last_seen_t: Callable[[str, int], float | None], now: float
    ) -> None:
        """On opening a stored memory: the announced presences that no person.left ended go on, so a
        person still in front of a camera after a restart (or a crash) is not announced again, and
        one who went meanwhile gets a person.left. `latest` is each (stream, node)'s latest presence
        event (memory.store.Store.latest_presence). The clock counts their absence from now."""
        newest: dict[tuple[str, int], tuple[int, str, float]] = {}
        for stream, node, seq, type_, t in latest:
            live = self._nodes.live(node) if node in self._nodes.rows else None
            if live is not None and newest.get((stream, live), (-1,))[0] < seq:  # a merged node's events are its survivor's
                newest[(stream, live)] = (seq, type_, t)
        for (stream, node_id), (_, type_, first_t) in newest.items():
            node = self._nodes[node_id]
            if type_ != "person.appeared" or node.status != NodeStatus.CONFIRMED:
                continue
            last_t = max(first_t, last_seen_t(stream, node_id) or first_t)
            absent_after = self.policies[node.kind].absent_after
            self._presence.seen(stream, node_id, first_t, last_t, now, absent_after).announced = True

    def announce(self, node_id: int, stream: str, presence: Presence) -> None:
        """person.appeared, once per presence, and only for a confirmed node."""
        node = self._nodes[node_id]
        if presence.announced or node.status != NodeStatus.CONFIRMED:
            return
        presence.announced = True
        self._events.appeared(node, stream, presence)

    def left(self, stream: str, node_id: int, presence: Presence) -> None:
        if presence.announced:
            self._events.left(self._nodes[node_id], stream, presence)

    def confirm_still(self, stream: str) -> None:
        """A still photo is one deliberate look at each face in it, not a passer-by: its
        provisional nodes with a good face are confirmed."""
        for node_id in sorted(self._nodes.provisional):
            node = self._nodes[node_id]
            if stream in node.streams and node.good_faces > 0:
                self.confirm(node_id)
