"""Voice identities from speech turns: the face machinery with kind voice, plus turns and transcripts."""

from __future__ import annotations

import sqlite3

import pytest
from support.realfaces import FaceBank
from support.scenario import Clock, Scene

from memory import Memory, MemoryConfig, MemoryGraphError, NodeKind, NodeStatus, SpeechTurn
from memory.schema import SCHEMA_VERSION


def test_two_voices_make_two_voice_nodes_and_a_voice_heard_again_makes_none(scene: Scene) -> None:
    nodes = [scene.speak(s, 3.0)[1] for s in (1, 2, 1, 2, 1)]
    assert None not in nodes and nodes[0] == nodes[2] == nodes[4] != nodes[1] == nodes[3]
    created = scene.events("node.created")
    assert [(e.data["node"], e.data["kind"]) for e in created] == [(nodes[0], "voice"), (nodes[1], "voice")]
    assert [n.id for n in scene.memory.nodes(NodeKind.VOICE)] == sorted(set(nodes))
    assert scene.memory.nodes(NodeKind.FACE) == []
    exported = {n["id"]: n for n in scene.memory.export_nodes()}
    assert exported[nodes[0]]["kind"] == "voice" and exported[nodes[0]]["tag"] == f"<voice_{nodes[0]}>"
    assert exported[nodes[0]]["n_tracks"] == 3 and exported[nodes[0]]["n_observations"] == 3
    assert exported[nodes[0]]["n_embeddings"] == 3 and exported[nodes[0]]["status"] == "confirmed"


def test_turns_that_are_not_good_match_but_never_create_or_reshape(scene: Scene) -> None:
    turn, node = scene.speak(1, 0.6, good=False)
    assert node is None and scene.memory.node_of_track(turn) is None
    assert scene.events("node.created") == []
    _, known = scene.speak(1, 3.0)
    assert known is not None
    before = scene.memory.node(known)
    turn, matched = scene.speak(1, 0.6, good=False)
    assert matched == known == scene.memory.node_of_track(turn)
    after = scene.memory.node(known)
    assert after.n_embeddings == before.n_embeddings and after.n_observations == before.n_observations + 1
    assert scene.speak(2, 0.8, good=False)[1] is None  # a stranger's short turn
    # a turn too short to embed is kept, without an identity
    unembedded, none = scene.speak(1, 0.3, good=False, embedded=False)
    assert none is None and scene.memory.node_of_track(unembedded) is None
    assert [v["node"] for v in scene.memory.export_voices()] == [None, known, known, None, None]
    assert len(scene.memory.nodes(NodeKind.VOICE)) == 1
    with pytest.raises(ValueError, match="needs an embedding"):
        SpeechTurn("door", 1, 0.0, 2.0, 0.0, None, True)


def test_a_voice_is_confirmed_by_enough_speech_over_two_turns_or_one_long_turn(scene: Scene) -> None:
    cfg = scene.memory.cfg
    _, node = scene.speak(1, cfg.voice_confirm_speech_seconds - 1.0)
    assert scene.memory.node(node).status == NodeStatus.PROVISIONAL
    short, same = scene.speak(1, 0.5, good=False)  # matched, but it is no good speech
    assert same == node and scene.memory.node(node).status == NodeStatus.PROVISIONAL
    scene.speak(1, 1.0)
    assert scene.memory.node(node).status == NodeStatus.CONFIRMED
    types = [e.type for e in scene.events() if e.data.get("node") == node]
    assert types.index("node.confirmed") < types.index("person.appeared")
    _, long_one = scene.speak(2, cfg.voice_confirm_long_turn_seconds)
    assert scene.memory.node(long_one).status == NodeStatus.CONFIRMED
    _, one_turn = scene.speak(3, cfg.voice_confirm_long_turn_seconds - 1.0)
    assert scene.memory.node(one_turn).status == NodeStatus.PROVISIONAL


