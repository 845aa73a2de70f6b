"""The SQLite file's schema, how a file is opened, and how an older file is brought up to date.

A file is told apart from any other SQLite file by its application id. Every schema version
after the first has one migration that takes a file from the version before; a file is migrated
step by step in one transaction, so it is either fully on the new version or untouched.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from .errors import StoreError

log = logging.getLogger(__name__)

APPLICATION_ID = 0x4C4D454D  # "LMEM" in the SQLite header: tells a memory DB from any other SQLite file

SPEECH_TURNS = """
CREATE TABLE speech_turns (
    track_id INTEGER PRIMARY KEY, stream TEXT NOT NULL, t_start REAL NOT NULL, t_end REAL NOT NULL,
    wall_time REAL NOT NULL, good INTEGER NOT NULL, text TEXT);
CREATE INDEX speech_turns_wall ON speech_turns (wall_time);
"""

CHARACTERS = """
ALTER TABLE equivalences ADD COLUMN manual INTEGER NOT NULL DEFAULT 1;
CREATE TABLE turn_faces (
    turn_id INTEGER NOT NULL, face_track INTEGER NOT NULL, seen INTEGER NOT NULL DEFAULT 0,
    alone INTEGER NOT NULL DEFAULT 0, sync REAL, outcome INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (turn_id, face_track));
CREATE TABLE characters (node_id INTEGER PRIMARY KEY, character_id INTEGER NOT NULL);
ALTER TABLE text_nodes ADD COLUMN key TEXT;
CREATE UNIQUE INDEX text_nodes_key ON text_nodes (key);
"""

# Word search (FTS5) over memories and transcripts, kept in step by triggers so the writer does nothing
# more; sentence vectors for search by meaning are computed and cached by memory.query, and a changed or
# deleted text drops its vector. The latest presence event per stream and node, kept by a trigger, and
# an index for time ranges: what memory.query asks most often stays cheap however long the run.
TEXT_SEARCH = """
CREATE TABLE text_vectors (source TEXT NOT NULL, id INTEGER NOT NULL, vec BLOB NOT NULL, PRIMARY KEY (source, id));
CREATE VIRTUAL TABLE memory_fts USING fts5(text, tokenize = 'porter unicode61');
CREATE VIRTUAL TABLE speech_fts USING fts5(text, tokenize = 'porter unicode61');
INSERT INTO memory_fts (rowid, text) SELECT node_id, text FROM text_nodes;
INSERT INTO speech_fts (rowid, text) SELECT track_id, text FROM speech_turns WHERE text IS NOT NULL;
CREATE TRIGGER memory_fts_insert AFTER INSERT ON text_nodes BEGIN
    INSERT INTO memory_fts (rowid, text) VALUES (new.node_id, new.text); END;
CREATE TRIGGER memory_fts_update AFTER UPDATE OF text ON text_nodes BEGIN
    UPDATE memory_fts SET text = new.text WHERE rowid = new.node_id;
    DELETE FROM text_vectors WHERE source = 'memory' AND id = new.node_id; END;
CREATE TRIGGER memory_fts_delete AFTER DELETE ON text_nodes BEGIN
    DELETE FROM memory_fts WHERE rowid = old.node_id;
    DELETE FROM text_vectors WHERE source = 'memory' AND id = old.node_id; END;
CREATE TRIGGER speech_fts_replace BEFORE INSERT ON speech_turns BEGIN
    DELETE FROM speech_fts WHERE rowid = new.track_id; END;
CREATE TRIGGER speech_fts_insert AFTER INSERT ON speech_turns WHEN new.text IS NOT NULL BEGIN
    INSERT INTO speech_fts (rowid, text) VALUES (new.track_id, new.text); END;
CREATE TRIGGER speech_fts_update AFTER UPDATE OF text ON speech_turns BEGIN
    DELETE FROM speech_fts WHERE rowid = old.track_id;
    INSERT INTO speech_fts (rowid, text) SELECT new.track_id, new.text WHERE new.text IS NOT NULL;
    DELETE FROM text_vectors WHERE source = 'speech' AND id = old.track_id; END;
CREATE TRIGGER speech_fts_delete AFTER DELETE ON speech_turns BEGIN
    DELETE FROM speech_fts WHERE rowid = old.track_id;
    DELETE FROM text_vectors WHERE source = 'speech' AND id = old.track_id; END;
CREATE TABLE presence (
    stream TEXT NOT NULL, node_id INTEGER NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL, wall_time REAL NOT NULL,
    PRIMARY KEY (stream, node_id));
INSERT INTO presence (stream, node_id, seq, type, wall_time)
    SELECT stream, json_extract(data, '$.node'), MAX(seq), type, wall_time FROM events
    WHERE type IN ('person.appeared', 'person.left') GROUP BY stream, json_extract(data, '$.node');
CREATE TRIGGER presence_event AFTER INSERT ON events WHEN new.type IN ('person.appeared', 'person.left') BEGIN
    INSERT OR REPLACE INTO presence (stream, node_id, seq, type, wall_time)
    VALUES (new.stream, json_extract(new.data, '$.node'), new.seq, new.type, new.wall_time); END;
CREATE INDEX tracks_last_wall ON tracks (last_wall);
"""

# Memories a language model wrote: which model, which endpoint, when, with images or not, about which clip.
MODEL_MEMORIES = """
CREATE TABLE model_memories (
    node_id INTEGER PRIMARY KEY, clip_id INTEGER, model TEXT NOT NULL, endpoint TEXT NOT NULL,
    wall_time REAL NOT NULL, images INTEGER NOT NULL);
