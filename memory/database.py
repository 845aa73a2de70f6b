"""Where the memory lives: an SQLite file (the embedded default) or a PostgreSQL database.

The `memory.db` setting names it: a path or `sqlite:///path` opens the file with sqlite3,
`postgresql://user@host:port/name` (libpq's URL; the password is best kept in PGPASSWORD or
~/.pgpass) opens the database with psycopg 3, so other machines can read it and operators back it up
and replicate it the usual way. The memory's SQL is written once, in what both dialects accept
(ON CONFLICT upserts, RETURNING, CAST(? AS TEXT), a `rowid` column the PostgreSQL schema spells out,
`?` placeholders). What still differs is spelled by each kind's link (memory.link): memory.sqlite
(pragmas, INSERT OR REPLACE, the application id) and memory.postgres (psycopg's placeholders, ON
CONFLICT ... DO UPDATE, REPEATABLE READ snapshots, and a server that goes away and comes back:
it reconnects and replays the open transaction).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .errors import StoreError
from .link import Dialect, Link
from .postgres import PostgresLink
from .sqlite import BUSY_TIMEOUT_MS, SqliteLink

log = logging.getLogger(__name__)

SQLITE_URL = "sqlite:///"  # sqlite:///memory.db is ./memory.db, sqlite:////data/memory.db is /data/memory.db
POSTGRES_SCHEMES = ("postgresql", "postgres")


IDS_PER_STATEMENT = 300  # SQLite before 3.32 takes 999 parameters, and a statement may bind its ids three times


def in_chunks(ids: Sequence[int]) -> Iterator[tuple[list[int], str]]:
    """`ids` a statement's worth at a time, each chunk with its placeholders (`?, ?, ...`)."""
    for start in range(0, len(ids), IDS_PER_STATEMENT):
        chunk = list(ids[start : start + IDS_PER_STATEMENT])
        yield chunk, ", ".join("?" * len(chunk))


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

    def same_as(self, other: Target) -> bool:
        """Whether both name one memory (a file by any path to it)."""
        if self.dialect is not other.dialect:
            return False
        if self.dialect is Dialect.SQLITE:
            return Path(self.location).resolve() == Path(other.location).resolve()
        return self.location == other.location


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
    """One connection to the memory `target` names, through its kind's link. Not for two threads at once."""

    def __init__(self, target: Target, link: Link) -> None:
        self.target = target
        self.link = link
        self.dialect = link.dialect
        self.sqlite = link.dialect is Dialect.SQLITE  # for tests and messages; the code asks the link
        self.errors = link.errors

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        """The driver's cursor, rows as tuples either way."""
        return self.link.execute(sql, args)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.link.executemany(sql, rows)

    def scalar(self, sql: str, args: Sequence[Any] = ()) -> Any:
        row = self.execute(sql, args).fetchone()
        return None if row is None else row[0]

    # --- transactions ---------------------------------------------------------------------------

    @property
    def in_transaction(self) -> bool:
        return self.link.in_transaction

    def begin(self, *, immediate: bool = False) -> None:
        """A write transaction; `immediate` takes SQLite's write lock now rather than at the first write."""
        self.link.begin(immediate=immediate)

    def begin_snapshot(self) -> None:
        """A read transaction whose statements all see one moment of the memory."""
        self.link.begin_snapshot()

    def commit(self) -> None:
        self.link.commit()

    def rollback(self) -> None:
        self.link.rollback()

    def close(self) -> None:
        self.link.close()

    # --- what differs in the statements themselves ----------------------------------------------

    def upsert(self, table: str, columns: Sequence[str], key: Sequence[str]) -> str:
        """INSERT of `columns` that replaces the row with the same `key`."""
        return self.link.upsert(table, tuple(columns), tuple(key))

    @property
    def strpos(self) -> str:
        """The function giving a substring's position (1-based, 0 if absent): strpos(text, part)."""
        return self.link.strpos


def shown(db: str) -> str:
    """`db` for messages and logs: a URL without its password."""
    return parse_target(db).shown


def open_database(db: str, *, read_only: bool = False, waits: bool = True) -> Database:
    """A connection to the memory `db` names (the schema is memory.schema's business); StoreError if it
    cannot be opened. A writer that `waits` waits out another's write lock and a server's outage (the
    memory's own); one that does not fails at once (a question storing what it computed on the side)."""
    target = parse_target(db)
    if target.dialect is Dialect.POSTGRES:
        return Database(target, PostgresLink(target.location, target.shown, read_only, waits))
    return Database(target, SqliteLink(target.location, read_only, BUSY_TIMEOUT_MS if waits else 0))


def exists(db: str) -> bool:
    """Whether `db` holds a memory already: the file exists, or the PostgreSQL database has our tables.
    StoreError if the server cannot be reached."""
    target = parse_target(db)
    if target.dialect is Dialect.POSTGRES:
        return PostgresLink.exists(target.location, target.shown)
    return SqliteLink.exists(target.location)
