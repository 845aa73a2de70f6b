"""Tracks in memory: which node each recent track has, and the rows waiting to be written.

A track is one person's face across frames, or one speech turn (a one-turn track of kind voice).
Faces and turns are queued here and written in batches with the rest of the memory's changes.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from .gallery import Vectors
from .nodes import NodeTable
from .records import SpeechTurn
from .rows import TrackRow
from .store import Store

TRACK_IDLE_SECONDS = 3600.0  # tracks idle this long leave memory (they stay in the store)
MAX_PENDING_ROWS = 20000  # flush early rather than hold more rows (the memory service applies half this per commit)


@dataclass
class TrackState:
    row: TrackRow
    touched: float  # clock time of the last evidence or observation
    n_observations: int = 0  # recorded before the track had a node, counted into the node it gets
    query_sum: Vectors | None = None  # sum of every embedding, while unassigned: matching uses their mean
    query_count: int = 0


class TrackTable:
    def __init__(self, store: Store, nodes: NodeTable) -> None:
        self._store = store
        self._nodes = nodes
        self._tracks: dict[int, TrackState] = {}
        self._dirty: set[int] = set()
        self._stored: set[int] = set()  # tracks in memory whose row is in the store (updated, not inserted)
        self._observations: list[tuple[Any, ...]] = []
        self._turns: list[SpeechTurn] = []

    def touch(self, track_id: int, stream: str, t: tuple[float, float], wall: tuple[float, float], now: float) -> TrackState:
        """The track (loaded or new) with its span grown to cover stream times t and wall times wall."""
        track = self._tracks.get(track_id)
        if track is None:
            row = self._store.track(track_id)
            if row is None:
                row = TrackRow(track_id, stream, None, t[0], t[1], wall[0], wall[1])
            else:
                self._stored.add(track_id)
            track = self._tracks[track_id] = TrackState(row, now)
        row = track.row
        row.first_t, row.last_t = min(row.first_t, t[0]), max(row.last_t, t[1])
        row.first_wall, row.last_wall = min(row.first_wall, wall[0]), max(row.last_wall, wall[1])
        track.touched = now
        self._dirty.add(track_id)
        return track

    def node(self, track: TrackState) -> int | None:
        """The track's live node (following merges, None once expired)."""
        if track.row.node_id is None:
            return None
        node = self._nodes.live(track.row.node_id)
        if node != track.row.node_id:
            track.row.node_id = node
            self._dirty.add(track.row.id)
        return node

    def node_of(self, track_id: int) -> int | None:
        track = self._tracks.get(track_id)
        if track is not None:
            return self.node(track)
        row = self._store.track(track_id)
        return None if row is None or row.node_id is None else self._nodes.live(row.node_id)

    def assign(self, track: TrackState, node_id: int) -> None:
        track.row.node_id = node_id
        track.query_sum, track.query_count = None, 0
        self._nodes[node_id].n_observations += track.n_observations
        track.n_observations = 0
        self._dirty.add(track.row.id)

    def move(self, node_id: int, track_ids: Sequence[int] | None, new_node: int | None) -> None:
        """Re-points tracks of a node (the given ones, or all when track_ids is None) at new_node."""
        self._store.move_tracks(node_id, track_ids, new_node)
        chosen = None if track_ids is None else set(track_ids)
        for track in self._tracks.values():
            if track.row.node_id == node_id and (chosen is None or track.row.id in chosen):
                track.row.node_id = new_node

    def span(self, track_id: int) -> tuple[float, float] | None:
        """Stream times of a recent track's first and last evidence (None once it left memory)."""
        track = self._tracks.get(track_id)
        return None if track is None else (track.row.first_t, track.row.last_t)

    def of_node(self, node_id: int) -> list[int]:
        self.write()
        return self._store.tracks_of(node_id)

    # --- rows waiting to be written -------------------------------------------------------------

    def add_observation(self, row: tuple[Any, ...]) -> None:
        self._observations.append(row)

    def add_turn(self, turn: SpeechTurn) -> None:
        self._turns.append(turn)

    @property
    def pending(self) -> int:
        return len(self._observations) + len(self._turns)

    def write(self) -> None:
        if self._observations:
            self._store.add_observations(self._observations)
            self._observations = []
        if self._turns:
            self._store.add_turns(self._turns)
            self._turns = []
        dirty = [t for t in self._dirty if t in self._tracks]
        self._store.update_tracks(self._tracks[t].row for t in dirty if t in self._stored)
        self._store.save_tracks(self._tracks[t].row for t in dirty if t not in self._stored)
        self._stored.update(dirty)
        self._dirty.clear()

    def forget(self, track_ids: Collection[int]) -> None:
        """Forgotten tracks (memory.forget) leave memory at once; their rows are already deleted."""
        for track_id in track_ids:
            self._tracks.pop(track_id, None)
            self._dirty.discard(track_id)
            self._stored.discard(track_id)

    def forget_idle(self, now: float, keep: Collection[int]) -> None:
        """Tracks idle for TRACK_IDLE_SECONDS leave memory, except those in `keep` (buffered for re-clustering)."""
        for track_id in [t for t, tr in self._tracks.items() if now - tr.touched > TRACK_IDLE_SECONDS and t not in keep]:
            del self._tracks[track_id]
            self._stored.discard(track_id)
