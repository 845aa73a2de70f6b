"""Memory's reads: nodes, texts, edges, clips with what memory holds about them, crops, committed
events and characters (part of Memory)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .characters import Character, Characters
from .crops import CropShelf
from .nodes import ACTIVE, IDENTITY_KINDS, NodeTable, public
from .link import LinkState
from .records import MemoryEvent, Node, NodeKind, NodeStatus
from .store import Store


class Reads:
    _store: Store
    _nodes: NodeTable
    _crops: CropShelf
    _characters: Characters
    _write_pending: Callable[[], None]

    def resolve(self, node_id: int) -> int:
        return self._nodes.resolve(node_id)

    def node(self, node_id: int) -> Node:
        node_id = self.resolve(node_id)
        row = self._nodes.rows.get(node_id) or self._store.node_row(node_id)
        assert row is not None  # resolve found it
        return public(row)

    def nodes(self, kind: NodeKind | None = None, include_inactive: bool = False) -> list[Node]:
        found = [
            public(n)
            for n in self._nodes.rows.values()
            if (kind is None or n.kind == kind) and (include_inactive or n.status in ACTIVE)
        ]
        if kind not in IDENTITY_KINDS:
            found += [public(n) for n in self._store.text_node_rows(kind)]
        return sorted(found, key=lambda n: n.id)

    def count(self, kind: NodeKind, status: NodeStatus) -> int:
        """How many face or voice nodes of a kind have a status (without building each one's Node)."""
        return sum(n.kind == kind and n.status == status for n in self._nodes.rows.values())

    def text(self, node_id: int) -> str | None:
        """The text of an episodic or semantic node."""
        return self._store.text(self.resolve(node_id))

    def edges(self, node_id: int) -> list[tuple[int, int, float]]:
        """(src, dst, weight) of every edge touching a node (text node -> face/voice node)."""
        self._write_pending()
        return self._store.edges(self.resolve(node_id))

    def clips(self, stream: str | None = None) -> list[dict[str, Any]]:
        return self._store.clips(stream)

    def clip_memories(self, stream: str, index: int) -> dict[str, Any] | None:
        """The latest clip `index` of a stream (None: no such clip) with what memory holds about it:
        `episodic` [(text node, text, nodes it names)], `semantic` [(text node, text)] about its
        people, its `faces` and `voices` (node ids) and `turns` [(t_start, t_end, voice node, text)]."""
        self._write_pending()
        clip = self._store.clip(stream, index)  # a file analysed twice has its clips twice: the latest run's
        if clip is None:
            return None
        episodic = [(m, text, sorted({self._nodes.resolve(dst) for src, dst, _ in self._store.edges(m) if src == m}))
                    for m, text in self._store.clip_texts(clip["id"])]  # fmt: skip
        named = sorted({n for _, _, nodes in episodic for n in nodes})
        turns = [(t0, t1, None if n is None else self._nodes.live(n), text)
                 for _, t0, t1, text, n in self._store.stream_turns(stream, clip["first_t"], clip["last_t"])]  # fmt: skip
        people = sorted(set(named) | {n for _, _, n, _ in turns if n is not None})
        return {**clip, "episodic": episodic, "semantic": self._store.semantic_about(people) if people else [],
                "faces": [n for n in people if self._nodes.kind(n) == NodeKind.FACE],
                "voices": [n for n in people if self._nodes.kind(n) == NodeKind.VOICE], "turns": turns}  # fmt: skip

    def store_link(self) -> LinkState | None:
        """How the connection to a PostgreSQL server fares (None on an SQLite file); read from any thread."""
        return self._store.db.link.state

    def crops(self, node_id: int) -> list[bytes]:
        return self._crops.jpegs(self.resolve(node_id))

    def events_after(self, seq: int, limit: int = 1000) -> list[MemoryEvent]:
        """Committed events after `seq`, in order (a crash can never take back an event read here)."""
        return self._store.events_after(seq, limit)

    def last_event_seq(self) -> int:
        """The sequence number of the latest committed event (0: none yet)."""
        return int(self._store.committed_seq)

    def characters(self) -> list[list[int]]:
        """Face and voice nodes grouped by equivalences (after merges); nodes without one are left out."""
        return sorted(sorted([*c.faces, *c.voices]) for c in self._characters.all())

    def character(self, character_id: int) -> Character | None:
        return self._characters.get(character_id)

    def character_of(self, node_id: int) -> Character | None:
        return self._characters.of_node(node_id)
