"""Every event the memory emits, and what each one carries: the one place that writes events.

Events go into the store's open transaction beside the state they describe, so a crash loses
both or neither. node.updated is throttled per node; the last change is always told.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from typing import Any

import numpy as np

from .graph import OpenClip
from .nodes import ACTIVE, NodeTable
from .presence import Presence
from .rows import NodeRow
from .store import Store

UPDATE_EVENT_MIN_SECONDS = 5.0  # node.updated at most this often per node


class EventLog:
    def __init__(self, store: Store, nodes: NodeTable, clock: Callable[[], float]) -> None:
        self._store = store
        self._nodes = nodes
        self._clock = clock
        self.unflushed = 0  # emitted since the last commit
        self._last_update: dict[int, float] = {}
        self._update_due: set[int] = set()

    def _emit(self, type_: str, stream: str | None, data: dict[str, Any]) -> None:
        self._store.add_event(uuid.uuid4().hex, type_, self._clock(), stream, data)
        self.unflushed += 1

    # --- node life ------------------------------------------------------------------------------

    def created(self, node: NodeRow, stream: str | None, now: float) -> None:
        self._last_update[node.id] = now  # node.created says it all; updates are throttled from here
        self._emit("node.created", stream, {"node": node.id, "kind": node.kind.value, "status": node.status.value})

    def confirmed(self, node: NodeRow) -> None:
        self._emit("node.confirmed", None, {"node": node.id, "kind": node.kind.value})

    def expired(self, node: NodeRow) -> None:
        self._emit("node.expired", None, {"node": node.id, "kind": node.kind.value})

    def labelled(self, node: NodeRow, previous: str | None) -> None:
        self._emit("node.labelled", None, {"node": node.id, "kind": node.kind.value, "label": node.label, "previous": previous})

    def merged(self, survivor: NodeRow, other: int, manual: bool) -> None:
        self._emit("node.merged", None, {"from": [other], "into": survivor.id, "kind": survivor.kind.value, "manual": manual})

    def forgotten(self, nodes: list[int], former: list[int], character: int | None) -> None:
        """A person was forgotten on request: their nodes (and ids merged into them) and their character."""
        self._emit("node.forgotten", None, {"nodes": nodes, "former": former, "character": character})

    def split(self, node: NodeRow, new: int, tracks: list[int], manual: bool) -> None:
        self._emit("node.split", None, {"from": node.id, "into": [new], "kind": node.kind.value, "tracks": tracks, "manual": manual})

    def updated(self, node_id: int, now: float) -> None:
        """node.updated, throttled: at most one per UPDATE_EVENT_MIN_SECONDS, the last change always told."""
        self._nodes.touch(node_id)
        if now - self._last_update.get(node_id, -np.inf) >= UPDATE_EVENT_MIN_SECONDS:
            self._emit_update(node_id, now)
        else:
            self._update_due.add(node_id)

    def updates_due(self, now: float) -> None:
        for node_id in [n for n in self._update_due if now - self._last_update[n] >= UPDATE_EVENT_MIN_SECONDS]:
            self._emit_update(node_id, now)

    def forget(self, node_ids: Collection[int]) -> None:
        """Nodes deleted (memory.forget, memory.retention) are throttled no more."""
        for node_id in node_ids:
            self._last_update.pop(node_id, None)
            self._update_due.discard(node_id)

    def _emit_update(self, node_id: int, now: float) -> None:
        node = self._nodes[node_id]
        self._update_due.discard(node_id)
        self._last_update[node_id] = now
        if node.status in ACTIVE:
            self._emit("node.updated", None, {"node": node_id, "kind": node.kind.value, "status": node.status.value,
                                              "label": node.label, "n_embeddings": node.n_embeddings,
                                              "n_observations": node.n_observations})  # fmt: skip

    # --- presence, clips, speech ----------------------------------------------------------------

    def appeared(self, node: NodeRow, stream: str, presence: Presence) -> None:
        self._emit("person.appeared", stream, {"node": node.id, "kind": node.kind.value, "label": node.label, "t": presence.first_t})

    def left(self, node: NodeRow, stream: str, presence: Presence) -> None:
        self._emit("person.left", stream, {"node": node.id, "kind": node.kind.value, "t": presence.last_t})

    def clip_closed(self, clip: OpenClip, nodes: list[int], memories: list[tuple[int, str, list[int]]]) -> None:
        """`text` and `memory` are the clip's first episodic memory (who was there); `memories` all of them."""
        text, memory_id = (memories[0][1], memories[0][0]) if memories else (None, None)
        self._emit("clip.closed", clip.stream, {
            "clip": clip.index, "start": clip.first_wall, "end": clip.last_wall, "text": text, "nodes": nodes,
            "memory": memory_id, "memories": [{"id": i, "text": t, "nodes": n} for i, t, n in memories]})  # fmt: skip

    def character_updated(self, character: int, faces: tuple[int, ...], voices: tuple[int, ...], label: str | None) -> None:
        """A character formed, changed its nodes or its label, or dissolved (no faces and no voices left)."""
        self._emit("character.updated", None, {"character": character, "faces": list(faces), "voices": list(voices), "label": label})

    def speech(self, stream: str, turn: int, t_start: float, t_end: float, node: int | None, text: str | None) -> None:
        self._emit("speech", stream, {"turn": turn, "t_start": t_start, "t_end": t_end, "node": node, "text": text})
