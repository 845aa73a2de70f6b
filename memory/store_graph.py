"""The store's memory graph: clips, text memories and their provenance, edges, equivalences and
characters (part of memory.store.Store, which holds the connection and the open transaction)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .database import Database
from .records import Provenance
from .rows import NodeRow


class GraphStore:
    db: Database
    _write: Callable[..., Any]
    _write_many: Callable[[str, Iterable[Sequence[Any]]], None]
    _scalar: Callable[..., Any]
    save_nodes: Callable[[Iterable[NodeRow]], None]

    def add_clip(self, stream: str, idx: int, first_t: float, last_t: float, start: float, end: float) -> int:
        sql = "INSERT INTO clips (stream, idx, first_t, last_t, start_wall, end_wall) VALUES (?, ?, ?, ?, ?, ?) RETURNING id"
        return int(self._write(sql, (stream, idx, first_t, last_t, start, end)).fetchall()[0][0])

    def add_text_node(self, row: NodeRow, clip_id: int | None, text: str, key: str | None = None) -> None:
        """A text node; the first of a clip is the clip's memory (who was there)."""
        self.save_nodes([row])
        self._write("INSERT INTO text_nodes (node_id, clip_id, text, key) VALUES (?, ?, ?, ?)", (row.id, clip_id, text, key))
        if clip_id is not None:
            self._write("UPDATE clips SET text_node = ? WHERE id = ? AND text_node IS NULL", (row.id, clip_id))

    def add_model_memory(self, row: NodeRow, clip_id: int | None, text: str, about_clip: int | None, source: Provenance) -> None:
        """A language model's memory with its provenance; never a clip's own memory."""
        self.save_nodes([row])
        self._write("INSERT INTO text_nodes (node_id, clip_id, text) VALUES (?, ?, ?)", (row.id, clip_id, text))
        self._write(
            "INSERT INTO model_memories (node_id, clip_id, model, endpoint, wall_time, images) VALUES (?, ?, ?, ?, ?, ?)",
            (row.id, about_clip, source.model, source.endpoint, source.wall_time, int(source.images)),
        )

    def model_memory(self, node_id: int) -> tuple[int | None, Provenance] | None:
        """(clip id, provenance) of a model's memory; None for any other node."""
        r = self.db.execute(
            "SELECT clip_id, model, endpoint, wall_time, images FROM model_memories WHERE node_id = ?", (node_id,)
        ).fetchone()
        return None if r is None else (r[0], Provenance(r[1], r[2], r[3], bool(r[4])))

    def keyed_text(self, key: str) -> tuple[int, str] | None:
        """(node id, text) of the text node with this key (a semantic memory that is kept up to date)."""
        return self.db.execute("SELECT node_id, text FROM text_nodes WHERE key = ?", (key,)).fetchone()

    def set_text(self, node_id: int, text: str) -> None:
        self._write("UPDATE text_nodes SET text = ? WHERE node_id = ?", (text, node_id))

    def clip_texts(self, clip_id: int) -> list[tuple[int, str]]:
        """(node id, text) of a clip's episodic memories, in the order they were written."""
        return self.db.execute("SELECT node_id, text FROM text_nodes WHERE clip_id = ? ORDER BY node_id", (clip_id,)).fetchall()

    def clip_turns(self, track_ids: Sequence[int]) -> list[tuple[int, float, float, str | None]]:
        """(turn id, t_start, t_end, text) of the speech turns among some tracks, in time order."""
        marks = ", ".join("?" * len(track_ids))
        return self.db.execute(
            f"SELECT track_id, t_start, t_end, text FROM speech_turns WHERE track_id IN ({marks}) ORDER BY t_start, track_id",
            list(track_ids),
        ).fetchall()

    def appearances(self, node_ids: Sequence[int]) -> list[tuple[int, str, float]]:
        """(clip id, stream, start wall) of every clip whose memory names one of the nodes."""
        marks = ", ".join("?" * len(node_ids))
        return self.db.execute(
            f"SELECT DISTINCT c.id, c.stream, c.start_wall FROM edges e JOIN clips c ON c.text_node = e.src "
            f"WHERE e.dst IN ({marks}) ORDER BY c.id",
            list(node_ids),
        ).fetchall()

    def companions(self, node_ids: Sequence[int]) -> list[tuple[int, int]]:
        """(other node, clips shared) over the clips whose memory names one of the nodes."""
        marks = ", ".join("?" * len(node_ids))
        return self.db.execute(
            f"SELECT e2.dst, COUNT(DISTINCT c.id) FROM edges e1 JOIN clips c ON c.text_node = e1.src "
            f"JOIN edges e2 ON e2.src = e1.src WHERE e1.dst IN ({marks}) AND e2.dst NOT IN ({marks}) GROUP BY e2.dst",
            list(node_ids) * 2,
        ).fetchall()

    def semantic_about(self, node_ids: Sequence[int]) -> list[tuple[int, str]]:
        """(node id, text) of the semantic memories linked to any of the nodes."""
        marks = ", ".join("?" * len(node_ids))
        return self.db.execute(
            f"SELECT DISTINCT t.node_id, t.text FROM text_nodes t JOIN nodes n ON n.id = t.node_id "
            f"JOIN edges e ON e.src = t.node_id WHERE n.kind = 'semantic' AND e.dst IN ({marks}) ORDER BY t.node_id",
            list(node_ids),
        ).fetchall()

    def stream_turns(self, stream: str, t_from: float, t_to: float) -> list[tuple[int, float, float, str | None, int | None]]:
        """(turn id, t_start, t_end, text, stored node) of a stream's turns starting in [t_from, t_to]."""
        return self.db.execute(
            "SELECT s.track_id, s.t_start, s.t_end, s.text, tr.node_id FROM speech_turns s LEFT JOIN tracks tr ON tr.id = s.track_id "
            "WHERE s.stream = ? AND s.t_start BETWEEN ? AND ? ORDER BY s.t_start, s.track_id",
            (stream, t_from, t_to),
        ).fetchall()

    def set_edges(self, src: int, edges: Iterable[tuple[int, float]]) -> None:
        """Replaces every edge from `src` (a semantic memory says what it says now)."""
        self._write("DELETE FROM edges WHERE src = ?", (src,))
        self.add_edges((src, dst, w) for dst, w in edges)

    def text(self, node_id: int) -> str | None:
        value = self._scalar("SELECT text FROM text_nodes WHERE node_id = ?", (node_id,))
        return None if value is None else str(value)

    def clips(self, stream: str | None = None) -> list[dict[str, Any]]:
        return self._clips("WHERE c.stream = ? ORDER BY c.id" if stream else "ORDER BY c.id", (stream,) if stream else ())

    def clip(self, stream: str, index: int) -> dict[str, Any] | None:
        """The latest clip `index` of a stream (a file analysed twice has its clips twice), as clips() gives it."""
        found = self._clips("WHERE c.stream = ? AND c.idx = ? ORDER BY c.id DESC LIMIT 1", (stream, index))
        return found[0] if found else None

    def _clips(self, where: str, args: Sequence[Any]) -> list[dict[str, Any]]:
        sql = "SELECT c.id, c.stream, c.idx, c.first_t, c.last_t, c.start_wall, c.end_wall, c.text_node, t.text FROM clips c "
        rows = self.db.execute(sql + "LEFT JOIN text_nodes t ON t.node_id = c.text_node " + where, args)
        keys = ("id", "stream", "index", "first_t", "last_t", "start_wall", "end_wall", "memory", "text")
        return [dict(zip(keys, r)) for r in rows]

    def add_edges(self, edges: Iterable[tuple[int, int, float]]) -> None:
        sql = "INSERT INTO edges (src, dst, weight) VALUES (?, ?, ?) ON CONFLICT (src, dst) DO UPDATE SET weight = edges.weight + excluded.weight"
        self._write_many(sql, edges)

    def move_edges(self, old: int, new: int) -> None:
        """Point every edge of `old` at `new`, adding weights where both had one."""
        moved = self.db.execute("SELECT src, dst, weight FROM edges WHERE src = ? OR dst = ?", (old, old)).fetchall()
        self._write("DELETE FROM edges WHERE src = ? OR dst = ?", (old, old))
        self.add_edges((new if s == old else s, new if d == old else d, w) for s, d, w in moved)

    def edges(self, node_id: int) -> list[tuple[int, int, float]]:
        return self.db.execute("SELECT src, dst, weight FROM edges WHERE src = ? OR dst = ? ORDER BY src, dst", (node_id, node_id)).fetchall()

    def equivalences(self) -> list[tuple[int, int, bool]]:
        """(face id, voice id, set by hand) of every tie."""
        return [(f, v, bool(m)) for f, v, m in self.db.execute("SELECT face_id, voice_id, manual FROM equivalences")]

    def set_equivalences(self, ties: Iterable[tuple[int, int, bool]]) -> None:
        self._write("DELETE FROM equivalences")
        self._write_many("INSERT INTO equivalences (face_id, voice_id, manual) VALUES (?, ?, ?)", ((f, v, int(m)) for f, v, m in ties))

    def character_ids(self) -> dict[int, int]:
        return dict(self.db.execute("SELECT node_id, character_id FROM characters").fetchall())

    def set_character_ids(self, ids: dict[int, int]) -> None:
        self._write("DELETE FROM characters")
        self._write_many("INSERT INTO characters (node_id, character_id) VALUES (?, ?)", ids.items())
