"""The tie rule: a face and a voice become one character only on strong, consistent evidence."""

from __future__ import annotations

import pytest
from support.postgres import STORES
from support.scenario import Clock, Scene
from support.talk import Talk

from memory import Memory, MemoryConfig, NodeKind
from support.realfaces import FaceBank

pytestmark = pytest.mark.parametrize("cfg", STORES, indirect=True)  # every test on an SQLite file and on PostgreSQL


SPEAKS, SILENT, TV = 0.3, 0.02, -0.01  # synchrony of a face with its own voice, with a voice it is not speaking


def people(scene: Scene, n: int) -> list[int]:
    return scene.bank.distinct()[:n]


def test_a_face_alone_on_screen_moving_with_its_voice_is_tied(scene: Scene) -> None:
    (a,) = people(scene, 1)
    talk = Talk(scene)
    for i in range(scene.memory.cfg.character_tie_min_turns):
        assert scene.memory.characters() == [], f"tied after {i} turns"
        talk.turn([a], speaker=1, sync={a: SPEAKS})
    face, voice = talk.faces[a], talk.voices[1]
    assert face is not None and voice is not None
    assert scene.memory.characters() == [sorted([face, voice])]
    (updated,) = scene.events("character.updated")
    character = updated.data["character"]
    assert updated.data == {"character": character, "faces": [face], "voices": [voice], "label": None}
    assert scene.memory.character_of(voice).id == character == scene.memory.character_of(face).id
    # more of the same changes nothing
    talk.turn([a], speaker=1, sync={a: SPEAKS})
    assert scene.events("character.updated") == []


def test_a_face_on_screen_while_a_voice_it_does_not_move_with_speaks_is_not_tied(scene: Scene) -> None:
    (a,) = people(scene, 1)
    talk = Talk(scene)
    for _ in range(10):  # a TV talks while a person sits still in front of it, turn after turn
        talk.turn([a], speaker=2, sync={a: TV})
    assert scene.memory.characters() == []
    # some turns where the person's lips happen to move a little with the TV do not tip it
    for _ in range(3):
        talk.turn([a], speaker=2, sync={a: 0.15})
    assert scene.memory.characters() == [] and scene.events("character.updated") == []


def test_co_occurrence_alone_never_ties(scene: Scene) -> None:
    (a,) = people(scene, 1)
    talk = Talk(scene)
    for _ in range(8):  # always the only face while the voice speaks, but no synchrony was measured
        talk.turn([a], speaker=2)
    talk.settle()
    assert scene.memory.characters() == []


def test_two_faces_on_screen_one_speaking_tie_the_right_one_or_none(scene: Scene) -> None:
    a, b = people(scene, 2)
    talk = Talk(scene)
    for _ in range(5):
        talk.turn([a, b], speaker=1, sync={a: SPEAKS, b: 0.05})
    talk.turn([a, b], speaker=1, sync={a: 0.2, b: 0.25})  # too close to call: counts for nobody
    for _ in range(5):
        talk.turn([a, b], speaker=2, sync={a: 0.04, b: 0.35})
    fa, fb, v1, v2 = talk.faces[a], talk.faces[b], talk.voices[1], talk.voices[2]
    assert len({fa, fb, v1, v2}) == 4
    assert scene.memory.characters() == sorted([sorted([fa, v1]), sorted([fb, v2])])


def test_a_weak_signal_that_picks_the_wrong_face_often_ties_nobody(scene: Scene) -> None:
    a, b = people(scene, 2)
    talk = Talk(scene)
    # both move their lips; the right one wins 4 turns in 6, as measured on real talking heads
    for right in [True, True, False, True, False, True] * 2:
        talk.turn([a, b], speaker=1, sync={a: 0.35, b: 0.1} if right else {a: 0.1, b: 0.35})
    assert scene.memory.characters() == []


def test_a_voice_with_no_face_on_screen_and_a_face_that_never_speaks_are_not_tied(scene: Scene) -> None:
    a, b = people(scene, 2)
    talk = Talk(scene)
    for _ in range(4):
        talk.turn([], speaker=1)  # heard, nobody on screen
        talk.turn([b], speaker=None)  # b on screen, silence
    talk.settle()
    for _ in range(4):  # a speaks on screen; b is there too and never speaks
        talk.turn([a, b], speaker=2, sync={a: SPEAKS, b: SILENT})
    fa, fb, v1, v2 = talk.faces[a], talk.faces[b], talk.voices[1], talk.voices[2]
    assert scene.memory.characters() == [sorted([fa, v2])]
    assert scene.memory.character_of(v1) is None and scene.memory.character_of(fb) is None


def test_a_tie_is_undone_when_later_evidence_contradicts_it(scene: Scene) -> None:
    (a,) = people(scene, 1)
    talk = Talk(scene)
    for _ in range(3):
        talk.turn([a], speaker=1, sync={a: SPEAKS})
    (formed,) = scene.events("character.updated")
    for _ in range(3):  # the voice goes on while the face no longer moves with it: it was someone else
        talk.turn([a], speaker=1, sync={a: SILENT})
    assert scene.memory.characters() == []
    (dissolved,) = scene.events("character.updated")
    assert dissolved.data == {"character": formed.data["character"], "faces": [], "voices": [], "label": None}


