"""Memory's exports: every face, speech turn, node and character as a plain record (part of Memory)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from .characters import Character, Characters
from .nodes import ACTIVE, NodeTable
from .records import NodeStatus
from .store import Store


class Exports:
    _store: Store
    _nodes: NodeTable
    _characters: Characters
    _write_pending: Callable[[], None]
    resolve: Callable[[int], int]

    def export_faces(self) -> Iterator[dict[str, Any]]:
        self._write_pending()
        for stream, t, wall, x1, y1, x2, y2, det, quality, face_type, node_id in self._store.observations():
            yield {"stream": stream, "t": t, "wall_time": wall, "bbox": [x1, y1, x2, y2], "det_score": det,
                   "quality": quality, "face_type": face_type,
                   "node": (node := None if node_id is None else self._nodes.live(node_id)),
                   "character": self._character_id(node)}  # fmt: skip

    def export_voices(self) -> Iterator[dict[str, Any]]:
        """One record per speech turn; `node` is its voice identity after all merges, `character`
        the character of that voice (None if it has none), `text` None when the turn was not transcribed."""
        self._write_pending()
        for stream, t_start, t_end, wall, text, node_id in self._store.turns():
            node = None if node_id is None else self._nodes.live(node_id)
            yield {"stream": stream, "t_start": t_start, "t_end": t_end, "wall_time": wall,
                   "node": node, "character": self._character_id(node), "text": text}  # fmt: skip

    def export_nodes(self) -> Iterator[dict[str, Any]]:
        self._write_pending()
        track_counts = self._store.track_counts()
        merged_from: dict[int, list[int]] = {}
        for n in self._nodes.rows.values():
            if n.status == NodeStatus.MERGED:
                merged_from.setdefault(self.resolve(n.id), []).append(n.id)
        for n in sorted(self._nodes.rows.values(), key=lambda n: n.id):
            if n.status in ACTIVE:
                yield {"id": n.id, "tag": f"<{n.kind.value}_{n.id}>", "character": self._character_id(n.id),
                       "kind": n.kind.value, "status": n.status.value,
                       "label": n.label, "created": n.created_wall, "first_seen": n.first_seen_wall,
                       "last_seen": n.last_seen_wall, "streams": sorted(n.streams),
                       "n_observations": n.n_observations, "n_embeddings": n.n_embeddings,
                       "n_tracks": track_counts.get(n.id, 0), "merged_from": sorted(merged_from.get(n.id, []))}  # fmt: skip

    def _character_id(self, node_id: int | None) -> int | None:
        character = None if node_id is None else self._characters.of_node(node_id)
        return None if character is None else character.id

    def export_characters(self) -> Iterator[dict[str, Any]]:
        """One record per character: {id, label, faces, voices, first_seen, last_seen, streams}."""
        for c in self._characters.all():
            yield self._character_record(c)

    def character_state(self, character_id: int) -> dict[str, Any] | None:
        """A character as export_characters gives it; None once it dissolved (or never was)."""
        c = self._characters.get(character_id)
        return None if c is None else self._character_record(c)

    def _character_record(self, c: Character) -> dict[str, Any]:
        rows = [self._nodes[n] for n in (*c.faces, *c.voices)]
        first = [r.first_seen_wall for r in rows if r.first_seen_wall is not None]
        last = [r.last_seen_wall for r in rows if r.last_seen_wall is not None]
        return {"id": c.id, "label": c.label, "faces": list(c.faces), "voices": list(c.voices),
                "first_seen": min(first, default=None), "last_seen": max(last, default=None),
                "streams": sorted(set().union(*(r.streams for r in rows)))}  # fmt: skip
