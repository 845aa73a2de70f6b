"""Storage: restarts, crashes, the outbox, retention, exports, foreign files (what does not depend on
SQLite's file on both stores)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support.postgres import STORES
from support.realfaces import FaceBank
from support.scenario import Clock, Scene

from memory import FaceObservation, Memory, MemoryConfig, NodeStatus, StoreError
from memory.core import PRUNE_EVERY_SECONDS
from memory.database import open_database

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("cfg", STORES, indirect=True)
def test_identities_survive_a_restart(cfg: MemoryConfig, bank: FaceBank) -> None:
    people = bank.distinct()[:6]
    clock = Clock()
    with Memory(cfg, clock=clock) as memory:
        scene = Scene(memory, clock, bank)
        nodes = [scene.show(p)[1] for p in people]
        memory.label(nodes[0], "Ana")
        last_track = memory.new_track_id()
        before = {n.id: n for n in memory.nodes()}
    with Memory(cfg, clock=clock) as memory:
        scene = Scene(memory, clock, bank)
        assert {n.id: n for n in memory.nodes()} == before
        assert [scene.show(p, 2, hard=True)[1] for p in people] == nodes
        assert memory.node(nodes[0]).label == "Ana" and memory.node(nodes[1]).status == NodeStatus.CONFIRMED
        assert memory.new_track_id() > last_track
        assert scene.show(bank.distinct()[7])[1] not in nodes


@pytest.mark.parametrize("cfg", STORES, indirect=True)
def test_events_are_contiguous_and_monotonic_across_restarts(cfg: MemoryConfig, bank: FaceBank) -> None:
    clock = Clock()
    seqs = []
    for round_ in range(3):
        with Memory(cfg, clock=clock) as memory:
            scene = Scene(memory, clock, bank, seen_seq=seqs[-1] if seqs else 0)
            scene.show(bank.distinct()[round_])
            seqs += [e.seq for e in scene.events()]
            memory.mark_published(seqs[-1])
    assert seqs == list(range(1, len(seqs) + 1))
    with Memory(cfg, clock=clock) as memory:
        assert memory.published_seq() == seqs[-1]
        assert [e.seq for e in memory.events_after(0)] == seqs
        assert len({e.id for e in memory.events_after(0)}) == len(seqs)  # uuids are unique
        assert [e.seq for e in memory.events_after(seqs[2], limit=2)] == seqs[3:5]


@pytest.mark.parametrize("cfg", STORES, indirect=True)
def test_only_committed_events_are_readable(scene: Scene) -> None:
    scene.memory.cfg.flush_every_seconds = 10.0
    scene.memory.new_track_id()  # the first one reserves a block of ids and commits
    scene.memory.flush()
    last = scene.memory.events_after(0)
    scene.show(scene.bank.distinct()[0])  # creates a node: events wait in the open batch
    assert scene.memory.events_after(0) == last
    scene.memory.tick()  # not due yet
    assert scene.memory.events_after(0) == last
    scene.clock.now += scene.memory.cfg.flush_every_seconds
    scene.memory.tick()
    assert [e.type for e in scene.memory.events_after(0)][:2] == ["node.created", "node.confirmed"]


@pytest.mark.parametrize("content", [b"hello, not a database" * 100, b""])
def test_a_file_that_is_not_a_memory_db_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.db"
    path.write_bytes(content)
    if not content:  # an empty file is a fresh database
        Memory(MemoryConfig(db=str(path))).close()
        return
    with pytest.raises(StoreError, match="not a memory database") as info:
        Memory(MemoryConfig(db=str(path)))
    assert "\n" not in str(info.value)


def test_another_applications_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE songs (title TEXT)")
    with pytest.raises(StoreError, match="another application"):
        Memory(MemoryConfig(db=str(path)))
    with sqlite3.connect(path) as db:  # and it is left untouched
        assert db.execute("SELECT name FROM sqlite_master").fetchall() == [("songs",)]


def test_a_newer_schema_is_refused(cfg: MemoryConfig) -> None:
    Memory(cfg).close()
    with sqlite3.connect(cfg.db) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="schema version 99"):
        Memory(cfg)


@pytest.mark.parametrize("cfg", STORES, indirect=True)
def test_retention_prunes_old_observations_but_keeps_nodes_and_crops(scene: Scene) -> None:
    a, b = scene.bank.distinct()[:2]
    _, old = scene.show(a)
    scene.clock.now += scene.memory.cfg.retention_days * 86400 - 60
    _, recent = scene.show(b)
    assert len(list(scene.memory.export_faces())) == 8
    scene.clock.now += 120
    scene.memory.tick()  # longer than PRUNE_EVERY_SECONDS since the last run: retention is due
    assert scene.clock.now - 120 - scene.memory.cfg.retention_days * 86400 > -PRUNE_EVERY_SECONDS
    faces = list(scene.memory.export_faces())
    assert [f["node"] for f in faces] == [recent] * 4
    assert scene.memory.node(old).status == NodeStatus.CONFIRMED and scene.memory.crops(old)
    assert scene.show(a, 2, hard=True)[1] == old


@pytest.mark.parametrize("cfg", STORES, indirect=True)
def test_export_formats(scene: Scene) -> None:
    a = scene.bank.distinct()[0]
    track, node = scene.show(a, 2)
    scene.show(a, 1, good=False, track_id=scene.memory.new_track_id())  # matched, so it has a node
    stray = scene.memory.new_track_id()
    scene.memory.record_faces([FaceObservation("hall", stray, 3.5, 1.7e9, (1, 2, 30, 44), 0.55, None, "side")])
    faces = list(scene.memory.export_faces())
    assert all(set(f) == {"stream", "t", "wall_time", "bbox", "det_score", "quality", "face_type", "node", "character"} for f in faces)
    assert faces[-1] == {"stream": "hall", "t": 3.5, "wall_time": 1.7e9, "bbox": [1, 2, 30, 44], "det_score": 0.55,
                         "quality": None, "face_type": "side", "node": None, "character": None}  # fmt: skip
    assert [f["node"] for f in faces[:-1]] == [node] * 3
    (exported,) = list(scene.memory.export_nodes())
    # three observations over half a second of stream time: seen enough to be confirmed
    assert exported["id"] == node and exported["kind"] == "face" and exported["status"] == "confirmed"
    assert exported["streams"] == ["door"] and exported["n_observations"] == 3 and exported["n_tracks"] == 2
    assert exported["n_embeddings"] == 2 and exported["first_seen"] <= exported["last_seen"]


WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    from memory import FaceObservation, Memory, MemoryConfig, TrackEvidence
    rng = np.random.default_rng(0)
    clock = [1.7e9]
    memory = Memory(MemoryConfig(db=sys.argv[1], flush_every_seconds=0.5), clock=lambda: clock[0])
    t = 0.0
    while True:
        track = memory.new_track_id()
        centre = rng.standard_normal(512)
        for _ in range(5):
            t += 0.1
            clock[0] += 0.1
            e = centre + 0.3 * rng.standard_normal((1, 512))
            e = (e / np.linalg.norm(e)).astype(np.float32)
            memory.record_faces([FaceObservation("door", track, t, clock[0], (0, 0, 9, 9), 0.9, 20.0, "ortho")])
            memory.identify_track(TrackEvidence("door", track, t, clock[0], e, np.array([20.0], np.float32),
                                                np.array([0.9], np.float32), np.array([True]), b"jpeg" * 50, 20.0))
            memory.tick()
        if track % 20 == 0:
            print(len(memory.events_after(0, limit=10**9)), flush=True)  # committed events so far
    """
)


