"""The store's rows as typed records (memory.store reads and writes them)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .gallery import Vectors
from .records import NodeKind, NodeStatus

NODE_COLUMNS = (
    "id, kind, status, label, merged_into, created_wall, first_seen_wall, last_seen_wall, n_observations, "
    "n_embeddings, good_faces, first_good_t, last_good_t, streams, mean"
)


@dataclass
class NodeRow:
    id: int
    kind: NodeKind
    status: NodeStatus
    label: str | None
    merged_into: int | None
    created_wall: float
    first_seen_wall: float | None
    last_seen_wall: float | None
    n_observations: int
    n_embeddings: int
    good_faces: int
    first_good_t: float | None
    last_good_t: float | None
    streams: set[str]
    mean: Vectors | None

    def to_sql(self) -> tuple[Any, ...]:
        return (
            self.id, self.kind.value, self.status.value, self.label, self.merged_into, self.created_wall,
            self.first_seen_wall, self.last_seen_wall, self.n_observations, self.n_embeddings, self.good_faces,
            self.first_good_t, self.last_good_t, json.dumps(sorted(self.streams)),
            None if self.mean is None else self.mean.astype(np.float32).tobytes(),
        )  # fmt: skip

    @classmethod
    def from_sql(cls, r: Sequence[Any]) -> NodeRow:
        mean = None if r[14] is None else np.frombuffer(r[14], np.float32).copy()
        return cls(r[0], NodeKind(r[1]), NodeStatus(r[2]), r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
                   r[12], set(json.loads(r[13])), mean)  # fmt: skip


@dataclass
class TrackRow:
    id: int
    stream: str
    node_id: int | None
    first_t: float
    last_t: float
    first_wall: float
    last_wall: float

    def to_sql(self) -> tuple[Any, ...]:
        return (self.id, self.stream, self.node_id, self.first_t, self.last_t, self.first_wall, self.last_wall)


@dataclass
class TurnFaceRow:
    """The verdict of one speech turn on one face track (see memory.evidence)."""

    turn_id: int
    face_track: int
    seen: bool  # on screen for most of the turn
    alone: bool  # ...as the only face
    sync: float | None  # synchrony with the turn, None if not measured
    outcome: int  # 1 moved with the voice, -1 did not, 0 undecided

    def to_sql(self) -> tuple[Any, ...]:
        return (self.turn_id, self.face_track, int(self.seen), int(self.alone), self.sync, self.outcome)


@dataclass
class TrackStats:
    n_observations: int
    streams: set[str]
    first_wall: float | None
    last_wall: float | None