def test_a_provisional_voice_waits_longer_than_a_face_then_expires(scene: Scene) -> None:
    turn, node = scene.speak(1, 2.0)
    scene.clock.now += scene.memory.cfg.provisional_ttl_seconds + 1  # a face would be gone by now
    scene.memory.tick()
    assert scene.memory.node(node).status == NodeStatus.PROVISIONAL
    scene.clock.now += scene.memory.cfg.voice_provisional_ttl_seconds
    scene.memory.tick()
    assert scene.memory.node(node).status == NodeStatus.EXPIRED and scene.memory.node_of_track(turn) is None
    assert [(e.data["node"], e.data["kind"]) for e in scene.events("node.expired")] == [(node, "voice")]
    assert [v["node"] for v in scene.memory.export_voices()] == [None]


def test_speech_events_carry_the_node_the_db_holds_and_commit_with_the_text(scene: Scene) -> None:
    a1, node_a = scene.speak(1, 3.0)
    b1, node_b = scene.speak(2, 3.0)
    short, _ = scene.speak(3, 0.4, good=False, embedded=False)
    scene.events()
    scene.memory.transcribed(a1, "hello there")
    scene.memory.transcribed(short, None)
    assert scene.memory.events_after(scene.seen_seq) == []  # not committed yet: nor is the text
    with sqlite3.connect(scene.memory.cfg.db) as db:
        assert db.execute("SELECT COUNT(*) FROM speech_turns WHERE text IS NOT NULL").fetchone() == (0,)
    scene.memory.merge(node_b, node_a)  # the DB now holds node_b for the first turn
    scene.memory.transcribed(b1, "hi")
    speech = scene.events("speech")
    with sqlite3.connect(scene.memory.cfg.db) as db:
        held = dict(db.execute("SELECT s.track_id, t.node_id FROM speech_turns s JOIN tracks t ON t.id = s.track_id"))
        texts = dict(db.execute("SELECT track_id, text FROM speech_turns"))
    assert [(e.stream, e.data["turn"], e.data["node"], e.data["text"]) for e in speech] == [
        ("door", a1, node_a, "hello there"), ("door", short, None, None), ("door", b1, node_b, "hi")]  # fmt: skip
    assert held[a1] == held[b1] == node_b and texts == {a1: "hello there", b1: "hi", short: None}
    first = speech[0].data
    assert (first["t_start"], first["t_end"]) == (0.0, 3.0)
    with pytest.raises(MemoryGraphError, match="no speech turn"):
        scene.memory.transcribed(99_999, "who?")


def test_export_voices_format(scene: Scene) -> None:
    scene.advance(4.0)
    turn, node = scene.speak(1, 2.5, stream="door")
    scene.memory.transcribed(turn, "good morning")
    scene.speak(2, 0.5, stream="hall", good=False, embedded=False)
    voices = list(scene.memory.export_voices())
    assert voices == [
        {"stream": "door", "t_start": 4.0, "t_end": 6.5, "wall_time": pytest.approx(1_700_000_004.0), "node": node,
         "character": None, "text": "good morning"},
        {"stream": "hall", "t_start": 0.0, "t_end": 0.5, "wall_time": pytest.approx(1_700_000_007.0), "node": None,
         "character": None, "text": None},
    ]  # fmt: skip


def test_voice_reclustering_merges_a_duplicate_voice_and_keeps_speakers_apart(scene: Scene) -> None:
    turns = {s: [scene.speak(s, 3.0)[0] for _ in range(3)] for s in (1, 2)}  # one voice each
    scene.memory.cfg.audio_matching_threshold = 0.95  # then online matching too strict: every turn its own voice
    for s in (1, 2):
        turns[s] += [scene.speak(s, 3.0)[0] for _ in range(3)]
    lone = [scene.speak(3, 3.0)[0] for _ in range(2)]  # a third speaker, heard twice
    before = {s: {scene.memory.node_of_track(t) for t in ts} for s, ts in turns.items()}
    assert all(len(nodes) == 4 for nodes in before.values())
    scene.events()
    scene.memory.recluster(NodeKind.VOICE)
    after = {s: {scene.memory.node_of_track(t) for t in ts} for s, ts in turns.items()}
    assert all(len(nodes) == 1 for nodes in after.values()) and after[1] != after[2]
    merged = scene.events("node.merged")
    assert merged and all(e.data["kind"] == "voice" and e.data["manual"] is False for e in merged)
    assert {scene.memory.resolve(old) for e in merged for old in e.data["from"]} == after[1] | after[2]
    # the turns moved with their voice
    lone_nodes = {scene.memory.node_of_track(t) for t in lone}
    assert {v["node"] for v in scene.memory.export_voices()} == after[1] | after[2] | lone_nodes
    # two voices of one turn each: no voice holds enough turns to measure how alike its own turns are
    assert len(lone_nodes) == 2
    assert len(scene.memory.nodes(NodeKind.VOICE)) == 4


