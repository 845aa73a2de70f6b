"""Memory graph: clips with episodic memories, presence, characters."""

from __future__ import annotations

import re

import pytest
from support.postgres import STORES
from support.scenario import START, Scene, evidence, voices

from memory import FaceObservation, Memory, MemoryGraphError, NodeKind
from memory.graph import clock_time

pytestmark = pytest.mark.parametrize("cfg", STORES, indirect=True)  # every test on an SQLite file and on PostgreSQL


def face_at(scene: Scene, t: float, stream: str = "door", track: int = 999_999) -> None:
    scene.memory.record_faces([FaceObservation(stream, track, t, scene.clock.now, (0, 0, 50, 60), 0.9, 20.0, "ortho")])


def test_closed_clip_gets_an_episodic_memory_naming_confirmed_people(scene: Scene) -> None:
    a, b, c = scene.bank.distinct()[:3]
    _, na = scene.show(a)
    _, nb = scene.show(b)
    _, provisional = scene.show(c, 1)
    _, elsewhere = scene.show(a, stream="hall")
    assert elsewhere == na
    scene.events()
    face_at(scene, scene.memory.cfg.interval_seconds + 1)  # clip 1 begins: clip 0 closes
    (closed,) = scene.events("clip.closed")
    assert closed.stream == "door" and closed.data["clip"] == 0 and closed.data["nodes"] == [na, nb]
    text = closed.data["text"]
    assert text == f"<face_{na}> and <face_{nb}> were seen in camera 'door' from {clock_time(closed.data['start'])} to {clock_time(closed.data['end'])}"
    assert f"<face_{provisional}>" not in text and re.search(r"from \d\d:\d\d:\d\d to \d\d:\d\d:\d\d$", text)
    assert closed.data["start"] == START and closed.data["end"] < scene.clock.now
    memory = closed.data["memory"]
    assert scene.memory.node(memory).kind == NodeKind.EPISODIC and scene.memory.text(memory) == text
    assert sorted(dst for _, dst, _ in scene.memory.edges(memory)) == [na, nb]
    assert [n.id for n in scene.memory.nodes(NodeKind.EPISODIC)] == [memory]
    (clip,) = scene.memory.clips("door")
    assert clip["index"] == 0 and clip["memory"] == memory and clip["text"] == text
    # the hall's clip is still open; ending the stream closes it
    scene.memory.end_stream("hall")
    (hall,) = scene.events("clip.closed")
    assert hall.stream == "hall" and hall.data["nodes"] == [na]


def test_edges_follow_a_merge(scene: Scene) -> None:
    a, b = scene.bank.distinct()[:2]
    _, na = scene.show(a)
    _, nb = scene.show(b)
    scene.memory.end_stream("door")
    (closed,) = scene.events("clip.closed")
    scene.memory.merge(na, nb)
    assert scene.memory.edges(closed.data["memory"]) == [(closed.data["memory"], na, 2.0)]


def test_presence_appears_once_and_leaves_after_absence(scene: Scene) -> None:
    a, b = scene.bank.distinct()[:2]
    _, na = scene.show(a)
    scene.show(a)
    appeared = scene.events("person.appeared")
    assert [(e.stream, e.data["node"]) for e in appeared] == [("door", na)]
    # b keeps the stream going while a is away
    for _ in range(3):
        _, nb = scene.show(b, 4, step=0.5)
        scene.memory.tick()
    events = scene.events()
    assert [(e.type, e.data["node"]) for e in events if e.type == "person.left"] == [("person.left", na)]
    scene.show(a)
    assert [e.data["node"] for e in scene.events("person.appeared")] == [na]
    scene.memory.end_stream("door")
    assert sorted(e.data["node"] for e in scene.events("person.left")) == sorted([na, nb])


def test_presence_goes_on_across_a_restart(scene: Scene) -> None:
    """Reopened after a crash (the first memory never closes: only committed state is there), the
    memory still knows who is present: a person still in view is not announced again, one who went
    meanwhile leaves, each once."""
    a, b = scene.bank.distinct()[:2]
    _, na = scene.show(a)
    _, nb = scene.show(b, stream="hall")
    assert sorted((e.stream, e.data["node"]) for e in scene.events("person.appeared")) == [("door", na), ("hall", nb)]
    scene.memory = Memory(scene.memory.cfg, clock=scene.clock)
    scene.show(a)
    assert scene.events("person.appeared") == []
    scene.clock.now += scene.memory.cfg.absent_after_seconds / 2
    scene.show(a)
    scene.clock.now += scene.memory.cfg.absent_after_seconds / 2 + 0.5
    scene.memory.tick()
    assert [(e.stream, e.data["node"]) for e in scene.events("person.left")] == [("hall", nb)]
    scene.memory.end_stream("door")
    assert [(e.stream, e.data["node"]) for e in scene.events() if e.type.startswith("person.")] == [("door", na)]


def test_presence_ends_on_the_clock_when_a_stream_goes_quiet(scene: Scene) -> None:
    _, na = scene.show(scene.bank.distinct()[0])
    scene.events()
    scene.clock.now += scene.memory.cfg.absent_after_seconds + 1
    scene.memory.tick()
    assert [e.data["node"] for e in scene.events("person.left")] == [na]


def test_characters_join_faces_and_voices(scene: Scene) -> None:
    a, b = scene.bank.distinct()[:2]
    _, fa = scene.show(a)
    _, fb = scene.show(b)
    speakers = [
        scene.memory.identify_track(evidence("door", scene.memory.new_track_id(), 1.0, scene.clock.now, voices(s, 3)), kind=NodeKind.VOICE)
        for s in (1, 2)
    ]
    assert None not in speakers and speakers[0] != speakers[1]
    again = scene.memory.identify_track(evidence("door", scene.memory.new_track_id(), 2.0, scene.clock.now, voices(1, 4)), kind=NodeKind.VOICE)
    assert again == speakers[0]
    scene.memory.add_equivalence(fa, speakers[0])
    scene.memory.add_equivalence(fb, speakers[1])
    assert scene.memory.characters() == [sorted([fa, speakers[0]]), sorted([fb, speakers[1]])]
    scene.memory.merge(fa, fb)  # the two faces were one person: one character
    assert scene.memory.characters() == [sorted([fa, *speakers])]
    with pytest.raises(MemoryGraphError):
        scene.memory.add_equivalence(speakers[0], fa)


def test_a_clip_is_found_among_many(scene: Scene) -> None:
    """A clip's memories come from the store's one clip: the same clip as picking it out of all of the
    stream's, on a memory of many clips in two streams, each file analysed twice (the latest run's)."""
    memory = scene.memory
    for run in (0, 1):
        for stream in ("door", "hall"):
            for i in range(300):
                start = START + run * 100_000 + i * 30
                memory._store.add_clip(stream, i, i * 30.0, i * 30 + 29.5, start, start + 29.5)
    memory.flush()
    for stream, index in [("door", 0), ("door", 299), ("hall", 150)]:
        expected = [c for c in memory.clips(stream) if c["index"] == index]
        assert len(expected) == 2
        found = memory.clip_memories(stream, index)
        assert found is not None and {k: found[k] for k in expected[-1]} == expected[-1]
        assert found["start_wall"] == START + 100_000 + index * 30  # the second run's
        assert (found["episodic"], found["semantic"], found["faces"], found["voices"], found["turns"]) == ([], [], [], [], [])
    assert memory.clip_memories("door", 300) is None and memory.clip_memories("porch", 0) is None
