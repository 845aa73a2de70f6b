"""What the publisher needs from memory, as awaitables: Memory is blocking and owned by one thread.

The outbox is Memory's events table and the cursor is `published_seq` / `mark_published`, so an
event is stored before it is published and survives broker and streamer restarts.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

from memory.errors import NodeNotFound
from memory.records import MemoryEvent, Node, NodeStatus

from .payloads import IDENTITY_KINDS, node_payload

if TYPE_CHECKING:
    from memory import Memory

LIVE = (NodeStatus.PROVISIONAL, NodeStatus.CONFIRMED)
P = ParamSpec("P")
R = TypeVar("R")
NodeState = dict[str, Any]


@dataclass(frozen=True)
class PersonState:
    key: str  # "character_2", or "face_3" / "voice_7" for a node tied to no character
    label: str | None
    last_seen: float | None  # unix seconds, over all the person's nodes


class MemoryFeed(Protocol):
    async def events_after(self, seq: int, limit: int) -> list[MemoryEvent]: ...

    async def published_seq(self) -> int: ...

    async def mark_published(self, seq: int) -> None: ...

    async def node_states(self, ids: Iterable[int]) -> dict[int, NodeState | None]:
        """Retained payload per identity id; None for one merged away, expired or unknown (its topic
        is cleared); ids of other kinds (episodic, semantic) are left out (they have no topic)."""
        ...

    async def identity_states(self) -> dict[int, NodeState]:
        """Payloads of every live identity, republished on each (re)connect."""
        ...

    async def character_states(self, ids: Iterable[int] | None) -> dict[int, NodeState | None]:
        """Retained payload per character id, None for one that dissolved; every character when ids is None."""
        ...

    async def people(self, ids: Iterable[int] | None) -> dict[int, PersonState | None]:
        """The person each face or voice node id belongs to now (None: merged away, expired, forgotten
        or unknown); every live identity when ids is None. For Home Assistant (publish.homeassistant)."""
        ...


class MemoryThreadFeed:
    """MemoryFeed over a Memory owned by `executor`'s single worker thread."""

    def __init__(self, memory: Memory, executor: ThreadPoolExecutor, *, crops: bool = False) -> None:
        self._memory = memory
        self._executor = executor
        self._crops = crops  # mqtt.publish_crops

    async def _call(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def events_after(self, seq: int, limit: int) -> list[MemoryEvent]:
        return await self._call(self._memory.events_after, seq, limit)

    async def published_seq(self) -> int:
        return await self._call(self._memory.published_seq)

    async def mark_published(self, seq: int) -> None:
        await self._call(self._memory.mark_published, seq)

    async def node_states(self, ids: Iterable[int]) -> dict[int, NodeState | None]:
        return await self._call(self._node_states, list(ids))

    async def identity_states(self) -> dict[int, NodeState]:
        return await self._call(self._identity_states)

    async def character_states(self, ids: Iterable[int] | None) -> dict[int, NodeState | None]:
        return await self._call(self._character_states, None if ids is None else list(ids))

    async def people(self, ids: Iterable[int] | None) -> dict[int, PersonState | None]:
        return await self._call(self._people, None if ids is None else list(ids))

    # The methods below run on the memory thread.

    def _people(self, ids: list[int] | None) -> dict[int, PersonState | None]:
        if ids is None:
            ids = [n.id for kind in IDENTITY_KINDS for n in self._memory.nodes(kind=kind)]
        out: dict[int, PersonState | None] = {}
        for node_id in ids:
            try:
                node = self._memory.node(node_id)
            except NodeNotFound:
                out[node_id] = None
                continue
            if node.kind not in IDENTITY_KINDS or node.id != node_id or node.status not in LIVE:
                out[node_id] = None
                continue
            character = self._memory.character_of(node_id)
            if character is None:
                out[node_id] = PersonState(f"{node.kind.value}_{node.id}", node.label, node.last_seen_wall)
            else:
                seen = [self._memory.node(n).last_seen_wall for n in (*character.faces, *character.voices)]
                last = max((s for s in seen if s is not None), default=None)
                out[node_id] = PersonState(f"character_{character.id}", character.label, last)
        return out

    def _payload(self, node: Node) -> NodeState:
        crops = self._memory.crops(node.id) if self._crops else []
        return node_payload(node, crops[0] if crops else None)

    def _node_states(self, ids: list[int]) -> dict[int, NodeState | None]:
        out: dict[int, NodeState | None] = {}
        for node_id in ids:
            try:
                node = self._memory.node(node_id)  # follows merges: a merged-away id yields its survivor
            except NodeNotFound:
                out[node_id] = None
                continue
            if node.kind not in IDENTITY_KINDS:
                continue
            gone = node.id != node_id or node.status not in LIVE
            out[node_id] = None if gone else self._payload(node)
        return out

    def _identity_states(self) -> dict[int, NodeState]:
        return {n.id: self._payload(n) for kind in IDENTITY_KINDS for n in self._memory.nodes(kind=kind)}

    def _character_states(self, ids: list[int] | None) -> dict[int, NodeState | None]:
        if ids is None:
            return {c["id"]: c for c in self._memory.export_characters()}
        return {c: self._memory.character_state(c) for c in ids}
