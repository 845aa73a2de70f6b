"""The query layer on a memory built the way the streamer builds it (see conftest)."""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path

import pytest
from support.asked import ANNA_SAYS, Built
from support.postgres import STORES
from support.realfaces import FaceBank
from support.scenario import Clock, Scene

from memory import Memory, MemoryConfig
from memory.database import open_database
from memory.query import ClipNotFound, MemoryQuery, PersonNotFound, QueryError
from memory.query import core as query_core
from memory.schema import MIGRATIONS, SCHEMA_VERSION


@pytest.fixture(scope="module")
def query(stored: Built) -> MemoryQuery:
    with MemoryQuery(stored.db) as q:
        yield q  # type: ignore[misc]


def test_a_person_is_found_by_label_tag_node_or_character(query: MemoryQuery, stored: Built) -> None:
    names = ["anna", "ANNA", f"<face_{stored.anna_face}>", f"voice_{stored.anna_voice}", str(stored.anna_face), f"<character_{stored.character}>"]
    for name in names:
        person = query.person(name)
        assert (person.tag, person.label, person.faces, person.voices) == (
            f"<character_{stored.character}>", "Anna", (stored.anna_face,), (stored.anna_voice,)), name  # fmt: skip
    for unknown in ["Zoe", "<face_999>", "999", f"<voice_{stored.anna_face}>", "<character_77>"]:
        with pytest.raises(PersonNotFound, match="nobody called"):
            query.person(unknown)
    assert [p.tag for p in query.people()] == [f"<character_{stored.character}>", "<character_2>", f"<face_{stored.cleo_face}>"]


def test_last_seen_says_where_when_and_how_long(query: MemoryQuery, stored: Built) -> None:
    anna = query.last_seen("Anna")
    assert anna.seen is not None and anna.heard is not None
    assert (anna.seen.stream, anna.seen.start, anna.seen.nodes) == ("kitchen", stored.start, (stored.anna_face,))
    # on screen through four turns of 3 s with pauses of 0.5 s: 13.5 s of stream time
    assert (anna.seen.t_start, anna.seen.t_end, anna.seen.seconds) == (0.0, 13.5, 13.5) and anna.seen.end > anna.seen.start
    assert anna.heard.stream == "kitchen" and anna.heard.end <= anna.seen.end and anna.streams == ("kitchen",)
    cleo = query.last_seen(str(stored.cleo_face))
    assert cleo.heard is None and cleo.seen is not None and cleo.seen.stream == "door"
    assert cleo.seen.start >= stored.start + 600  # ten minutes after the talk


def test_what_a_person_said_with_times_and_in_a_range(query: MemoryQuery, stored: Built) -> None:
    said = query.said("Anna")
    assert [u.text for u in said] == ANNA_SAYS
    assert all(u.voice == stored.anna_voice and u.character == stored.character and u.stream == "kitchen" for u in said)
    assert [u.start for u in said] == sorted(u.start for u in said) and all(u.end > u.start for u in said)
    assert [u.text for u in query.said("Anna", since=said[1].start)] == ANNA_SAYS[1:]
    assert [u.text for u in query.said("Anna", limit=1)] == ANNA_SAYS[-1:]
    assert query.said(str(stored.cleo_face)) == []  # never spoke
    with pytest.raises(QueryError, match="limit must be between 1 and 1000"):
        query.said("Anna", limit=0)


def test_who_was_with_whom(query: MemoryQuery, stored: Built) -> None:
    (ben,) = query.together("Anna")
    assert ben.person.label == "Ben" and ben.person.faces == (stored.ben_face,)
    assert (ben.clips, ben.together, ben.streams) == (1, 1, ("kitchen",))
    assert [c.person.label for c in query.together("Ben")] == ["Anna"]
    assert query.together(str(stored.cleo_face)) == []  # alone at the door


def test_who_was_seen_in_a_range(query: MemoryQuery, stored: Built) -> None:
    early = query.seen_between(stored.start, stored.start + 60)
    assert {(s.person.label, s.stream, s.seen, s.heard) for s in early} == {("Anna", "kitchen", True, True), ("Ben", "kitchen", True, True)}
    assert {(s.person.label, s.stream) for s in query.seen_between(stored.start, stored.start + 60, stream="door")} == set()
    late = query.seen_between(stored.start + 300)
    assert [(s.person.faces, s.stream, s.heard) for s in late] == [((stored.cleo_face,), "door", False)]
    with pytest.raises(QueryError, match="ends"):
        query.seen_between(10.0, 5.0)
    assert query.present() == []  # every stream ended


