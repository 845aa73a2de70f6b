"""The whole streamer on a composed talking-head video: real faces (the shipped photos), a real
recorded two-person conversation, real decoding, detection, voices, mouth synchrony and ASR. One
person on screen at a time, the one holding the floor, whose mouth moves with their own voice; a
third person is on screen while nobody speaks. Played twice, so each voice has turns enough.

Measured here: in most runs one of the two voices is tied, in some (a loaded machine) none. The face
tracker sometimes carries one track across hard cuts between the two heads (same place, same size),
so one face node holds both people's frames and its mouth moves with both voices; the tie rule then
sees a face with a case for two voices and ties neither, as it should."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from streamer.demo.talking import talking_mouths
from support.answers import answers, people_asked, streamer
from support.postgres import PostgresServer

from memory import Memory
from streamer.app import App
from streamer.config import CameraConfig, Config
from streamer.demo.cast import Person
from streamer.demo.compose import Cut, render_video
from streamer.demo.speech import SpokenTurn, floor_holders, load_conversation
from streamer.faces.detector import FaceDetector
from streamer.faces.models import ModelPack
from streamer.progress import Progress

pytestmark = pytest.mark.timeout(600)

A, B, STILL = 0, 1, 2  # speaker90's face, speaker91's face, a face that never speaks
HEADS = {"speaker90": A, "speaker91": B}
PASS = 30.0  # the conversation is played twice


def _script(spans: list[SpokenTurn]) -> list[Cut]:
    cuts = []
    for k in range(2):
        start = k * PASS
        cuts.append(Cut(STILL, start, start + spans[0].start))  # the line is silent before the first turn
        for i, span in enumerate(spans):
            end = spans[i + 1].start if i + 1 < len(spans) else PASS
            cuts.append(Cut(HEADS[span.speaker], start + span.start, start + end))
    return cuts


@pytest.fixture(scope="module")
def run(cast: list[Person], detector: FaceDetector, pack: ModelPack, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Cut], list[SpokenTurn]]:
    conv = load_conversation()
    folder = tmp_path_factory.mktemp("talking_heads")
    video = folder / "talking_heads.mp4"
    script = _script(floor_holders(conv.turns))
    render_video(video, cast, script, audio=np.tile(conv.samples, 2), animate=talking_mouths(cast, detector, conv, {A: "speaker90", B: "speaker91"}, lambda t: t % PASS))
    cfg = Config.model_validate({"cameras": [CameraConfig(name="heads", url=str(video)).model_dump()],
                                 "memory": {"db": str(folder / "memory.db")}, "mqtt": {"enabled": False}})  # fmt: skip
    app = App(cfg, realtime=False, progress=Progress(enabled=False))
    asyncio.run(app.run(pack))
    spoken = [SpokenTurn(t.start + k * PASS, t.end + k * PASS, t.speaker) for k in range(2) for t in conv.turns]
    return folder / "memory.db", script, spoken


def _node_of(items: list[tuple[float, int | None]], spans: list[tuple[float, float]]) -> int | None:
    """The node most often seen (or heard) inside the spans."""
    votes = Counter(n for t, n in items if n is not None and any(a <= t < b for a, b in spans))
    return votes.most_common(1)[0][0] if votes else None


def test_no_wrong_tie_and_the_clips_quote_who_spoke(run: tuple[Path, list[Cut], list[SpokenTurn]]) -> None:
    """How many voices get tied varies from run to run (see the module notes); a wrong tie never may."""
    db, script, spoken = run
    with Memory(Config.model_validate({"memory": {"db": str(db)}}).memory) as memory:
        faces = [(f["t"], f["node"]) for f in memory.export_faces()]
        turns = [((v["t_start"] + v["t_end"]) / 2, v["node"]) for v in memory.export_voices()]
        face = {p: _node_of(faces, [(c.start, c.end) for c in script if c.person == p]) for p in (A, B, STILL)}
        voice = {p: _node_of(turns, [(t.start, t.end) for t in spoken if HEADS[t.speaker] == p]) for p in (A, B)}
        assert len({*face.values(), *voice.values()} - {None}) == 5, (face, voice)
        characters = memory.characters()
        tied = [p for p in (A, B) if sorted([face[p], voice[p]]) in characters]  # type: ignore[type-var]
        print(f"characters {characters}, faces {face}, voices {voice}: {len(tied)} of 2 voices tied")
        # never a wrong tie: a character holds at most one of these people, and the silent one none
        for group in characters:
            assert len([p for p in (A, B, STILL) if face[p] in group or voice.get(p) in group]) <= 1, group
        assert memory.character_of(face[STILL]) is None  # type: ignore[arg-type]
        quotes = [text for clip in memory.clips("heads") if (m := memory.clip_memories("heads", clip["index"]))
                  for _, text, _ in m["episodic"] if " says: " in text]  # fmt: skip
        for p in (A, B):  # each speaker is quoted, under their character's tag once tied
            character = memory.character_of(voice[p])  # type: ignore[arg-type]
            tag = character.tag if character else memory.node(voice[p]).tag  # type: ignore[arg-type]
            assert any(q.startswith(f'{tag} says: "') for q in quotes), (tag, quotes)


def test_the_memory_moved_to_postgresql_answers_alike(
    run: tuple[Path, list[Cut], list[SpokenTurn]], postgres: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """`streamer db copy` of this real run's memory into PostgreSQL: every export and question answers alike there."""
    db = str(run[0])
    asked = people_asked(capsys, db) + [["clip", "heads", "0"], ["search", "what did they talk about"]]
    expected = answers(capsys, db, asked)
    url = postgres.database()
    code, _, err = streamer(capsys, "db", "copy", db, url)
    assert code == 0, err
    assert answers(capsys, url, asked) == expected
