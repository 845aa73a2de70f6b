"""Asking the memory: a read-only query layer over a memory file, safe beside a live run that writes it.

Reached three ways (streamer.api over HTTP, MCP tools, `streamer ask`); every answer is a record of
memory.query.records carrying node and character ids, streams and times. Embeddings are never part
of an answer.
"""

from .core import MemoryQuery, QueryError
from .people import PersonNotFound
from .records import Clip, Companion, Hit, LastSeen, Person, Present, Sighting, TextMemory, Utterance, Visit
from .texts import ClipNotFound

__all__ = [
    "Clip",
    "ClipNotFound",
    "Companion",
    "Hit",
    "LastSeen",
    "MemoryQuery",
    "Person",
    "PersonNotFound",
    "Present",
    "QueryError",
    "Sighting",
    "TextMemory",
    "Utterance",
    "Visit",
]
