"""A language model's memories in the graph: text nodes with provenance, linked to the tags they name."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from support.postgres import STORES
from support.scenario import Scene
from support.talk import Talk

from memory import Memory, MemoryConfig, NodeKind, Provenance
from memory.schema import MIGRATIONS, SCHEMA_VERSION

SPEAKS = 0.3
SOURCE = Provenance("smollm2", "127.0.0.1:8080", 1_700_000_100.0, False)


def _clip(scene: Scene) -> tuple[Talk, str]:
    """Two faces on screen while the first one speaks (tied into a character), and a voice off screen."""
    a, b = scene.bank.distinct()[:2]
    talk = Talk(scene)
    for text in ("Good morning.", "Shall we start?", "Let's go."):
        talk.turn([a, b], speaker=1, sync={a: SPEAKS, b: 0.0}, text=text)
    talk.turn([], speaker=2, seconds=7.0, text="The weather is fine.")
    scene.memory.end_stream("door")
    (character,) = scene.memory.export_characters()
    return talk, f"<character_{character['id']}>"


@pytest.mark.parametrize("cfg", STORES, indirect=True)
def test_model_memories_are_stored_with_provenance_and_linked_to_the_tags_they_name(scene: Scene) -> None:
    talk, alice = _clip(scene)
    memory = scene.memory
    a, b = scene.bank.distinct()[:2]
    fa, fb, v1, v2 = talk.faces[a], talk.faces[b], talk.voices[1], talk.voices[2]
    _, elsewhere = scene.show(scene.bank.distinct()[2], stream="hall")
    template = memory.clip_memories("door", 0)
    assert template is not None and elsewhere is not None
    stored = memory.add_model_memories(
        "door", 0, [f"{alice} greets <face_{fb}>", f"<face_999999> waves at <face_{elsewhere}>", "Someone laughs",
                      f"<voice_{fb}> nods"], [f"<voice_{v2}> speaks English"], SOURCE)  # fmt: skip
    assert [(text, nodes) for _, text, nodes in stored] == [
        (f"{alice} greets <face_{fb}>", sorted([fa, v1, fb])),  # a character stands for its faces and voices
        (f"<face_999999> waves at <face_{elsewhere}>", []),  # made-up tags, or people not in the clip, link nothing
        ("Someone laughs", []),
        (f"<voice_{fb}> nods", []),  # a face's number under the wrong kind is the model's slip
        (f"<voice_{v2}> speaks English", [v2]),
    ]
    kinds = [memory.node(m).kind for m, _, _ in stored]
    assert kinds == [NodeKind.EPISODIC] * 4 + [NodeKind.SEMANTIC]
    for m, text, nodes in stored:
        assert memory.text(m) == text
        assert sorted(dst for src, dst, _ in memory.edges(m) if src == m) == nodes
        assert memory.provenance(m) == (template["id"], SOURCE)
    clip = memory.clip_memories("door", 0)
    assert clip is not None
    assert clip["text"] == template["text"] and clip["memory"] == template["memory"]  # still the graph's "who was there"
    assert [t for _, t, _ in clip["episodic"]] == [t for _, t, _ in template["episodic"]] + [t for _, t, _ in stored[:4]]
    assert (stored[4][0], stored[4][1]) in clip["semantic"]  # found through the person it is about
    assert memory.provenance(template["memory"]) is None  # the graph's own memories have none
    said = [memory.text(src) for src, dst, _ in memory.edges(fb) if dst == fb]
    assert f"{alice} greets <face_{fb}>" in said  # from a person to what the model said of them


def test_provenance_is_in_the_file(scene: Scene, tmp_path: Path) -> None:
    _clip(scene)
    ((m, _, _),) = scene.memory.add_model_memories("door", 0, ["Someone laughs"], [], SOURCE)
    scene.memory.flush()
    with Memory(MemoryConfig(db=str(tmp_path / "memory.db"))) as memory:  # as a restart reads the file
        assert memory.text(m) == "Someone laughs" and memory.provenance(m) is not None


def test_a_version_4_file_gains_the_provenance_table(tmp_path: Path) -> None:
    db = str(tmp_path / "old.db")
    Memory(MemoryConfig(db=db)).close()
    with sqlite3.connect(db) as c:  # schema version 4: what later versions created is not there yet
        for version in sorted((v for v in MIGRATIONS if v > 4), reverse=True):
            for kind, name in re.findall(r"CREATE (TABLE|INDEX) (\w+)", MIGRATIONS[version]):
                c.execute(f"DROP {kind} IF EXISTS {name}")
        c.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    with Memory(MemoryConfig(db=db)) as memory:
        assert memory.add_model_memories("door", 0, ["Someone laughs"], [], SOURCE)[0][2] == []
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
        assert c.execute("SELECT model, endpoint, images FROM model_memories").fetchall() == [("smollm2", "127.0.0.1:8080", 0)]