@pytest.mark.parametrize("listed", [True, False], ids=["merged-listed", "too-many-to-list"])
@pytest.mark.parametrize("cfg", STORES, indirect=True)
def test_who_is_present_and_who_is_who_beside_a_live_writer(
    bank: FaceBank, cfg: MemoryConfig, listed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not listed:  # present() reads every departure instead of those of merged nodes
        monkeypatch.setattr(query_core, "MAX_LISTED", 0)
    clock = Clock()
    with Memory(cfg, clock=clock) as memory:
        scene = Scene(memory, clock, bank)
        a = bank.distinct()[0]
        scene.show(a, 6, stream="hall")
        _, node = scene.show(a, 6, stream="hall")
        memory.tick()
        memory.flush()
        with MemoryQuery(cfg.db) as query:
            (here,) = query.present()
            assert (here.stream, here.node, here.person.faces) == ("hall", node, (node,))
            memory.label(node, "Zoe")  # type: ignore[arg-type]  # who is who changes under the reader's feet
            memory.flush()
            assert query.person("Zoe").faces == (node,)
            b = bank.distinct()[1]
            scene.show(b, 6, stream="hall")
            _, other = scene.show(b, 6, stream="hall")
            memory.tick()
            memory.flush()
            assert sorted(p.node for p in query.present()) == sorted([node, other])  # type: ignore[type-var]
            memory.merge(node, other)  # type: ignore[arg-type]  # by hand: one person now, still here
            memory.flush()
            assert [(p.node, p.person.faces) for p in query.present()] == [(node, (node,))]
            memory.end_stream("hall")  # the survivor leaves: so does the node merged into it
            memory.flush()
            assert query.present() == []


def test_a_clip_as_data_with_tags_translated_and_kept(query: MemoryQuery, stored: Built) -> None:
    clip = query.clip("kitchen", 0)
    first = clip.episodic[0]
    assert first.tagged.startswith(f"<face_{stored.anna_face}> and <face_{stored.ben_face}> were seen")
    assert first.text.startswith(f"Anna (<face_{stored.anna_face}>) and Ben (<face_{stored.ben_face}>) were seen")
    quotes = [m for m in clip.episodic if " says: " in m.tagged]
    assert [m.text for m in quotes] == [f'Anna (<voice_{stored.anna_voice}>) says: "{t}"' for t in ANNA_SAYS]
    assert all(m.nodes == (stored.anna_voice,) for m in quotes)
    assert {p.label for p in clip.people} == {"Anna", "Ben"}
    assert f"Anna (<character_{stored.character}>) is Anna" in [m.text for m in clip.semantic]
    assert [u.text for u in clip.speech if u.voice == stored.anna_voice] == ANNA_SAYS
    with pytest.raises(ClipNotFound, match="no clip 5 of stream 'kitchen'"):
        query.clip("kitchen", 5)


def test_search_finds_words_and_paraphrases(query: MemoryQuery, stored: Built) -> None:
    top = query.search("who enjoys hot drinks in the morning")[0]  # no word in common but "morning"
    assert "I drink tea every morning" in top.text and top.match in ("meaning", "both")
    assert top.people[0].label == "Anna" and top.stream == "kitchen"
    family = query.search("who has family in Portugal")  # no word in common at all
    assert "Lisbon" in family[0].text and family[0].match == "meaning"
    lisbon = query.search("Lisbon")
    assert lisbon and all("Lisbon" in h.text for h in lisbon if h.match != "meaning")
    assert {h.source for h in lisbon} >= {"speech", "episodic"}
    assert not any(hasattr(h, "vec") or "embedding" in h.as_dict() for h in lisbon)
    with pytest.raises(QueryError, match="empty"):
        query.search("  ")


def test_a_changed_text_is_searched_as_it_is_now(writable: Built) -> None:
    db = writable.db
    with MemoryQuery(db) as query:
        assert query.search("Lisbon")
        with Memory(MemoryConfig(db=str(db))) as memory:
            memory.flush()
            (turn,) = [h.id for h in query.search("Lisbon") if h.source == "speech"]
            memory.transcribed(turn, "My brother lives in Oslo.")
            memory.flush()
        assert not [h for h in query.search("Lisbon") if h.source == "speech"]
        assert [h.text for h in query.search("Norway") if h.source == "speech"][0].endswith('"My brother lives in Oslo."')


def test_queries_stay_consistent_while_the_file_is_written(writable: Built) -> None:
    db = writable.db
    stop = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:  # a writer that commits in bursts, as the live run does
        writer = open_database(str(db))
        n = 0
        while not stop.is_set():
            writer.begin()
            for _ in range(50):
                n += 1
                writer.execute("INSERT INTO events (id, type, wall_time, stream, data) VALUES (?, 'node.updated', 0, NULL, '{}')", (str(n),))
            writer.commit()
        writer.close()

    with MemoryQuery(db) as query:
        expected = (query.last_seen("Anna"), query.said("Anna"), query.together("Anna"))

        def read() -> None:
            try:
                for _ in range(20):
                    assert (query.last_seen("Anna"), query.said("Anna"), query.together("Anna")) == expected
            except BaseException as e:  # noqa: BLE001 (handed to the test thread)
                errors.append(e)

        writer = threading.Thread(target=write)
        writer.start()
        readers = [threading.Thread(target=read) for _ in range(4)]
        for r in readers:
            r.start()
        for r in readers:
            r.join()
        stop.set()
        writer.join()
    assert errors == []


def test_an_older_file_is_brought_up_to_date(built: Built, tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(built.db) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
    with sqlite3.connect(db) as old:  # schema version 3: what later versions created is not there yet
        for version in sorted((v for v in MIGRATIONS if v > 3), reverse=True):
            for kind, name in re.findall(r"CREATE (?:VIRTUAL )?(TABLE|INDEX|TRIGGER) (\w+)", MIGRATIONS[version]):
                old.execute(f"DROP {kind} IF EXISTS {name}")
        old.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    with MemoryQuery(db) as query:
        assert [h.text for h in query.search("Lisbon") if h.source == "speech"][0].endswith('"My sister lives in Lisbon."')
    with sqlite3.connect(db) as check:
        assert check.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)


@pytest.mark.parametrize("writable", ["sqlite"], indirect=True)
def test_a_search_never_waits_for_the_writers_lock(writable: Built) -> None:
    """The live run's batch holds the file's write lock: a search answers at once, by meaning too, with
    vectors it keeps in memory, and stores them once the file is free."""
    writer = open_database(str(writable.db))
    writer.execute("DELETE FROM text_vectors")  # (earlier searches of the module's memory stored them)
    writer.begin(immediate=True)
    with MemoryQuery(writable.db) as query:
        try:
            assert "Lisbon" in query.search("who has family in Portugal")[0].text
            assert query.search("who enjoys hot drinks in the morning")[0].match in ("meaning", "both")
            assert query.index_texts() > 0  # still not stored
        finally:
            writer.rollback()
        assert "Lisbon" in query.search("who has family in Portugal")[0].text
        assert query.index_texts() == 0  # stored by that search
    assert writer.scalar("SELECT COUNT(*) FROM text_vectors") > 0
    writer.close()


@pytest.mark.parametrize("writable", ["sqlite"], indirect=True)
def test_searches_under_the_writers_lock_load_the_vectors_once(writable: Built) -> None:
    """While the store refuses the vectors, each search finds the same ones unstored: the matrix of
    vectors is loaded by the first search only, and again once they are stored."""
    writer = open_database(str(writable.db))
    writer.execute("DELETE FROM text_vectors")
    writer.begin(immediate=True)
    questions = ["who has family in Portugal", "who enjoys hot drinks in the morning", "where does the sister live"]
    with MemoryQuery(writable.db) as query:
        loaded = []  # each matrix the searches used: a new one is a reload
        try:
            for question in questions:
                query.search(question)
                loaded.append(query.search_index._matrix)
        finally:
            writer.rollback()
        query.search(questions[0])  # stores them: the table changed
        loaded.append(query.search_index._matrix)
    assert [m is loaded[0] for m in loaded] == [True, True, True, False]
    writer.close()
