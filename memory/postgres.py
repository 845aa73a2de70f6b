"""The memory in a PostgreSQL database (memory.link's interface): psycopg 3 in autocommit with explicit
BEGIN / COMMIT, `?` rewritten to psycopg's `%s`, rows replaced with ON CONFLICT ... DO UPDATE, reads in
REPEATABLE READ snapshots; and a connection that outlives the server going away (a restart, a
fail-over, a network cut).

The memory writes in long transactions (a batch of faces, then one COMMIT). When the connection
breaks, the server rolls the open transaction back, while the memory has already moved on from
what it wrote: the statements of the open transaction are therefore kept until it commits. On a
broken connection the writer logs it, reconnects with backoff for as long as it takes, starts the
transaction again and replays them, then goes on with the statement that failed; the caller only
waits. Ids the server handed out (INSERT ... RETURNING) are replayed as given, since the memory
holds them already. A COMMIT whose answer was lost is looked up by its transaction id
(pg_xact_status) before anything is replayed, so a transaction is never applied twice; the id
comes back with the transaction's BEGIN, in the same round trip.

A reader (read_only), or a writer that must not wait (`waits` off: a question storing what it
computed on the side), tries once to reconnect and raises StoreError if it cannot: a question asked
during the outage fails, the next one after it works. Their open transactions are never replayed
(a read snapshot made again would see another moment): they reconnect and raise StoreError.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from .errors import StoreError
from .link import Dialect, Link, LinkState

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 10
RECONNECT_FIRST_SECONDS = 0.5  # the wait before the first attempt, doubled after each failed one
RECONNECT_MAX_SECONDS = 30.0
WRITE_BEGIN = "BEGIN; SELECT pg_current_xact_id()"  # one round trip: the id is there if the COMMIT's answer is lost
SNAPSHOT_BEGIN = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"

_MANY = object()  # a journal entry of executemany
_RETURNING = re.compile(r"INSERT INTO (\w+) \(([^)]*)\) VALUES \((.*)\) RETURNING (\w+)", re.S)
# An id column's sequence raised to a value, never lowered; arguments: the table, the column, then
# those of {value} (a parameter, or a query of the table)
_RAISE_SEQUENCE = (
    "SELECT setval(s, v) FROM (SELECT pg_get_serial_sequence(%s, %s) AS s, ({value}) AS v) x "
    "WHERE s IS NOT NULL AND v > COALESCE(pg_sequence_last_value(CAST(s AS regclass)), 0)"
)

T = TypeVar("T")


def connect_postgres(location: str, shown: str, read_only: bool) -> Any:
    """A psycopg connection in autocommit; StoreError if the server cannot be reached."""
    try:
        import psycopg  # noqa: PLC0415
    except ImportError:
        raise StoreError("a postgresql:// memory needs psycopg: pip install 'live-memory-streamer[postgres]'") from None
    try:
        conn = psycopg.connect(location, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS)
    except psycopg.Error as e:
        reason = " ".join(line.strip() for line in str(e).splitlines() if line.strip()) or type(e).__name__
        raise StoreError(f"cannot connect to {shown}: {reason}") from e
    if read_only:  # every statement, in a transaction of ours or on its own
        conn.execute("SET default_transaction_read_only = on")
    return conn


class PostgresLink(Link):
    """One connection to a PostgreSQL database. Not for two threads at once."""

    dialect = Dialect.POSTGRES
    strpos = "strpos"
    foreign = "holds tables of another application"

    def __init__(self, location: str, shown: str, read_only: bool, waits: bool = True) -> None:
        self._location, self._shown, self._read_only = location, shown, read_only
        self._waits = waits and not read_only  # an outage is waited out (the memory's writer), or fails what is asked
        self._conn = connect_postgres(location, shown, read_only)
        import psycopg  # noqa: PLC0415 (there, since it connected)

        self._error = psycopg.Error
        self.errors = (psycopg.Error,)
        self._backend = self._lost = _backend(self._conn)
        self.state = LinkState()
        self._begun: str | None = None  # the open transaction's BEGIN
        self._xid = ""  # the open write transaction's id
        self._journal: list[tuple[str, Any, Any]] = []  # its writes: (sql, args or rows, RETURNING rows or _MANY)

    @staticmethod
    def exists(location: str, shown: str) -> bool:
        link = PostgresLink(location, shown, read_only=True)
        try:
            return link.holds_memory()
        finally:
            link.close()

    @property
    def conn(self) -> Any:
        return self._conn

    @property
    def in_transaction(self) -> bool:
        return self._begun is not None

    def begin(self, *, immediate: bool = False) -> None:
        self._xid = self._run(self._begin_write)  # a row's lock is taken by the statement that writes it
        self._begun, self._journal = WRITE_BEGIN, []

    def begin_snapshot(self) -> None:
        self._run(lambda: self.conn.execute(SNAPSHOT_BEGIN))
        self._begun, self._journal = SNAPSHOT_BEGIN, []

    def _begin_write(self) -> str:
        """BEGIN on the connection; returns the new transaction's id."""
        cur = self.conn.execute(WRITE_BEGIN)
        cur.nextset()
        return str(cur.fetchone()[0])

    def upsert(self, table: str, columns: tuple[str, ...], key: tuple[str, ...]) -> str:
        return _upsert(table, columns, key)

    def table_count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()").fetchone()[0])

    def holds_memory(self) -> bool:
        return bool(self.conn.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()[0])

    def run_script(self, script: str) -> None:
        self.conn.execute(script)  # one script (function bodies hold ';'), no parameters

    def columns(self, table: str) -> list[str]:
        return [r[0] for r in self.conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = %s "
            "AND is_generated = 'NEVER' AND identity_generation IS DISTINCT FROM 'ALWAYS' ORDER BY ordinal_position", (table,))]  # fmt: skip

    def batches(self, sql: str, size: int) -> Iterator[list[tuple[Any, ...]]]:
        with self.conn.cursor(name="memory_batches") as cur:  # on the server: rows come as they are fetched
            cur.execute(_placeholders(sql))
            while rows := cur.fetchmany(size):
                yield rows

    def high_water(self, table: str, column: str) -> int:
        value = self.conn.execute(
            "SELECT pg_sequence_last_value(CAST(pg_get_serial_sequence(%s, %s) AS regclass))", (table, column)
        ).fetchone()[0]
        return int(value or 0)

    def raise_high_water(self, table: str, column: str, value: int) -> None:
        self.conn.execute(_RAISE_SEQUENCE.format(value="%s"), (table, column, value))

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        sql = _placeholders(sql)
        cur = self._run(lambda: self.conn.execute(sql, args))
        if self._begun is not None and self._waits and sql.lstrip()[:6].upper() != "SELECT":  # kept to replay
            returned = None
            if cur.description is not None:  # RETURNING: kept, and the caller reads them all the same
                if not _RETURNING.fullmatch(sql.strip()):
                    raise StoreError(f"cannot replay after a lost connection: {sql}")
                returned = cur.fetchall()
                cur.scroll(0, mode="absolute")
            self._journal.append((sql, args, returned))
        return cur

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        sql, rows = _placeholders(sql), list(rows)

        def run() -> None:
            with self.conn.cursor() as cur:  # psycopg pipelines the rows: one round trip, not one per row
                cur.executemany(sql, rows)

        self._run(run)
        if self._begun is not None and self._waits:
            self._journal.append((sql, rows, _MANY))

    def commit(self) -> None:
        while True:
            try:
                self.conn.execute("COMMIT")
                break
            except self._error as e:
                if not self.conn.closed:
                    raise
                self._reconnect(e)
                if not self._journal or self._committed(self._xid):  # nothing written, or it was committed
                    break
                self._replay()
        self._begun, self._journal = None, []

    def rollback(self) -> None:
        self._begun, self._journal = None, []
        try:
            self.conn.execute("ROLLBACK")
        except self._error:
            if not self.conn.closed:
                raise  # else the server rolled it back as the connection broke

    def close(self) -> None:
        self.conn.close()

    # --- losing the connection ------------------------------------------------------------------

    def _run(self, op: Callable[[], T]) -> T:
        while True:
            try:
                return op()
            except self._error as e:
                if not self.conn.closed:
                    raise
                self._reconnect(e)
                self._replay()

    def _reconnect(self, cause: Exception) -> None:
        """A new connection, after as many attempts as it takes (one unless the link waits)."""
        self.state.connected = False
        self.state.losses += 1
        reason = " ".join(str(cause).split()) or type(cause).__name__
        log.warning("lost the connection to %s (%s); reconnecting", self._shown, reason)
        lost, wait = time.monotonic(), RECONNECT_FIRST_SECONDS
        while True:
            time.sleep(wait)
            try:
                self._conn = connect_postgres(self._location, self._shown, self._read_only)
                backend = _backend(self.conn)
                break
            except (StoreError, self._error) as e:
                if not self._waits:
                    raise StoreError(f"lost the connection to {self._shown}: {e}") from e
                wait = min(wait * 2, RECONNECT_MAX_SECONDS)
                log.info("%s; trying again in %.0f s", e, wait)
        self._lost, self._backend = self._backend, backend
        self.state.connected = True
        log.warning("reconnected to %s after %.1f s", self._shown, time.monotonic() - lost)

    def _replay(self) -> None:
        """The open transaction again, on the new connection."""
        if self._begun is None:
            return
        if self._begun != WRITE_BEGIN or not self._waits:
            self._begun, self._journal = None, []
            raise StoreError(f"the connection to {self._shown} broke; ask again")
        while True:
            try:
                self._end_lost()  # a cut connection's transaction may still hold its rows' locks
                self._write_journal()
                break
            except self._error as e:
                if not self.conn.closed:
                    raise
                self._reconnect(e)
        self.state.replayed += len(self._journal)
        log.info("replayed the %d statements of the open transaction on %s", len(self._journal), self._shown)

    def _write_journal(self) -> None:
        self._xid = self._begin_write()
        counters: set[tuple[str, str]] = set()
        for sql, args, returned in self._journal:
            if returned is _MANY:
                with self.conn.cursor() as cur:
                    cur.executemany(sql, args)
            elif returned:
                table, columns, values, key = _RETURNING.fullmatch(sql.strip()).groups()  # type: ignore[union-attr]
                self.conn.execute(f"INSERT INTO {table} ({key}, {columns}) VALUES (%s, {values})", (returned[0][0], *args))
                counters.add((table, key))
            else:
                self.conn.execute(sql, args)
        for table, key in counters:  # a crashed server may have lost the ids it handed out: none goes out twice
            self.conn.execute(_RAISE_SEQUENCE.format(value=f"SELECT MAX({key}) FROM {table}"), (table, key))

    def _committed(self, xid: str) -> bool:
        """Whether the transaction whose COMMIT went unanswered committed."""
        while True:
            try:
                self._end_lost()
                status = self.conn.execute("SELECT pg_xact_status(%s::xid8)", (xid,)).fetchone()[0]
            except self._error as e:
                if not self.conn.closed:
                    return False  # an id the server never recorded ("in the future"): it did not commit
                self._reconnect(e)
                continue
            if status != "in progress":
                return bool(status == "committed")
            time.sleep(RECONNECT_FIRST_SECONDS)  # its backend is ending

    def _end_lost(self) -> None:
        """Ends the backend of the lost connection if the server still runs it (a network cut: it has
        not noticed), so that its transaction lets go of its rows."""
        self.conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = %s AND backend_start = %s", self._lost
        )


def _backend(conn: Any) -> tuple[int, Any]:
    """(pid, start) of a connection's backend on the server: a pid alone may be another's after a restart."""
    return conn.execute("SELECT pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()").fetchone()


_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\?|%")


@functools.lru_cache(maxsize=1024)
def _placeholders(sql: str) -> str:
    """Our statements' `?` -> psycopg's `%s`, and `%` -> `%%`, outside string literals (there is no
    spelling both drivers accept, so a statement is rewritten once and the result cached)."""
    return _PLACEHOLDER.sub(lambda m: "%s" if m.group() == "?" else "%%" if m.group() == "%" else m.group(), sql)


@functools.lru_cache(maxsize=64)
def _upsert(table: str, columns: tuple[str, ...], key: tuple[str, ...]) -> str:
    sets = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets}")  # fmt: skip
