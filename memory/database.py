"""Where the memory lives: an SQLite file (the embedded default) or a PostgreSQL database.

The `memory.db` setting names it: a path or `sqlite:///path` opens the file with sqlite3,
`postgresql://user@host:port/name` (libpq's URL; the password is best kept in PGPASSWORD or
~/.pgpass) opens the database with psycopg 3, so other machines can read it and operators back it up
and replicate it the usual way. The memory's SQL is written once, in what both dialects accept
(ON CONFLICT upserts, RETURNING, CAST(? AS TEXT), a `rowid` column the PostgreSQL schema spells out).
What still differs is here, both spellings side by side:

- placeholders: our statements use `?`; psycopg wants `%s` (and a literal `%` doubled). There is no
  spelling both accept, so a statement is rewritten once for PostgreSQL and the result cached;
- replacing a row: SQLite's INSERT OR REPLACE (delete, then insert: the word index triggers of
  memory.schema are written for it) and PostgreSQL's ON CONFLICT ... DO UPDATE (`upsert`);
- transactions: both connections run in autocommit and take explicit BEGIN / COMMIT; a reader's
  snapshot is a deferred transaction on SQLite and REPEATABLE READ on PostgreSQL;
- a substring's position (`strpos`);
- SQLite's pragmas (WAL, synchronous, busy timeout, read-only files) apply to files only;
- a PostgreSQL server can go away and come back: memory.postgres reconnects and replays the open
  transaction.
"""

from __future__ import annotations

import enum
import functools
import logging
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .errors import StoreError
from .postgres import WRITE_BEGIN, PostgresLink

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000  # an SQLite reader or second writer waits this long for the live run's batch
SQLITE_URL = "sqlite:///"  # sqlite:///memory.db is ./memory.db, sqlite:////data/memory.db is /data/memory.db
POSTGRES_SCHEMES = ("postgresql", "postgres")


class Dialect(enum.Enum):
    SQLITE = "sqlite"
    POSTGRES = "postgresql"


@dataclass(frozen=True)
class Target:
    """A parsed `memory.db`: the dialect and the file path or connection URL."""

    dialect: Dialect
    location: str

    @property
    def shown(self) -> str:
        """For messages and logs: a URL without its password."""
        if self.dialect is Dialect.SQLITE:
            return self.location
        parts = urlsplit(self.location)
        if parts.password is None:
            return self.location
        host = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def parse_target(db: str) -> Target:
    """The dialect a `memory.db` value names; StoreError for a URL of any other kind."""
    if db.startswith(SQLITE_URL):
        return Target(Dialect.SQLITE, db[len(SQLITE_URL) :])
    scheme = db.split("://", 1)[0].lower() if "://" in db else None
    if scheme is None:
        return Target(Dialect.SQLITE, db)
    if scheme in POSTGRES_SCHEMES:
        return Target(Dialect.POSTGRES, db)
    raise StoreError(f"memory.db takes a file path, sqlite:///PATH or postgresql://..., not a {scheme}:// URL")


class Database:
    """One connection, either dialect, in autocommit with explicit transactions. Not for two threads at once."""

    def __init__(self, target: Target, sqlite: sqlite3.Connection | None = None, link: PostgresLink | None = None) -> None:
        self.target = target
        self.dialect = target.dialect
        self.sqlite = target.dialect is Dialect.SQLITE
        self._sqlite = sqlite
        self.link = link
        if self.sqlite:
            self.errors: tuple[type[Exception], ...] = (sqlite3.Error,)
        else:
            import psycopg  # noqa: PLC0415 (only with the postgres extra)

            self.errors = (psycopg.Error,)

    @property
    def conn(self) -> Any:
        """The driver's connection (for the schema's scripts)."""
        return self._sqlite if self.link is None else self.link.conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        """The driver's cursor, rows as tuples either way."""
        if self.link is None:
            return self.conn.execute(sql, args)
        return self.link.execute(_postgres(sql), args)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        if self.link is None:
            self.conn.executemany(sql, rows)
            return
        self.link.executemany(_postgres(sql), list(rows))

    def scalar(self, sql: str, args: Sequence[Any] = ()) -> Any:
        row = self.execute(sql, args).fetchone()
        return None if row is None else row[0]

    # --- transactions ---------------------------------------------------------------------------

    @property
    def in_transaction(self) -> bool:
        return bool(self.conn.in_transaction if self.link is None else self.link.in_transaction)

    def begin(self, *, immediate: bool = False) -> None:
        """A write transaction; `immediate` takes SQLite's write lock now rather than at the first write."""
        if self.link is None:
            self.conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        else:
            self.link.begin(WRITE_BEGIN)

    def begin_snapshot(self) -> None:
        """A read transaction whose statements all see one moment of the memory."""
        if self.link is None:
            self.conn.execute("BEGIN")
        else:
            self.link.begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def commit(self) -> None:
        if self.link is None:
            self.conn.execute("COMMIT")
        else:
            self.link.commit()

    def rollback(self) -> None:
        if self.link is None:
            self.conn.execute("ROLLBACK")
        else:
            self.link.rollback()

    def close(self) -> None:
        self.conn.close()

    # --- what differs in the statements themselves ----------------------------------------------

    def upsert(self, table: str, columns: Sequence[str], key: Sequence[str]) -> str:
        """INSERT of `columns` that replaces the row with the same `key`."""
        return _upsert(self.dialect, table, tuple(columns), tuple(key))

    @property
    def strpos(self) -> str:
        """The function giving a substring's position (1-based, 0 if absent): strpos(text, part)."""
        return "instr" if self.sqlite else "strpos"


def shown(db: str) -> str:
    """`db` for messages and logs: a URL without its password."""
    return parse_target(db).shown


def open_database(db: str, *, read_only: bool = False) -> Database:
    """A connection to the memory `db` names (the schema is memory.schema's business); StoreError if it cannot be opened."""
    target = parse_target(db)
    if target.dialect is Dialect.POSTGRES:
        return Database(target, link=PostgresLink(target.location, target.shown, read_only))
    path = target.location
    if Path(path).is_dir():
        raise StoreError(f"{path} is a directory, not a memory database")
    try:
        if read_only:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
        else:  # one user at a time, from any thread
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{path} cannot be read: {e}") from e
    return Database(target, sqlite=conn)


_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\?|%")


@functools.lru_cache(maxsize=1024)
def _postgres(sql: str) -> str:
    """`?` -> `%s` and `%` -> `%%`, outside string literals."""
    return _PLACEHOLDER.sub(lambda m: "%s" if m.group() == "?" else "%%" if m.group() == "%" else m.group(), sql)


@functools.lru_cache(maxsize=64)
def _upsert(dialect: Dialect, table: str, columns: tuple[str, ...], key: tuple[str, ...]) -> str:
    names, marks = ", ".join(columns), ", ".join("?" * len(columns))
    if dialect is Dialect.SQLITE:
        return f"INSERT OR REPLACE INTO {table} ({names}) VALUES ({marks})"
    sets = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    return f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets}"
