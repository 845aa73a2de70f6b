"""Memories written by a language model about a clip, stored beside the ones the graph writes.

A model's lines are text nodes like any other memory (episodic ones belong to their clip, semantic
ones to the people they name), linked to the face, voice and character tags they mention, and each
carries its provenance: which model wrote it, from which endpoint, when, and whether it saw images.
Only tags of the clip's own people (the tags the model was given) are linked: a tag the model made
up, or took from the examples it was shown, stays in the text and links nothing. They never become
a clip's own "who was there" memory.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .characters import Characters
from .nodes import ACTIVE, NodeTable
from .records import NodeKind, NodeStatus, Provenance
from .rows import NodeRow
from .store import Store

TAG = re.compile(r"<(face|voice|character)_(\d+)>")


class ModelMemories:
    def __init__(self, store: Store, nodes: NodeTable, characters: Characters, clock: Callable[[], float]) -> None:
        self._store = store
        self._nodes = nodes
        self._characters = characters
        self._clock = clock

    def add(
        self, stream: str, index: int, episodic: list[str], semantic: list[str], source: Provenance, people: set[int]
    ) -> list[tuple[int, str, list[int]]]:
        """Stores a model's memories of the latest clip `index` of `stream`, whose people (face and voice
        nodes) are `people`; returns (text node, text, linked nodes)."""
        found = [c for c in self._store.clips(stream) if c["index"] == index]
        clip = found[-1] if found else None
        clip_id = None if clip is None else clip["id"]
        first, last = (clip["start_wall"], clip["end_wall"]) if clip else (source.wall_time, source.wall_time)
        out = []
        for kind, texts in ((NodeKind.EPISODIC, episodic), (NodeKind.SEMANTIC, semantic)):
            for text in texts:
                node_id = self._nodes.new_id()
                row = NodeRow(node_id, kind, NodeStatus.CONFIRMED, None, None, self._clock(), first, last, 0, 0, 0,
                              None, None, {stream}, None)  # fmt: skip
                # a semantic memory is about people, not a clip: it is found through them
                self._store.add_model_memory(row, clip_id if kind == NodeKind.EPISODIC else None, text, clip_id, source)
                linked = self.mentioned(text, people)
                self._store.add_edges((node_id, n, 1.0) for n in linked)
                out.append((node_id, text, linked))
        return out

    def mentioned(self, text: str, people: set[int]) -> list[int]:
        """The nodes a text's tags name among `people`: a face or voice itself, a character's faces and voices."""
        nodes: set[int] = set()
        for kind, number in TAG.findall(text):
            n = int(number)
            if kind == "character":
                c = self._characters.get(n)
                members = set() if c is None else {*c.faces, *c.voices}
                if members & people:
                    nodes |= members
            elif n in self._nodes.rows:
                live = self._nodes.resolve(n)
                row = self._nodes.rows[live]
                if live in people and row.kind.value == kind and row.status in ACTIVE:
                    nodes.add(live)
        return sorted(nodes)
