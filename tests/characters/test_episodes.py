"""Episodic memories per clip (who was there, together, who said what) and semantic memories."""

from __future__ import annotations

from support.scenario import Scene
from support.talk import Talk

from memory import FaceObservation, NodeKind

SPEAKS = 0.3


def next_clip(scene: Scene, stream: str = "door") -> None:
    """Stream time moves into the next clip (a face far off closes the open one)."""
    interval = scene.memory.cfg.interval_seconds
    scene.stream_t[stream] = (scene.stream_t.get(stream, 0.0) // interval + 1) * interval + 0.5
    scene.memory.record_faces([FaceObservation(stream, 999_999, scene.stream_t[stream], scene.clock.now, (0, 0, 9, 9), 0.9, None, "ortho")])


def test_a_clip_names_who_was_there_together_and_quotes_who_said_what(scene: Scene) -> None:
    a, b = scene.bank.distinct()[:2]
    talk = Talk(scene)
    talk.turn([a, b], speaker=1, sync={a: SPEAKS, b: 0.0}, text="Good morning.")
    talk.turn([a, b], speaker=1, sync={a: SPEAKS, b: 0.0}, text="Shall we start?")
    talk.turn([a, b], speaker=1, sync={a: SPEAKS, b: 0.0}, text="  Let's go.  ")
    talk.turn([], speaker=2, seconds=7.0, text="The weather is fine.")  # somebody off screen, at length
    scene.memory.end_stream("door")
    fa, fb, v1, v2 = talk.faces[a], talk.faces[b], talk.voices[1], talk.voices[2]
    (character,) = scene.memory.export_characters()
    alice = f"<character_{character['id']}>"
    assert character["faces"] == [fa] and character["voices"] == [v1]
    (closed,) = scene.events("clip.closed")
    texts = [m["text"] for m in closed.data["memories"]]
    assert texts[0].startswith(f"{alice} and <face_{fb}> were seen and <voice_{v2}> was heard in camera 'door' from ")
    assert texts[1:] == [
        f"{alice} and <face_{fb}> were together in camera 'door'",
        f'{alice} says: "Good morning."',
        f'{alice} says: "Shall we start?"',
        f'{alice} says: "Let\'s go."',
        f'<voice_{v2}> says: "The weather is fine."',
    ]
    assert closed.data["text"] == texts[0] and closed.data["memory"] == closed.data["memories"][0]["id"]
    nodes = [sorted(m["nodes"]) for m in closed.data["memories"]]
    assert nodes == [sorted([fa, fb, v1, v2]), sorted([fa, fb]), [v1], [v1], [v1], [v2]]
    for m in closed.data["memories"]:  # every memory is a text node linked to the nodes it names
        assert scene.memory.node(m["id"]).kind == NodeKind.EPISODIC and scene.memory.text(m["id"]) == m["text"]
        assert sorted(dst for _, dst, _ in scene.memory.edges(m["id"])) == sorted(m["nodes"])
    # from a person to what they said
    said = [scene.memory.text(src) for src, dst, _ in scene.memory.edges(v1) if dst == v1]
    assert f'{alice} says: "Shall we start?"' in said


def test_a_quote_transcribed_after_its_clip_closed_is_added_to_that_clip(scene: Scene) -> None:
    (a,) = scene.bank.distinct()[:1]
    talk = Talk(scene)
    talk.turn([a], speaker=1, text="On time.")
    late = talk.turn([a], speaker=1)  # the recogniser is behind: no text yet
    silent = talk.turn([a], speaker=1)
    next_clip(scene)
    (closed,) = scene.events("clip.closed")
    v1 = talk.voices[1]
    assert [m["text"] for m in closed.data["memories"]][1:] == [f'<voice_{v1}> says: "On time."']
    assert late is not None and silent is not None
    scene.memory.transcribed(late, "Sorry, I was late.")
    scene.memory.transcribed(silent, None)  # dropped by the recogniser: nothing to add
    clip = scene.memory.clip_memories("door", 0)
    assert clip is not None
    assert [text for _, text, _ in clip["episodic"]][1:] == [f'<voice_{v1}> says: "On time."', f'<voice_{v1}> says: "Sorry, I was late."']
    assert clip["episodic"][-1][2] == [v1]
    assert [(round(t0, 1), v, text) for t0, _, v, text in clip["turns"]] == [
        (0.0, v1, "On time."), (3.5, v1, "Sorry, I was late."), (7.0, v1, None)]  # fmt: skip
    assert clip["faces"] == [talk.faces[a]] and clip["voices"] == [v1]


def test_semantic_memories_follow_the_graph(scene: Scene) -> None:
    a, b, c = scene.bank.distinct()[:3]
    talk = Talk(scene)
    for clip in range(3):
        talk.turn([a, b], speaker=None)
        if clip == 0:
            talk.turn([c], speaker=None)
        next_clip(scene)
    fa, fb, fc = talk.faces[a], talk.faces[b], talk.faces[c]
    scene.memory.label(fa, "Alice")
    texts = {text for _, text in scene.memory.clip_memories("door", 2)["semantic"]}  # type: ignore[index]
    assert f"<face_{fa}> is Alice" in texts
    assert f"<face_{fa}> is regularly seen with <face_{fb}> (3 of 3 clips)" in texts
    assert f"<face_{fb}> is regularly seen with <face_{fa}> (3 of 3 clips)" in texts
    assert not any(f"<face_{fc}>" in t for t in texts)  # c was there once: no regular company
    seen = [t for t in texts if t.startswith(f"<face_{fa}> has been seen in 3 clips over 1 day")]
    assert seen and "most often in camera 'door' (3 of 3)" in seen[0]
    # one node per fact, rewritten as evidence grows: a fourth clip updates, it does not add
    before = len(scene.memory.nodes(NodeKind.SEMANTIC))
    talk.turn([a, b], speaker=None)
    next_clip(scene)
    texts = {text for _, text in scene.memory.clip_memories("door", 3)["semantic"]}  # type: ignore[index]
    assert f"<face_{fa}> is regularly seen with <face_{fb}> (4 of 4 clips)" in texts
    assert len(scene.memory.nodes(NodeKind.SEMANTIC)) == before
