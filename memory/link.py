"""One connection to the memory's store, whichever kind: what memory.database's callers may ask of it.

Each kind of store has one link class (memory.sqlite, memory.postgres) that spells the few things the
dialects say differently: placeholders (statements are written with `?`), replacing a row, read
snapshots, a substring's position, how a schema script runs and how a memory is told apart from any
other database. Callers hold a memory.database.Database and never ask which kind it is.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar


class Dialect(enum.Enum):
    SQLITE = "sqlite"
    POSTGRES = "postgresql"


@dataclass
class LinkState:
    """What a connection to a server went through, for logs and metrics."""

    connected: bool = True
    losses: int = 0  # times the connection broke
    replayed: int = 0  # statements of open transactions replayed after a loss


class Link(ABC):
    """One connection in autocommit with explicit transactions. Not for two threads at once."""

    dialect: ClassVar[Dialect]
    strpos: ClassVar[str]  # the function giving a substring's position (1-based, 0 if absent): strpos(text, part)
    foreign: ClassVar[str]  # how a database of another application is described in the refusal
    errors: tuple[type[Exception], ...]  # the driver's errors
    state: LinkState | None = None  # how the connection to a server fares (None: a file)

    @abstractmethod
    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        """The driver's cursor, rows as tuples."""

    @abstractmethod
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    @property
    @abstractmethod
    def in_transaction(self) -> bool: ...

    @abstractmethod
    def begin(self, *, immediate: bool = False) -> None:
        """A write transaction; `immediate` takes the write lock now where the store has one."""

    @abstractmethod
    def begin_snapshot(self) -> None:
        """A read transaction whose statements all see one moment of the memory."""

    @abstractmethod
    def commit(self) -> None: ...

    @abstractmethod
    def rollback(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def upsert(self, table: str, columns: tuple[str, ...], key: tuple[str, ...]) -> str:
        """INSERT of `columns` that replaces the row with the same `key`."""

    # --- the schema (memory.schema) ------------------------------------------------------------

    @abstractmethod
    def table_count(self) -> int:
        """How many tables the database holds (0: empty, ours to fill)."""

    @abstractmethod
    def holds_memory(self) -> bool:
        """Whether the database is a memory (created by memory.schema)."""

    @abstractmethod
    def run_script(self, script: str) -> None:
        """The statements of a schema step, in the open transaction."""

    def prepare(self) -> None:
        """Settings a memory's connection takes before it is used."""

    def claim(self) -> None:
        """Marks a database just filled with the schema as a memory, in the open transaction."""

    # --- copying a memory (memory.transfer) ---------------------------------------------------------

    @abstractmethod
    def columns(self, table: str) -> list[str]:
        """The columns of a table that a copy writes (not those the database computes)."""

    def batches(self, sql: str, size: int) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of a query, `size` at a time, without holding them all."""
        cur = self.execute(sql)
        while rows := cur.fetchmany(size):
            yield rows

    @abstractmethod
    def high_water(self, table: str, column: str) -> int:
        """The highest id the database has handed out in an id column (0: none, or it keeps no record)."""

    @abstractmethod
    def raise_high_water(self, table: str, column: str, value: int) -> None:
        """Ids handed out from now on in an id column come after `value`."""

    # --- forgetting for good (memory.forget): what a file can scrub beyond deleting rows ------------

    def secure_delete(self, on: bool) -> None:
        """Deleted rows' bytes overwritten (on) or left (off)."""

    def compact_words(self) -> None:
        """The word index rewritten, so that no old segment holds deleted words."""

    def empty_log(self) -> bool:
        """The write-ahead log emptied; True if a reader kept it from being emptied now."""
        return False
