"""Drives a Memory the way the streamer does: tracks of real faces, observations, evidence."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from support.realfaces import FaceBank, Faces

from memory import FaceObservation, Memory, MemoryEvent, SpeechTurn, TrackEvidence

START = 1_700_000_000.0  # wall clock of every scene's start


class Clock:
    """A controllable clock, passed to Memory (time itself is not under test)."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Scene:
    memory: Memory
    clock: Clock
    bank: FaceBank
    stream_t: dict[str, float] = field(default_factory=dict)  # each stream's time so far
    seen_seq: int = 0

    def advance(self, seconds: float, stream: str = "door") -> None:
        self.clock.now += seconds
        self.stream_t[stream] = self.stream_t.get(stream, 0.0) + seconds

    def show(
        self,
        person: int,
        n: int = 4,
        *,
        stream: str = "door",
        hard: bool = False,
        good: bool = True,
        faces: Faces | None = None,
        track_id: int | None = None,
        step: float = 0.25,
    ) -> tuple[int, int | None]:
        """One track of `person` seen and embedded on n frames `step` apart; returns (track id, its node)."""
        faces = faces or self.bank.faces(person, n, hard)
        track_id = self.memory.new_track_id() if track_id is None else track_id
        t0 = self.stream_t.get(stream, 0.0)
        obs = []
        for i in range(len(faces.qualities)):
            t = t0 + i * step
            obs.append(FaceObservation(stream, track_id, t, self.clock.now + i * step, (10, 10, 90, 110), 0.85,
                                       float(faces.qualities[i]), "ortho"))  # fmt: skip
        self.memory.record_faces(obs)
        node = None
        for i, o in enumerate(obs):
            one = Faces(faces.embeddings[i : i + 1], faces.qualities[i : i + 1])
            crop = self.bank.jpeg(person) if i == 0 else None
            node = self.memory.identify_track(evidence(stream, track_id, o.t, o.wall_time, one, good, crop))
        self.advance(step * len(obs), stream)
        return track_id, node

    def speak(
        self, speaker: int, seconds: float = 2.0, *, stream: str = "door", good: bool = True, embedded: bool = True, gap: float = 0.5
    ) -> tuple[int, int | None]:
        """One speech turn of `speaker` starting now, then a pause of `gap`; returns (turn id, its voice node)."""
        turn_id = self.memory.new_track_id()
        t0 = self.stream_t.get(stream, 0.0)
        embedding = speaker_turns(speaker, 1, seed=turn_id)[0] if embedded else None
        node = self.memory.add_turn(SpeechTurn(stream, turn_id, t0, t0 + seconds, self.clock.now, embedding, good))
        self.advance(seconds + gap, stream)
        return turn_id, node

    def events(self, type_: str | None = None) -> list[MemoryEvent]:
        """Events since the last call (flushes so they are committed)."""
        self.memory.flush()
        new = self.memory.events_after(self.seen_seq, limit=100_000)
        if new:
            self.seen_seq = new[-1].seq
        return [e for e in new if type_ is None or e.type == type_]


def evidence(
    stream: str, track_id: int, t: float, wall: float, faces: Faces, good: bool = True, crop: bytes | None = None
) -> TrackEvidence:
    k = len(faces.qualities)
    return TrackEvidence(
        stream, track_id, t, wall, faces.embeddings, faces.qualities, np.full(k, 0.85, np.float32),
        np.full(k, good), crop, float(faces.qualities.max()),
    )  # fmt: skip


def voices(speaker: int, n: int) -> Faces:
    """Voice embeddings (a speaker model's 192-d unit vectors) of one speaker; no voice model ships here."""
    rng = np.random.default_rng(speaker)
    e = rng.standard_normal(192) + 0.3 * rng.standard_normal((n, 192))
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    return Faces(e.astype(np.float32), np.full(n, 20.0, np.float32))


def speaker_turns(speaker: int, n: int, seed: int = 0) -> npt.NDArray[np.float32]:
    """Turn embeddings of one speaker, spread like the bundled speaker model's on turns of real
    meetings (same speaker ~0.59 cosine on average, different speakers ~0.09; measured with
    tools/bench_voices.py): a direction all speech shares, the speaker's own and the turn's own.
    Two people of one telephone conversation are much closer (0.39): tests/voices use real speech."""
    common = np.random.default_rng(10_000).standard_normal(192)
    own = np.random.default_rng(speaker).standard_normal(192)
    turn = np.random.default_rng((speaker, seed)).standard_normal((n, 192))
    e = np.sqrt(0.09) * common + np.sqrt(0.50) * own + np.sqrt(0.41) * turn
    return (e / np.linalg.norm(e, axis=1, keepdims=True)).astype(np.float32)