CREATE INDEX model_memories_clip ON model_memories (clip_id);
"""

# A few seconds of a voice's best turn, kept only when asked (memory.snippets).
VOICE_SNIPPETS = """
CREATE TABLE voice_snippets (node_id INTEGER PRIMARY KEY, quality REAL NOT NULL, wav BLOB NOT NULL);
"""

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE nodes (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, label TEXT, merged_into INTEGER,
    created_wall REAL NOT NULL, first_seen_wall REAL, last_seen_wall REAL,
    n_observations INTEGER NOT NULL, n_embeddings INTEGER NOT NULL,
    good_faces INTEGER NOT NULL, first_good_t REAL, last_good_t REAL,
    streams TEXT NOT NULL, mean BLOB);
CREATE TABLE embeddings (node_id INTEGER NOT NULL, track_id INTEGER NOT NULL, quality REAL NOT NULL, vec BLOB NOT NULL);
CREATE INDEX embeddings_node ON embeddings (node_id);
CREATE TABLE tracks (
    id INTEGER PRIMARY KEY, stream TEXT NOT NULL, node_id INTEGER,
    first_t REAL NOT NULL, last_t REAL NOT NULL, first_wall REAL NOT NULL, last_wall REAL NOT NULL);
CREATE INDEX tracks_node ON tracks (node_id);
CREATE TABLE observations (
    id INTEGER PRIMARY KEY, track_id INTEGER NOT NULL, stream TEXT NOT NULL, t REAL NOT NULL, wall_time REAL NOT NULL,
    x1 INTEGER NOT NULL, y1 INTEGER NOT NULL, x2 INTEGER NOT NULL, y2 INTEGER NOT NULL,
    det_score REAL NOT NULL, quality REAL, face_type TEXT NOT NULL);
CREATE INDEX observations_wall ON observations (wall_time);
CREATE TABLE crops (id INTEGER PRIMARY KEY, node_id INTEGER NOT NULL, track_id INTEGER NOT NULL, quality REAL NOT NULL, jpeg BLOB NOT NULL);
CREATE INDEX crops_node ON crops (node_id);
CREATE TABLE clips (
    id INTEGER PRIMARY KEY, stream TEXT NOT NULL, idx INTEGER NOT NULL, first_t REAL NOT NULL, last_t REAL NOT NULL,
    start_wall REAL NOT NULL, end_wall REAL NOT NULL, text_node INTEGER);
CREATE TABLE text_nodes (node_id INTEGER PRIMARY KEY, clip_id INTEGER, text TEXT NOT NULL);
CREATE INDEX text_nodes_clip ON text_nodes (clip_id);
CREATE TABLE edges (src INTEGER NOT NULL, dst INTEGER NOT NULL, weight REAL NOT NULL, PRIMARY KEY (src, dst));
CREATE INDEX edges_dst ON edges (dst);
CREATE TABLE equivalences (face_id INTEGER NOT NULL, voice_id INTEGER NOT NULL, PRIMARY KEY (face_id, voice_id));
CREATE TABLE cannot_link (a INTEGER NOT NULL, b INTEGER NOT NULL, PRIMARY KEY (a, b));
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, type TEXT NOT NULL,
    wall_time REAL NOT NULL, stream TEXT, data TEXT NOT NULL);
""" + SPEECH_TURNS + CHARACTERS + TEXT_SEARCH + MODEL_MEMORIES + VOICE_SNIPPETS


# version reached -> the statements that take a file there from the version before
MIGRATIONS = {
    2: SPEECH_TURNS,  # voices: speech turns (their identity goes through the tracks table, like faces')
    3: CHARACTERS,  # characters: who-spoke evidence per turn and face track, character ids, keyed semantic memories
    4: TEXT_SEARCH,  # asking the memory: word index and sentence vectors of texts, query indexes
    5: MODEL_MEMORIES,  # memories from a language model, with their provenance
    6: VOICE_SNIPPETS,  # a few seconds of each voice, when asked to keep them
}
SCHEMA_VERSION = max(MIGRATIONS)


def connect(path: str) -> sqlite3.Connection:
    """Opens (creating or migrating as needed) a memory database; StoreError if it is not one."""
    if Path(path).is_dir():
        raise StoreError(f"{path} is a directory, not a memory database")
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)  # one user at a time, any thread
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        tables = db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{path} is not a memory database ({e})") from e
    if app_id != APPLICATION_ID and tables:
        db.close()
        raise StoreError(f"{path} is an SQLite file of another application, not a memory database")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    if not tables:
        db.execute("BEGIN")
        _statements(db, SCHEMA)
        db.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute("COMMIT")
        log.info("created memory database %s", path)
    version = int(db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
    if version > SCHEMA_VERSION:
        db.close()
        raise StoreError(f"{path} has memory schema version {version}; this library reads version {SCHEMA_VERSION}")
    if version < SCHEMA_VERSION:
        _migrate(db, version)
        log.info("migrated memory database %s from schema version %d to %d", path, version, SCHEMA_VERSION)
    return db


def _migrate(db: sqlite3.Connection, version: int) -> None:
    db.execute("BEGIN")
    for step in range(version + 1, SCHEMA_VERSION + 1):
        _statements(db, MIGRATIONS[step])
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
    db.execute("COMMIT")


def _statements(db: sqlite3.Connection, script: str) -> None:
    statement = ""
    for piece in script.split(";"):  # executescript would commit halfway
        statement += piece + ";"
        if sqlite3.complete_statement(statement):  # a trigger's body holds ';' of its own
            if statement.strip(" \n;"):
                db.execute(statement)
            statement = ""
