"""Copying a memory to another store (`streamer db copy`): an SQLite file into a PostgreSQL database,
or back, or file to file. Every table of the current schema version goes over with its ids as they
are, so node ids, tags (<face_3>) and event numbers mean the same on both; what the destination
computes itself (the word index, presence from events) is computed there. The destination takes the
whole copy in one transaction: a copy that fails leaves it as it was. The source is only read, in
one snapshot, so a memory still being written copies as of one moment."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .database import Database, Dialect, exists, open_database, parse_target
from .errors import StoreError
from .schema import ID_COLUMNS, ORDERED, SCHEMA_VERSION, TABLES, connect, stored_version

log = logging.getLogger(__name__)

BATCH_ROWS = 500
OWN_META = ("schema_version", "people_version")  # each database's own bookkeeping, never copied
NOT_OWN = f"key NOT IN ({', '.join(repr(k) for k in OWN_META)})"  # meta's other rows (literals: a server-side cursor takes no parameters)
DERIVED = ("presence",)  # filled by the destination's triggers as the events go in, then made the source's

Progress = Callable[[str, int, int], None]  # (table, rows copied so far, rows it holds)


@dataclass(frozen=True)
class Copied:
    tables: int
    rows: int


def copy_memory(src: str, dst: str, *, replace: bool = False, progress: Progress | None = None) -> Copied:
    """Copies the memory `src` into `dst` (created if need be); StoreError, with `dst` as it was, if it
    cannot: a missing or older source, a destination holding a memory already (unless `replace`)."""
    source, destination = parse_target(src), parse_target(dst)
    if source.same_as(destination):
        raise StoreError(f"{source.shown} is both the source and the destination")
    if not exists(src):
        raise StoreError(f"memory database not found: {source.shown}")
    with _source(src) as reader:
        new_file = destination.dialect is Dialect.SQLITE and not Path(destination.location).exists()
        try:
            with contextlib.closing(connect(dst, waits=False)) as writer:
                return _copy(reader, writer, replace, progress or (lambda table, done, total: None))
        except BaseException:
            if new_file:  # nothing of it was there before
                for suffix in ("", "-wal", "-shm"):
                    Path(destination.location + suffix).unlink(missing_ok=True)
            raise


@contextlib.contextmanager
def _source(src: str) -> Iterator[Database]:
    reader = open_database(src, read_only=True)
    try:
        version = stored_version(reader)
        if version != SCHEMA_VERSION:
            how = "open it once with this version (any streamer command on it brings it up to date), then copy it" \
                if version < SCHEMA_VERSION else "copy it with the version that wrote it"  # fmt: skip
            raise StoreError(f"{reader.target.shown} has memory schema version {version}, this version copies {SCHEMA_VERSION}: {how}")
        yield reader
    finally:
        reader.close()


def _copy(reader: Database, writer: Database, replace: bool, progress: Progress) -> Copied:
    try:
        writer.begin(immediate=True)
        _make_room(writer, replace)
        reader.begin_snapshot()
        rows = sum(_copy_table(reader, writer, table, progress) for table in TABLES)
        for table, column in ID_COLUMNS:  # ids handed out and deleted since are not handed out again
            used = max(reader.link.high_water(table, column), int(writer.scalar(f"SELECT COALESCE(MAX({column}), 0) FROM {table}")))
            writer.link.raise_high_water(table, column, used)
        writer.commit()
        reader.commit()
    except (*reader.errors, *writer.errors) as e:
        raise StoreError(f"copying {reader.target.shown} to {writer.target.shown} failed: {' '.join(str(e).split())}") from e
    finally:
        if writer.in_transaction:
            writer.rollback()
    log.info("copied %d rows of %d tables from %s to %s", rows, len(TABLES), reader.target.shown, writer.target.shown)
    return Copied(len(TABLES), rows)


def _make_room(writer: Database, replace: bool) -> None:
    """Empties the destination if asked to; refuses one holding a memory otherwise."""
    held = [t for t in TABLES if t != "meta" and writer.scalar(f"SELECT 1 FROM {t} LIMIT 1")]
    held += ["meta"] if writer.scalar(f"SELECT 1 FROM meta WHERE {NOT_OWN} LIMIT 1") else []
    if not held:
        return
    if not replace:
        raise StoreError(f"{writer.target.shown} holds a memory already ({', '.join(held)}): copy into an empty one, "
                         "or give --replace to delete everything it holds first")  # fmt: skip
    log.warning("deleting the memory %s holds (%s) to replace it", writer.target.shown, ", ".join(held))
    for table in TABLES:
        writer.execute(f"DELETE FROM {table}" + (f" WHERE {NOT_OWN}" if table == "meta" else ""))


def _copy_table(reader: Database, writer: Database, table: str, progress: Progress) -> int:
    columns = writer.link.columns(table)  # the source has the same at the same version
    names = ", ".join(columns)
    where = f" WHERE {NOT_OWN}" if table == "meta" else ""
    total = int(reader.scalar(f"SELECT COUNT(*) FROM {table}{where}"))
    if table in DERIVED:
        writer.execute(f"DELETE FROM {table}")
    insert = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})"
    done = 0
    progress(table, done, total)
    order = " ORDER BY rowid" if table in ORDERED else ""  # (a node's embeddings: gallery order)
    for batch in reader.link.batches(f"SELECT {names} FROM {table}{where}{order}", BATCH_ROWS):
        writer.executemany(insert, batch)
        done += len(batch)
        progress(table, done, total)
    return done
