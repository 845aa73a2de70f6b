"""Records that flow into and out of the memory library."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt


class NodeKind(str, enum.Enum):
    FACE = "face"  # M3-Agent's "img"
    VOICE = "voice"
    EPISODIC = "episodic"
    SEMANTIC = "semantic"


class NodeStatus(str, enum.Enum):
    PROVISIONAL = "provisional"  # created from an unmatched track, not yet seen enough
    CONFIRMED = "confirmed"
    EXPIRED = "expired"  # provisional and never confirmed
    MERGED = "merged"  # folded into another node (see Node.merged_into)
    FORGOTTEN = "forgotten"  # deleted on request (memory.forget): a tombstone, so its id is never reused


@dataclass(frozen=True)
class FaceObservation:
    """One detected face in one analysed frame. `quality` is the L2 norm of the raw embedding of
    the latest embedding of its track (faces are not embedded on every frame)."""

    stream: str
    track_id: int  # global, unique across streams and restarts (see Memory.new_track_id)
    t: float  # seconds from the stream start, by PTS
    wall_time: float  # unix seconds
    bbox: tuple[int, int, int, int]  # x1, y1, x2, y2
    det_score: float
    quality: float | None
    face_type: str  # "ortho" if 1 < h/w < 1.5 else "side" (M3-Agent)


@dataclass
class TrackEvidence:
    """New embeddings of one track, handed to Memory.identify_track."""

    stream: str
    track_id: int
    t: float
    wall_time: float
    embeddings: npt.NDArray[np.float32]  # (k, d), L2-normalised
    qualities: npt.NDArray[np.float32]  # (k,), L2 norm of the raw embeddings
    det_scores: npt.NDArray[np.float32]  # (k,)
    good: npt.NDArray[np.bool_]  # (k,), passed the quality gates: may create or extend a node
    crop_jpeg: bytes | None = None  # crop of the best face among these, for the node's gallery
    crop_quality: float = 0.0


@dataclass
class SpeechTurn:
    """One speaker turn, handed to Memory.add_turn. A turn is a one-turn track of kind voice."""

    stream: str
    track_id: int  # from Memory.new_track_id()
    t_start: float  # stream seconds, the same clock as the stream's faces
    t_end: float
    wall_time: float  # unix seconds at t_start
    embedding: npt.NDArray[np.float32] | None  # (d,), L2-normalised; None: not embedded (too short)
    good: bool  # long and clean enough to create or reshape a voice identity; others only match
    audio: npt.NDArray[np.float32] | None = None  # (n,) 16 kHz mono, for a voice snippet (memory.snippets); not stored otherwise

    def __post_init__(self) -> None:
        if self.t_end < self.t_start:
            raise ValueError(f"a speech turn ends ({self.t_end}) before it starts ({self.t_start})")
        if self.good and self.embedding is None:
            raise ValueError("a good speech turn needs an embedding")

    @property
    def seconds(self) -> float:
        return self.t_end - self.t_start


@dataclass(frozen=True)
class SpeakerEvidence:
    """Who on screen moved their mouth with one speech turn (Memory.speaker_evidence)."""

    turn: int  # the speech turn's track id (SpeechTurn.track_id)
    sync: dict[int, float]  # face track id -> audio-visual synchrony over the turn (correlation of mouth
    # motion with speech energy, -1..1), one entry per face track visible for most of the turn


@dataclass
class Node:
    id: int
    kind: NodeKind
    status: NodeStatus
    label: str | None
    created_wall: float
    first_seen_wall: float | None
    last_seen_wall: float | None
    n_observations: int
    n_embeddings: int
    streams: list[str] = field(default_factory=list)
    merged_into: int | None = None

    @property
    def tag(self) -> str:
        return f"<{self.kind.value}_{self.id}>"


@dataclass(frozen=True)
class MemoryEvent:
    """A change of memory. `seq` is monotonic across restarts (the events table's rowid)."""

    seq: int
    id: str  # uuid4 hex, for consumers that dedupe
    type: str  # node.created, node.confirmed, node.updated, node.merged, node.split, node.expired,
    # node.labelled, person.appeared, person.left, clip.closed, speech, character.updated
    wall_time: float
    stream: str | None
    data: dict[str, Any]

    def to_json_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "id": self.id, "type": self.type, "time": self.wall_time, "stream": self.stream, **self.data}


@dataclass(frozen=True)
class Provenance:
    """Who wrote a language model's memory: the model's name, the endpoint's host (host:port), when
    (unix seconds), and whether the model was shown images."""

    model: str
    endpoint: str
    wall_time: float
    images: bool
