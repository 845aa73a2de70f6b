"""One error root for the memory library, with builtin mix-ins."""

from __future__ import annotations


class MemoryGraphError(Exception):
    """Root of every error the memory library raises on purpose."""


class NodeNotFound(MemoryGraphError, KeyError):
    """No node has that id (after following merges)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "node not found"


class StoreError(MemoryGraphError, OSError):
    """The store (an SQLite file or a PostgreSQL database) cannot be opened or is not a memory database."""
