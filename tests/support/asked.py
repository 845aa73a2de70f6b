"""A memory to ask: real face embeddings (support.realfaces), speech turns with transcripts, a
character tied by hand, labels, two cameras; built through Memory as the streamer builds it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from support.postgres import PostgresServer
from support.realfaces import FaceBank
from support.scenario import Clock, Scene
from support.talk import Talk

from memory import FaceObservation, Memory, MemoryConfig

ANNA_SAYS = ["Good morning, shall we start?", "I drink tea every morning before work.", "My sister lives in Lisbon."]
BEN_SAYS = ["The train was late again today."]


@dataclass(frozen=True)
class Built:
    db: Path | str  # an SQLite file, or a PostgreSQL database's URL
    anna_face: int
    anna_voice: int
    ben_face: int
    ben_voice: int
    cleo_face: int  # seen alone in another camera, never speaks
    character: int  # Anna's
    start: float  # wall clock of the first sighting
    clock: Clock


def next_clip(scene: Scene, stream: str) -> None:
    """Stream time moves into the next clip (a face far off closes the open one)."""
    interval = scene.memory.cfg.interval_seconds
    scene.stream_t[stream] = (scene.stream_t.get(stream, 0.0) // interval + 1) * interval + 0.5
    scene.memory.record_faces([FaceObservation(stream, 999_999, scene.stream_t[stream], scene.clock.now, (0, 0, 9, 9), 0.9, None, "ortho")])


def build(db: Path | str, bank: FaceBank) -> Built:
    clock = Clock()
    start = clock.now
    with Memory(MemoryConfig(db=str(db)), clock=clock) as memory:
        scene = Scene(memory, clock, bank)
        a, b, c = bank.distinct()[:3]
        talk = Talk(scene)
        for text in ANNA_SAYS:
            talk.turn([a, b], speaker=1, text=text, stream="kitchen")
        talk.turn([a, b], speaker=2, text=BEN_SAYS[0], stream="kitchen")
        next_clip(scene, "kitchen")
        clock.now += 600  # ten minutes later, Cleo alone at the door
        scene.show(c, 6, stream="door")
        _, cleo = scene.show(c, 6, stream="door")
        memory.end_stream("door")
        memory.end_stream("kitchen")
        fa, fb, va, vb = talk.faces[a], talk.faces[b], talk.voices[1], talk.voices[2]
        assert None not in (fa, fb, va, vb, cleo)
        memory.link(fa, va)  # type: ignore[arg-type]
        memory.link(fb, vb)  # type: ignore[arg-type]
        memory.label(fa, "Anna")  # type: ignore[arg-type]
        memory.label(fb, "Ben")  # type: ignore[arg-type]
        character = memory.character_of(fa)  # type: ignore[arg-type]
        assert character is not None
        memory.flush()
    return Built(db, fa, va, fb, vb, cleo, character.id, start, clock)  # type: ignore[arg-type]




def build_on(store: str, request: pytest.FixtureRequest, bank: FaceBank) -> Built:
    """The same memory on one store ("sqlite" or "postgresql", see support.postgres.STORES)."""
    if store == "sqlite":
        return build(request.getfixturevalue("tmp_path_factory").mktemp("asked") / "memory.db", bank)
    server: PostgresServer = request.getfixturevalue("postgres")
    return build(server.database(), bank)