def test_tick_reclusters_voices_from_their_own_buffer(scene: Scene, bank: FaceBank) -> None:
    scene.memory.cfg.voice_recluster.every_faces = 10
    scene.memory.cfg.recluster.every_faces = 1_000  # faces are not due
    _, face = scene.show(bank.distinct()[0], 4)
    turns = [scene.speak(s, 3.0)[0] for s in (1, 2) * 3]
    scene.memory.cfg.audio_matching_threshold = 0.95
    turns += [scene.speak(s, 3.0)[0] for s in (1, 2) * 2]
    assert len({scene.memory.node_of_track(t) for t in turns}) == 6
    scene.memory.tick()
    assert len({scene.memory.node_of_track(t) for t in turns[0::2]}) == len({scene.memory.node_of_track(t) for t in turns[1::2]}) == 1
    merged = scene.events("node.merged")
    assert len(merged) == 4 and all(e.data["kind"] == "voice" for e in merged)
    assert [n.id for n in scene.memory.nodes(NodeKind.FACE)] == [face]


def test_splitting_a_voice_moves_its_turns(scene: Scene) -> None:
    scene.memory.cfg.audio_matching_threshold = 0.01  # online matching too loose: two speakers, one voice
    a = [scene.speak(1, 3.0)[0] for _ in range(3)]
    b = [scene.speak(2, 3.0)[0] for _ in range(3)]
    (node,) = {scene.memory.node_of_track(t) for t in a + b}
    scene.events()
    new = scene.memory.split(node, b)
    (split,) = scene.events("node.split")
    assert split.data["kind"] == "voice" and split.data["into"] == [new] and split.data["tracks"] == sorted(b)
    assert [v["node"] for v in scene.memory.export_voices()] == [node] * 3 + [new] * 3
    assert scene.memory.node(new).n_observations == 3 and scene.memory.node(node).n_observations == 3
    assert scene.memory.node(new).n_embeddings == 3 and scene.memory.node(new).kind == NodeKind.VOICE
    scene.memory.cfg.audio_matching_threshold = MemoryConfig().audio_matching_threshold  # back to the default
    assert scene.speak(2, 2.0)[1] == new


def test_voices_and_turns_survive_a_restart(cfg: MemoryConfig, bank: FaceBank) -> None:
    clock = Clock()
    with Memory(cfg, clock=clock) as memory:
        scene = Scene(memory, clock, bank)
        turn, first = scene.speak(1, 3.0)
        memory.transcribed(turn, "before the restart")
        _, second = scene.speak(2, 7.0)
        before = {n.id: n for n in memory.nodes(NodeKind.VOICE)}
        turns = list(memory.export_voices())
    with Memory(cfg, clock=clock) as memory:
        scene = Scene(memory, clock, bank)
        assert {n.id: n for n in memory.nodes(NodeKind.VOICE)} == before
        assert list(memory.export_voices()) == turns and turns[0]["text"] == "before the restart"
        assert [scene.speak(s, 3.0)[1] for s in (1, 2)] == [first, second]
        assert scene.speak(3, 3.0)[1] not in (first, second)


