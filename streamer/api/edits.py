"""Edits through the API: the same Memory operations as `streamer node ...` and `streamer character ...`,
so they emit the same events. They run where the Memory lives (in `streamer run`, its memory thread)
and flush, so the next question already sees them and the feed publishes their events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from memory import Memory

# runs a function on the Memory where it lives (MemoryWorker.call in a run)
Editor = Callable[[Callable[[Memory], Any]], Awaitable[Any]]


def _node(memory: Memory, node_id: int) -> dict[str, Any]:
    node = memory.node(node_id)
    character = memory.character_of(node.id)
    return {"node": node.id, "kind": node.kind.value, "status": node.status.value, "label": node.label,
            "character": None if character is None else character.id}  # fmt: skip


def label(memory: Memory, node_id: int, name: str) -> dict[str, Any]:
    memory.label(node_id, name)
    memory.flush()
    return _node(memory, node_id)


def merge(memory: Memory, keep: int, other: int) -> dict[str, Any]:
    kept = memory.merge(keep, other)
    memory.flush()
    return {**_node(memory, kept), "merged": other}


def split(memory: Memory, node_id: int, tracks: Sequence[int]) -> dict[str, Any]:
    new = memory.split(node_id, list(tracks))
    memory.flush()
    return {"node": node_id, "new_node": new, "tracks": list(tracks)}


def link(memory: Memory, face: int, voice: int) -> dict[str, Any]:
    memory.link(face, voice)
    memory.flush()
    return _node(memory, face) | {"voice": voice}


def forget(memory: Memory, target: str) -> dict[str, Any]:
    done = memory.forget(target)  # commits (and checkpoints) by itself
    return {"forgotten": target, "nodes": list(done.nodes), "former": list(done.former), "character": done.character}


def unlink(memory: Memory, face: int, voice: int) -> dict[str, Any]:
    memory.unlink(face, voice)
    memory.flush()
    return _node(memory, face) | {"voice": voice}
