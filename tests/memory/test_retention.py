"""Retention on a real file: old history goes (clips, memories, verdicts, events), who somebody is stays."""

from __future__ import annotations

from dataclasses import replace

import pytest
from support.postgres import STORES
from support.scenario import Clock, Scene
from support.talk import Talk

from memory import Memory, MemoryConfig, NodeKind, NodeNotFound
from support.realfaces import FaceBank

pytestmark = pytest.mark.parametrize("cfg", STORES, indirect=True)

SPEAKS = 0.3
DAY = 86400.0


def next_clip(scene: Scene, stream: str = "door") -> None:
    """Stream time moves into the next clip (a stray face far off closes the open one)."""
    interval = scene.memory.cfg.interval_seconds
    scene.stream_t[stream] = (scene.stream_t.get(stream, 0.0) // interval + 1) * interval + 0.5
    scene.show(scene.bank.distinct()[5], 1, stream=stream)


def rows(memory: Memory, sql: str) -> list[tuple[object, ...]]:
    """What the store holds once everything pending is committed."""
    memory.flush()
    return [tuple(r) for r in memory._store.db.execute(sql).fetchall()]


def past_retention(scene: Scene) -> None:
    """A retention period and an hour go by: the next tick prunes what came before."""
    scene.clock.now += scene.memory.cfg.retention_days * DAY + 3600


def test_old_clips_and_their_memories_go_facts_about_people_still_around_stay(scene: Scene) -> None:
    a, b = scene.bank.distinct()[:2]
    talk = Talk(scene)
    for _ in range(3):
        talk.turn([a, b], speaker=None)
        next_clip(scene)
    fa, fb = talk.faces[a], talk.faces[b]
    scene.memory.label(fa, "Alice")
    old_clips = [c["id"] for c in scene.memory.clips("door")]
    old_texts = {n.id for n in scene.memory.nodes(NodeKind.EPISODIC)}
    about_b = [m for m, t in rows(scene.memory, f"SELECT node_id, key FROM text_nodes WHERE key = '<face_{fb}>:seen'")]
    assert len(old_clips) >= 3 and old_texts and about_b
    scene.show(scene.bank.distinct()[6], 2, good=False)  # a passer-by: a track of faces too poor to make anyone
    old_tracks = {t for (t,) in rows(scene.memory, "SELECT id FROM tracks")}
    past_retention(scene)
    talk.leave(a)
    talk.turn([a], speaker=None)  # Alice comes back; Bob was last seen a retention period ago
    next_clip(scene)
    scene.clock.now += 120
    scene.memory.tick()

    clips = scene.memory.clips("door")
    assert clips and not {c["id"] for c in clips} & set(old_clips)
    assert rows(scene.memory, "SELECT COUNT(*) FROM clips WHERE end_wall < (SELECT MIN(start_wall) FROM clips)") == [(0,)]
    episodic = {n.id for n in scene.memory.nodes(NodeKind.EPISODIC)}
    assert episodic and not episodic & old_texts  # the new clip's memory is there, the old ones are not
    for node_id in old_texts | set(about_b):
        with pytest.raises(NodeNotFound):
            scene.memory.text(node_id)
    gone = ", ".join(map(str, old_texts | set(about_b)))
    assert rows(scene.memory, f"SELECT COUNT(*) FROM edges WHERE src IN ({gone}) OR dst IN ({gone})") == [(0,)]
    if scene.memory._store.db.sqlite:  # (PostgreSQL's word index is a column of the rows themselves)
        assert rows(scene.memory, f"SELECT COUNT(*) FROM memory_fts WHERE rowid IN ({', '.join(map(str, old_texts))})") == [(0,)]
    facts = {t for (t,) in rows(scene.memory, "SELECT t.text FROM text_nodes t JOIN nodes n ON n.id = t.node_id WHERE n.kind = 'semantic'")}
    assert f"<face_{fa}> is Alice" in facts
    assert any(f.startswith(f"<face_{fa}> has been seen in 1 clip over 1 day") for f in facts)  # counted anew
    assert not any(f.startswith(f"<face_{fb}> has been seen") for f in facts)
    # who they are stays: both faces, Alice's label, Bob's crops, and the tracks their embeddings and crops come from
    assert scene.memory.node(fa).label == "Alice" and scene.memory.crops(fb)
    kept = {t for (t,) in rows(scene.memory, "SELECT id FROM tracks")} & old_tracks
    named = {t for (t,) in rows(scene.memory, "SELECT track_id FROM embeddings UNION SELECT track_id FROM crops "
                                              "UNION SELECT turn_id FROM turn_faces UNION SELECT face_track FROM turn_faces")}  # fmt: skip
    assert kept == old_tracks & named and old_tracks - kept  # the other old tracks went


def test_old_verdicts_leave_the_file_and_the_characters_they_made_stay(cfg: MemoryConfig, bank: FaceBank) -> None:
    clock = Clock()
    with Memory(cfg, clock=clock) as memory:
        scene = Scene(memory, clock, bank)
        (a,) = bank.distinct()[:1]
        talk = Talk(scene)
        for _ in range(memory.cfg.character_tie_min_turns + 1):
            talk.turn([a], speaker=1, sync={a: SPEAKS})
        talk.settle()
        before = list(memory.export_characters())
        counts = {pair: replace(c) for pair, c in memory._evidence.counts.items()}
        old_verdicts = rows(memory, "SELECT COUNT(*) FROM turn_faces")[0][0]
        assert len(before) == 1 and counts and old_verdicts >= memory.cfg.character_tie_min_turns
        past_retention(scene)
        recent = talk.turn([a], speaker=1, sync={a: SPEAKS})  # one turn within retention
        talk.settle()
        clock.now += 120
        memory.tick()
        assert rows(memory, "SELECT turn_id FROM turn_faces") == [(recent,)]
        assert memory._evidence.counts.keys() == counts.keys()
        assert [c.wins for c in memory._evidence.counts.values()] == [c.wins + 1 for c in counts.values()]
        assert list(memory.export_characters())[0]["faces"] == before[0]["faces"]
        last = scene.events()[-1].seq
        after = {pair: replace(c) for pair, c in memory._evidence.counts.items()}
    with Memory(cfg, clock=clock) as memory:  # a restart counts the folded verdicts with the stored ones
        assert memory._evidence.counts == after
        assert [(c["faces"], c["voices"]) for c in memory.export_characters()] == [(before[0]["faces"], before[0]["voices"])]
        scene = Scene(memory, clock, bank, seen_seq=last)
        talk = Talk(scene)
        talk.turn([a], speaker=1, sync={a: SPEAKS})
        talk.settle()
        assert scene.events("character.updated") == []


def test_published_events_past_retention_go_unpublished_ones_stay(scene: Scene) -> None:
    a, b = scene.bank.distinct()[:2]
    scene.show(a)
    scene.memory.flush()
    published = rows(scene.memory, "SELECT MAX(seq) FROM events")[0][0]
    scene.memory.mark_published(published)
    scene.show(b, hard=True)  # stored, never published (the broker was away)
    scene.memory.flush()
    waiting = [s for (s,) in rows(scene.memory, f"SELECT seq FROM events WHERE seq > {published}")]
    assert published and waiting
    past_retention(scene)
    scene.clock.now += 120
    scene.memory.tick()
    kept = [s for (s,) in rows(scene.memory, "SELECT seq FROM events")]
    assert kept[: len(waiting)] == waiting  # (then what the tick itself announced: people left)
    assert scene.memory.events_after(published, 100)[0].seq == waiting[0]