def test_a_version_1_db_is_migrated_and_keeps_its_data(cfg: MemoryConfig, bank: FaceBank) -> None:
    clock = Clock()
    with Memory(cfg, clock=clock) as memory:
        _, face = Scene(memory, clock, bank).show(bank.distinct()[0])
        memory.flush()
        faces = list(memory.export_faces())
        events = memory.events_after(0)
    with sqlite3.connect(cfg.db) as db:  # the layout of schema version 1: no speech turns, no characters, no text search yet
        for statement in ("DROP INDEX clips_stream_idx", "DROP INDEX clips_text_node", "DROP TABLE pair_evidence", "DROP INDEX clips_end_wall", "DROP TABLE voice_snippets", "DROP TABLE model_memories", "DROP TABLE text_vectors", "DROP TABLE memory_fts", "DROP TABLE speech_fts", "DROP TRIGGER presence_event", "DROP TABLE presence",
                          "DROP INDEX tracks_last_wall", *(f"DROP TRIGGER memory_fts_{t}" for t in ("insert", "update", "delete")),
                          "DROP TABLE speech_turns", "DROP TABLE turn_faces", "DROP TABLE characters",
                          "DROP INDEX text_nodes_key", "ALTER TABLE text_nodes DROP COLUMN key",
                          "ALTER TABLE equivalences DROP COLUMN manual"):  # fmt: skip
            db.execute(statement)
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with Memory(cfg, clock=clock) as memory:
        assert list(memory.export_faces()) == faces and memory.events_after(0) == events
        assert memory.node(face).status == NodeStatus.CONFIRMED
        scene = Scene(memory, clock, bank, seen_seq=events[-1].seq)
        assert scene.show(bank.distinct()[0], 2, hard=True)[1] == face
        turn, voice = scene.speak(1, 3.0)
        assert voice is not None and [v["node"] for v in memory.export_voices()] == [voice]
    with sqlite3.connect(cfg.db) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_speech_keeps_a_clip_open_and_its_memory_names_the_voices_heard(scene: Scene) -> None:
    a = scene.bank.distinct()[0]
    _, face = scene.show(a)
    _, voice = scene.speak(1, 8.0)
    interval = scene.memory.cfg.interval_seconds
    scene.stream_t["door"] = interval - 2.0
    scene.speak(9, 4.0, good=False, embedded=False)  # unknown speech across the clip boundary closes clip 0
    (closed,) = scene.events("clip.closed")
    assert closed.data["nodes"] == [face, voice]
    assert closed.data["text"].startswith(f"<face_{face}> was seen and <voice_{voice}> was heard in camera 'door'")
    (clip,) = scene.memory.clips("door")
    assert clip["last_t"] == interval - 2.0  # the turn's start still counted in clip 0


def test_a_voice_is_present_between_turns_and_leaves_after_its_own_absence(scene: Scene) -> None:
    _, voice = scene.speak(1, 7.0)
    appeared = [e for e in scene.events("person.appeared") if e.data["node"] == voice]
    assert [(e.data["kind"], e.data["t"]) for e in appeared] == [("voice", 0.0)]
    pause = scene.memory.cfg.absent_after_seconds + 2.0  # a face would have left by now
    scene.advance(pause)
    scene.clock.now -= pause  # the stream's time passes, the clock does not time it out either
    scene.speak(1, 2.0)
    scene.memory.tick()
    assert scene.events("person.left") == [] and scene.events("person.appeared") == []
    scene.advance(scene.memory.cfg.voice_absent_after_seconds + 1)
    scene.memory.tick()
    assert [(e.data["node"], e.data["kind"]) for e in scene.events("person.left")] == [(voice, "voice")]


def test_retention_prunes_old_turns(scene: Scene) -> None:
    _, old = scene.speak(1, 3.0)
    scene.clock.now += scene.memory.cfg.retention_days * 86400 - 60
    _, recent = scene.speak(1, 3.0)
    scene.clock.now += 120
    scene.memory.tick()
    assert [v["node"] for v in scene.memory.export_voices()] == [recent] and recent == old
    assert scene.memory.node(old).status == NodeStatus.CONFIRMED