def test_sigkill_mid_run_leaves_a_db_that_opens_with_everything_committed(cfg: MemoryConfig) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, cfg.db], stdout=subprocess.PIPE, env=env, text=True)
    assert proc.stdout is not None
    committed = [int(proc.stdout.readline()) for _ in range(4)]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert committed[-1] > committed[0] > 0
    with Memory(cfg) as memory:
        events = memory.events_after(0, limit=10**9)
        assert len(events) >= committed[-1]
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        for e in events:  # every event's node is there, in a state at least as far as the event says
            if e.type.startswith("node."):
                assert memory.node(e.data.get("node", e.data.get("into"))) is not None
        faces = list(memory.export_faces())
        assert faces and all(f["node"] is None or memory.node(f["node"]) for f in faces)
        with sqlite3.connect(cfg.db) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        before = memory.new_track_id()
    with Memory(cfg) as memory:
        assert memory.new_track_id() > before  # ids keep growing after the crash


def test_a_reader_refuses_writes_and_leaves_no_wal_files_behind(cfg: MemoryConfig, bank: FaceBank) -> None:
    """`streamer ask`/`show` on a memory closed cleanly leave the folder as they found it, and a live
    writer beside a reader loses nothing when the reader closes first."""
    db = Path(cfg.db)
    clock = Clock()
    with Memory(cfg, clock=clock) as memory:
        Scene(memory, clock, bank).show(bank.distinct()[0])
    side = [db.with_name(db.name + suffix) for suffix in ("-wal", "-shm")]
    assert not any(f.exists() for f in side)
    reader = open_database(cfg.db, read_only=True)
    nodes = reader.execute("SELECT COUNT(*) FROM nodes").fetchone()[0]
    assert nodes >= 1
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.execute("DELETE FROM nodes")
    reader.close()
    assert not any(f.exists() for f in side)
    with Memory(cfg, clock=clock) as memory:  # a live writer, with a reader opening and closing beside it
        scene = Scene(memory, clock, bank)
        scene.show(bank.distinct()[1])
        memory.flush()
        reader = open_database(cfg.db, read_only=True)
        assert reader.execute("SELECT COUNT(*) FROM nodes").fetchone()[0] > nodes
        reader.close()
        scene.show(bank.distinct()[2])
        made = {n.id for n in memory.nodes()}
    with Memory(cfg, clock=clock) as memory:
        assert {n.id for n in memory.nodes()} == made
    assert not any(f.exists() for f in side)
