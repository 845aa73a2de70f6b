"""`forget`: afterwards nothing of the person is in the store (tables; and an SQLite file's raw
bytes), nor in the answers; the others keep theirs; the person seen again is a stranger. Every test
runs on an SQLite file and on a PostgreSQL database (conftest)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support.asked import ANNA_SAYS, BEN_SAYS, Built, FaceBank
from support.postgres import STORES
from support.scenario import Clock, Scene

from memory import Memory, MemoryConfig, MemoryGraphError, NodeNotFound, NodeStatus
from memory.database import open_database
from memory.query import MemoryQuery, PersonNotFound


def table_text(db: Path | str) -> dict[str, str]:
    """Every row of every table as text (blobs as bytes' repr, word vectors as their words), per table."""
    con = open_database(str(db), read_only=True)
    try:
        listed = ("SELECT name FROM sqlite_master WHERE type = 'table'" if con.sqlite
                  else "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")  # fmt: skip
        tables = [r[0] for r in con.execute(listed)]
        return {t: "\n".join(repr(row) for row in con.execute(f'SELECT * FROM "{t}"')) for t in tables}
    finally:
        con.close()


def rows(db: Path | str, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    con = open_database(str(db), read_only=True)
    try:
        return list(con.execute(sql, args).fetchall())
    finally:
        con.close()


def forget(built: Built, target: str) -> object:
    with Memory(MemoryConfig(db=str(built.db)), clock=built.clock) as memory:
        return memory.forget(target)


def test_nothing_of_the_person_stays_in_the_file(built: Built) -> None:
    anna = (built.anna_face, built.anna_voice)
    before = table_text(built.db)
    assert "Lisbon" in before["speech_turns"] and "Anna" in before["nodes"] and f"<character_{built.character}>" in before["text_nodes"]
    assert rows(built.db, "SELECT COUNT(*) FROM crops WHERE node_id = ?", (built.anna_face,))[0][0] > 0
    assert rows(built.db, "SELECT COUNT(*) FROM presence WHERE node_id = ?", (built.anna_face,))[0][0] > 0

    done = forget(built, f"<character_{built.character}>")
    assert set(done.nodes) == set(anna) and done.character == built.character  # type: ignore[attr-defined]
    assert done.turns == len(ANNA_SAYS) and done.crops > 0 and done.memories_deleted > 0  # type: ignore[attr-defined]

    after = table_text(built.db)
    secrets = ["Anna", *ANNA_SAYS, "tea every morning", f"<character_{built.character}>",
               f"<face_{built.anna_face}>", f"<voice_{built.anna_voice}>"]  # fmt: skip
    for table, text in after.items():
        for secret in secrets:
            assert secret not in text, f"{secret!r} is still in table {table}"
    marks = ", ".join("?" * len(anna))
    for sql in (f"SELECT COUNT(*) FROM crops WHERE node_id IN ({marks})", f"SELECT COUNT(*) FROM embeddings WHERE node_id IN ({marks})",
                f"SELECT COUNT(*) FROM tracks WHERE node_id IN ({marks})", f"SELECT COUNT(*) FROM edges WHERE dst IN ({marks})",
                f"SELECT COUNT(*) FROM equivalences WHERE face_id IN ({marks}) OR voice_id IN ({marks})",
                f"SELECT COUNT(*) FROM characters WHERE node_id IN ({marks})", f"SELECT COUNT(*) FROM presence WHERE node_id IN ({marks})"):  # fmt: skip
        assert rows(built.db, sql, anna * sql.count("IN ("))[0][0] == 0, sql
    # only tombstones keep the ids: no label, no vector, no times
    assert rows(built.db, f"SELECT status, label, mean, first_seen_wall, streams FROM nodes WHERE id IN ({marks})", anna) == [
        ("forgotten", None, None, None, "[]")] * 2
    # ...and the event that says so
    forgotten = rows(built.db, "SELECT data FROM events WHERE type = 'node.forgotten'")
    assert len(forgotten) == 1 and str(built.anna_face) in str(forgotten[0][0])
    # an SQLite file's raw bytes too: deleted pages are zeroed and the log is emptied (PostgreSQL's
    # dead row versions and log are the operator's: VACUUM, backups)
    if isinstance(built.db, Path):
        wal = built.db.with_name("memory.db-wal")
        raw = built.db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
        for phrase in ("Lisbon", "tea every morning", "Anna"):
            assert phrase.encode() not in raw, f"{phrase!r} is still in the file's bytes"
    # the others keep theirs
    assert "Ben" in after["nodes"] and BEN_SAYS[0] in after["speech_turns"]
    assert rows(built.db, "SELECT COUNT(*) FROM crops WHERE node_id = ?", (built.cleo_face,))[0][0] > 0


def test_shared_memories_are_redacted_not_deleted(built: Built) -> None:
    shared = [t for (t,) in rows(built.db, "SELECT text FROM text_nodes") if t.startswith(f"<face_{built.anna_face}> and ")]
    assert shared, "the scene should have a memory naming Anna with Ben"
    forget(built, str(built.anna_voice))  # a voice of the character forgets all of her
    texts = [t for (t,) in rows(built.db, "SELECT text FROM text_nodes")]
    redacted = [t for t in texts if t.startswith("someone") or " someone " in t]
    assert len(redacted) == len(shared) and all(f"<face_{built.ben_face}>" in t for t in redacted)  # Ben is still named there
    assert not any("says:" in t and "someone" in t for t in texts)  # her quotes are gone, not redacted
    clip = rows(built.db, "SELECT data FROM events WHERE type = 'clip.closed'")
    assert clip and all("Anna" not in d and "Lisbon" not in d for (d,) in clip)


def test_answers_know_nothing_of_the_person(built: Built) -> None:
    with MemoryQuery(built.db) as q:
        assert q.said("Anna") and any("Lisbon" in h.text for h in q.search("Lisbon"))
    forget(built, f"character_{built.character}")
    with MemoryQuery(built.db) as q:
        for name in ("Anna", f"<character_{built.character}>", str(built.anna_face)):
            with pytest.raises(PersonNotFound):
                q.last_seen(name)
        assert not [h for h in q.search("Lisbon")]
        assert not [h for h in q.search("who drinks tea")  if "tea" in h.text]
        assert {p.label for p in q.people()} == {"Ben", None}
        assert [u.text for u in q.said("Ben")] == BEN_SAYS
        assert all(c.person.label != "Anna" for c in q.together("Ben"))
        assert all(p.person.label != "Anna" for p in q.present())


def test_seen_again_is_a_stranger(built: Built, bank: FaceBank) -> None:
    anna_person = bank.distinct()[0]  # as asked.build chose her
    forget(built, str(built.anna_face))
    clock = Clock(built.clock.now + 3600)
    with Memory(MemoryConfig(db=str(built.db)), clock=clock) as memory:
        assert memory.node(built.anna_face).status == NodeStatus.FORGOTTEN
        scene = Scene(memory, clock, bank)
        _, node = scene.show(anna_person, 6, stream="hall")
        assert node is not None and node not in (built.anna_face, built.anna_voice)
        assert memory.node(node).label is None and memory.character_of(node) is None
        _, ben = scene.show(bank.distinct()[1], 6, stream="hall")
        assert ben == built.ben_face  # the others are still recognised
        with pytest.raises(NodeNotFound):
            memory.forget(str(built.anna_face))  # gone already
        with pytest.raises(MemoryGraphError):
            memory.forget("anna")


def test_ids_are_never_given_again(built: Built, bank: FaceBank) -> None:
    top = rows(built.db, "SELECT MAX(id) FROM nodes")[0][0]
    forget(built, str(built.cleo_face))  # her memories have the highest ids
    clock = Clock(built.clock.now + 3600)
    with Memory(MemoryConfig(db=str(built.db)), clock=clock) as memory:
        _, node = Scene(memory, clock, bank).show(bank.distinct()[3], 6, stream="hall")
        assert node is not None and node > top


def test_cli(built: Built) -> None:
    def streamer(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "streamer", *args, "--db", str(built.db), "-q"], capture_output=True, text=True, timeout=120)

    bad = streamer("forget", "anna")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "node id or a tag" in bad.stderr
    unknown = streamer("forget", "<face_99999>")
    assert unknown.returncode == 2 and "99999" in unknown.stderr
    done = streamer("forget", f"<character_{built.character}>")
    assert done.returncode == 0, done.stderr
    assert f"forgot <character_{built.character}>" in done.stdout
    assert "Anna" not in streamer("export", "nodes").stdout


@pytest.mark.parametrize("cfg", STORES, indirect=True)
def test_a_node_merged_into_the_person_keeps_no_vector_either(cfg: MemoryConfig, bank: FaceBank) -> None:
    """A merged-away node's row holds no mean in memory (it is never matched again): forgetting
    clears the stored one all the same, after a restart too."""
    clock = Clock()
    a, b = bank.distinct()[:2]
    with Memory(cfg, clock=clock) as memory:
        scene = Scene(memory, clock, bank)
        _, person = scene.show(a, 4)
        _, former = scene.show(b, 1)
        assert person is not None and former is not None
        memory.merge(person, former)
    with Memory(cfg, clock=clock) as memory:
        assert memory.forget(person).former == (former,)
    assert rows(cfg.db, f"SELECT COUNT(*) FROM nodes WHERE id IN ({person}, {former}) AND mean IS NOT NULL") == [(0,)]