def test_a_voice_ties_one_face_and_a_face_one_voice(scene: Scene) -> None:
    a, b = people(scene, 2)
    talk = Talk(scene)
    for _ in range(4):  # voice 1 moves a's lips and b's alike, each alone on screen in turn
        talk.turn([a], speaker=1, sync={a: SPEAKS})
        talk.leave(a)
        talk.turn([b], speaker=1, sync={b: SPEAKS})
        talk.leave(b)
    assert scene.memory.characters() == []  # two equally strong faces for one voice: no tie


def test_ties_and_character_ids_survive_a_restart(cfg: MemoryConfig, bank: FaceBank) -> None:
    clock = Clock()
    with Memory(cfg, clock=clock) as memory:
        scene = Scene(memory, clock, bank)
        a, b = people(scene, 2)
        talk = Talk(scene)
        for _ in range(3):
            talk.turn([b], speaker=2, sync={b: SPEAKS})
            talk.turn([a], speaker=1, sync={a: SPEAKS})
        before = list(memory.export_characters())
        last = scene.events()[-1].seq
    assert len(before) == 2
    with Memory(cfg, clock=clock) as memory:
        assert list(memory.export_characters()) == before
        scene = Scene(memory, clock, bank, seen_seq=last)
        talk = Talk(scene)
        talk.turn([a], speaker=1, sync={a: SPEAKS})  # the same people again: same nodes, same characters
        assert talk.faces[a] == before[1]["faces"][0] and talk.voices[1] == before[1]["voices"][0]
        assert list(memory.export_characters()) == [
            {**c, "last_seen": after["last_seen"]} for c, after in zip(before, memory.export_characters())
        ]
        assert scene.events("character.updated") == []


def test_an_unlinked_pair_is_never_tied_again_and_a_link_by_hand_stays(scene: Scene) -> None:
    (a,) = people(scene, 1)
    talk = Talk(scene)
    for _ in range(3):
        talk.turn([a], speaker=1, sync={a: SPEAKS})
    face, voice = talk.faces[a], talk.voices[1]
    assert face is not None and voice is not None
    scene.memory.unlink(face, voice)
    assert scene.memory.characters() == []
    for _ in range(6):
        talk.turn([a], speaker=1, sync={a: SPEAKS})
    assert scene.memory.characters() == []
    scene.memory.link(face, voice)  # by hand: evidence never undoes it
    for _ in range(4):
        talk.turn([a], speaker=1, sync={a: SILENT})
    assert scene.memory.characters() == [sorted([face, voice])]


def test_a_label_on_any_node_names_the_character(scene: Scene) -> None:
    (a,) = people(scene, 1)
    talk = Talk(scene)
    for _ in range(3):
        talk.turn([a], speaker=1, sync={a: SPEAKS})
    scene.events()
    voice = talk.voices[1]
    assert voice is not None
    scene.memory.label(voice, "Alice")
    (updated,) = scene.events("character.updated")
    assert updated.data["label"] == "Alice" and updated.data["voices"] == [voice]
    assert [c["label"] for c in scene.memory.export_characters()] == ["Alice"]


def test_characters_follow_merges_keeping_the_older_id(scene: Scene) -> None:
    a, b = people(scene, 2)
    talk = Talk(scene)
    for _ in range(3):
        talk.turn([a], speaker=1, sync={a: SPEAKS})
    for _ in range(3):
        talk.turn([b], speaker=2, sync={b: SPEAKS})
    fa, fb, v1, v2 = talk.faces[a], talk.faces[b], talk.voices[1], talk.voices[2]
    older, newer = (c["id"] for c in scene.memory.export_characters())
    scene.events()
    scene.memory.link(fa, v1)
    scene.memory.link(fb, v2)  # by hand, so that the merged face keeps both voices
    scene.memory.merge(fb, fa)  # the two faces were one person after all
    assert scene.memory.characters() == [sorted([fb, v1, v2])]
    (merged,) = scene.memory.export_characters()
    assert merged["id"] == older and merged["faces"] == [fb] and merged["voices"] == sorted([v1, v2])
    updates = {e.data["character"]: e.data for e in scene.events("character.updated")}
    assert updates[newer]["faces"] == [] and updates[older]["voices"] == sorted([v1, v2])
    assert {f["character"] for f in scene.memory.export_faces()} == {older}
    assert {v["character"] for v in scene.memory.export_voices()} == {older}
    assert scene.memory.nodes(NodeKind.FACE)[0].id == fb


def test_a_split_moves_the_evidence_with_its_tracks_and_the_tie_is_decided_again(scene: Scene) -> None:
    (a,) = people(scene, 1)
    talk = Talk(scene)
    for _ in range(2):
        talk.turn([a], speaker=1, sync={a: SPEAKS})
    first = talk.tracks[a]
    talk.leave(a)
    for _ in range(4):
        talk.turn([a], speaker=1, sync={a: SPEAKS})
    face, voice = talk.faces[a], talk.voices[1]
    assert scene.memory.characters() == [sorted([face, voice])]
    (character,) = scene.memory.export_characters()
    # the later track was someone else: its four turns go with it, the two left are too few to tie
    new = scene.memory.split(face, [talk.tracks[a]])  # type: ignore[arg-type]
    assert scene.memory.characters() == [sorted([new, voice])]
    (after,) = scene.memory.export_characters()
    assert after["id"] == character["id"] and after["faces"] == [new]
    assert scene.memory.node_of_track(first) == face and scene.memory.character_of(face) is None
