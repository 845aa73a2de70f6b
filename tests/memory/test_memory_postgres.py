"""The memory on PostgreSQL where it differs from a file: what tells a memory database from any other,
schema versions, and clear errors for a wrong URL or a server that does not answer."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.postgres import PostgresServer

from memory import Memory, MemoryConfig, StoreError
from memory.database import open_database, parse_target


def test_another_applications_database_is_refused_and_left_untouched(postgres: PostgresServer) -> None:
    url = postgres.database()
    db = open_database(url)
    db.execute("CREATE TABLE songs (title TEXT)")
    with pytest.raises(StoreError, match="holds tables of another application"):
        Memory(MemoryConfig(db=url))
    tables = db.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()").fetchall()
    assert tables == [("songs",)]
    db.close()


def test_a_newer_schema_is_refused(postgres: PostgresServer) -> None:
    url = postgres.database()
    Memory(MemoryConfig(db=url)).close()
    db = open_database(url)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.close()
    with pytest.raises(StoreError, match="schema version 99"):
        Memory(MemoryConfig(db=url))


def test_urls_name_their_store_and_hide_passwords() -> None:
    assert parse_target("sqlite:////data/memory.db").location == "/data/memory.db"
    assert parse_target("memory.db").dialect.value == "sqlite"
    assert parse_target("postgresql://mem:secret@db.local:5432/memory").shown == "postgresql://mem:***@db.local:5432/memory"
    with pytest.raises(StoreError, match="not a mysql:// URL"):
        parse_target("mysql://localhost/memory")


@pytest.mark.parametrize(
    ("db", "message"),
    [
        ("mysql://localhost/memory", "not a mysql:// URL"),
        ("postgresql://mem:secret@127.0.0.1:1/memory", "cannot connect to postgresql://mem:***@127.0.0.1:1/memory"),  # nobody listens
    ],
    ids=["another-kind", "no-server"],
)
def test_a_wrong_or_silent_database_is_one_line_and_no_traceback(db: str, message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "streamer", "export", "nodes", "--db", db], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "secret" not in done.stderr, done.stderr


def test_a_readers_connection_cannot_write(postgres: PostgresServer) -> None:
    url = postgres.database()
    Memory(MemoryConfig(db=url)).close()
    reader = open_database(url, read_only=True)  # as the query layer and the gallery open it
    try:
        with pytest.raises(reader.errors, match="read-only transaction"):
            reader.execute("DELETE FROM meta")
        assert reader.scalar("SELECT value FROM meta WHERE key = 'schema_version'") is not None
    finally:
        reader.close()


def test_a_command_reading_a_memory_never_creates_one(postgres: PostgresServer) -> None:
    url = postgres.database()
    done = subprocess.run([sys.executable, "-m", "streamer", "export", "nodes", "--db", url], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip() == f"streamer: error: memory database not found: {url}"
    db = open_database(url, read_only=True)
    assert db.scalar("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()") == 0
    db.close()
