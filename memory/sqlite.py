"""The memory in an SQLite file (the embedded default): sqlite3 in autocommit with explicit BEGIN /
COMMIT, WAL with synchronous=NORMAL, a busy timeout for a second connection (a reader, a command)
beside the live run's batches. A row is replaced with INSERT OR REPLACE (delete, then insert: the
word index triggers of memory.schema are written for it); a memory is told from any other SQLite file
by its application id."""

from __future__ import annotations

import functools
import sqlite3
import urllib.parse
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .errors import StoreError
from .link import Dialect, Link

BUSY_TIMEOUT_MS = 5000  # an SQLite reader or second writer waits this long for the live run's batch
APPLICATION_ID = 0x4C4D454D  # "LMEM" in the SQLite header: tells a memory DB from any other SQLite file


class SqliteLink(Link):
    dialect = Dialect.SQLITE
    strpos = "instr"
    foreign = "is an SQLite file of another application"
    errors = (sqlite3.Error,)

    def __init__(self, path: str, read_only: bool, busy_ms: int = BUSY_TIMEOUT_MS) -> None:
        if Path(path).is_dir():
            raise StoreError(f"{path} is a directory, not a memory database")
        try:
            if read_only:
                # Opened for writing with writes refused, not mode=ro: a reader that closes last then
                # checkpoints and removes the -wal/-shm files as a writer does (mode=ro leaves them).
                # mode=rw never creates a file; a write-protected one is opened read-only regardless.
                uri = f"file:{urllib.parse.quote(path)}?mode=rw"
                conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA query_only = ON")
            else:  # one user at a time, from any thread
                conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{path} cannot be read: {e}") from e
        self._conn = conn
        self._path = path

    @staticmethod
    def exists(path: str) -> bool:
        return Path(path).is_file()

    def execute(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, args)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def begin(self, *, immediate: bool = False) -> None:
        self._conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")

    def begin_snapshot(self) -> None:
        self._conn.execute("BEGIN")  # deferred: the snapshot starts at the first read

    def commit(self) -> None:
        self._conn.execute("COMMIT")

    def rollback(self) -> None:
        self._conn.execute("ROLLBACK")

    def close(self) -> None:
        self._conn.close()

    def upsert(self, table: str, columns: tuple[str, ...], key: tuple[str, ...]) -> str:
        return _upsert(table, columns)

    def table_count(self) -> int:
        return int(self._header("SELECT COUNT(*) FROM sqlite_master"))

    def holds_memory(self) -> bool:
        return bool(self._header("PRAGMA application_id") == APPLICATION_ID)

    def _header(self, sql: str) -> Any:
        """What the file says of itself; StoreError if it is no SQLite file."""
        try:
            return self._conn.execute(sql).fetchone()[0]
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self._path} is not a memory database ({e})") from e

    def run_script(self, script: str) -> None:
        statement = ""
        for piece in script.split(";"):  # executescript would commit halfway
            statement += piece + ";"
            if sqlite3.complete_statement(statement):  # a trigger's body holds ';' of its own
                if statement.strip(" \n;"):
                    self._conn.execute(statement)
                statement = ""

    def prepare(self) -> None:
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")

    def claim(self) -> None:
        self._conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")

    def columns(self, table: str) -> list[str]:
        return [r[1] for r in self._conn.execute(f"PRAGMA table_info({table})")]

    def high_water(self, table: str, column: str) -> int:
        # AUTOINCREMENT keeps it in sqlite_sequence; any other id column takes MAX + 1
        row = self._conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
        return 0 if row is None else int(row[0])

    def raise_high_water(self, table: str, column: str, value: int) -> None:
        if self._conn.execute("SELECT 1 FROM sqlite_master WHERE name = ? AND sql LIKE '%AUTOINCREMENT%'", (table,)).fetchone():
            self._conn.execute("UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = ?", (value, table))
            self._conn.execute("INSERT INTO sqlite_sequence (name, seq) SELECT ?, ? WHERE NOT EXISTS "
                               "(SELECT 1 FROM sqlite_sequence WHERE name = ?)", (table, value, table))  # fmt: skip

    def secure_delete(self, on: bool) -> None:
        self._conn.execute(f"PRAGMA secure_delete = {'ON' if on else 'OFF'}")

    def compact_words(self) -> None:
        self._conn.execute("INSERT INTO memory_fts (memory_fts) VALUES ('optimize')")  # old index segments hold the words
        self._conn.execute("INSERT INTO speech_fts (speech_fts) VALUES ('optimize')")

    def empty_log(self) -> bool:
        return bool(self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0])


@functools.lru_cache(maxsize=64)
def _upsert(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
