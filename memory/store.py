"""The store: batched writes and the reads the memory needs (the schema is memory.schema, the
dialects memory.database: an SQLite file by default, or a PostgreSQL database).

One connection. Writes go into one open transaction that `commit` closes, so a batch of faces
costs one commit instead of one per row; a kill -9 loses at most the open batch and never corrupts
the store (SQLite: WAL with synchronous=NORMAL is durable against process crashes; a power cut may
also lose the last commits). Vectors are float32 blobs, structured data is JSON. The rows are
memory.rows; the memory graph's queries are memory.store_graph.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from .gallery import Gallery
from .records import MemoryEvent, NodeKind, SpeechTurn
from .database import Database
from .rows import NODE_COLUMNS, NodeRow, TrackRow, TrackStats, TurnFaceRow
from .schema import connect
from .store_graph import GraphStore

log = logging.getLogger(__name__)


class Store(GraphStore):
    def __init__(self, db: str) -> None:
        self.path = db
        self.db: Database = connect(db)
        self.committed_seq = self._scalar("SELECT COALESCE(MAX(seq), 0) FROM events")

    # --- transactions -------------------------------------------------------------------------

    def _write(self, sql: str, args: Sequence[Any] = ()) -> Any:
        self._begin()
        return self.db.execute(sql, args)

    def _write_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._begin()
        self.db.executemany(sql, rows)

    def _begin(self) -> None:
        if not self.db.in_transaction:
            self.db.begin()

    def commit(self) -> None:
        if self.db.in_transaction:
            self.db.commit()
        self.committed_seq = self._scalar("SELECT COALESCE(MAX(seq), 0) FROM events")

    def close(self) -> None:
        self.commit()
        self.db.close()

    def _scalar(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self.db.scalar(sql, args)

    # --- meta -----------------------------------------------------------------------------------

    def meta(self, key: str, default: str | None = None) -> str | None:
        value = self._scalar("SELECT value FROM meta WHERE key = ?", (key,))
        return default if value is None else str(value)

    def set_meta(self, key: str, value: str) -> None:
        self._write(self.db.upsert("meta", ("key", "value"), ("key",)), (key, value))

    # --- nodes ----------------------------------------------------------------------------------

    def max_node_id(self) -> int:
        return int(self._scalar("SELECT COALESCE(MAX(id), 0) FROM nodes"))

    def save_nodes(self, rows: Iterable[NodeRow]) -> None:
        self._write_many(self.db.upsert("nodes", NODE_COLUMNS.split(", "), ("id",)), (r.to_sql() for r in rows))

    def update_nodes(self, rows: Sequence[NodeRow]) -> None:
        """Like save_nodes for rows already stored with their current mean, which is left as it is
        (the bulk of a row: a node seen again changes only its small columns). A face or voice row is
        deleted only with the node's place in memory (retention's expired strangers; a forgotten node
        stays as a tombstone), so the rows are there."""
        columns = NODE_COLUMNS.split(", ")[1:-1]
        sql = f"UPDATE nodes SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?"
        self._write_many(sql, (r.to_sql()[1:-1] + (r.id,) for r in rows))

    def identity_nodes(self) -> Iterator[NodeRow]:
        kinds = (NodeKind.FACE.value, NodeKind.VOICE.value)
        for r in self.db.execute(f"SELECT {NODE_COLUMNS} FROM nodes WHERE kind IN (?, ?) ORDER BY id", kinds):
            yield NodeRow.from_sql(r)

    def node_row(self, node_id: int) -> NodeRow | None:
        r = self.db.execute(f"SELECT {NODE_COLUMNS} FROM nodes WHERE id = ?", (node_id,)).fetchone()
        return None if r is None else NodeRow.from_sql(r)

    def text_node_rows(self, kind: NodeKind | None) -> Iterator[NodeRow]:
        kinds = [kind.value] if kind else [NodeKind.EPISODIC.value, NodeKind.SEMANTIC.value]
        marks = ", ".join("?" * len(kinds))
        for r in self.db.execute(f"SELECT {NODE_COLUMNS} FROM nodes WHERE kind IN ({marks}) ORDER BY id", kinds):
            yield NodeRow.from_sql(r)

    # --- galleries ------------------------------------------------------------------------------

    def save_galleries(self, galleries: Sequence[tuple[int, list[int] | None, Gallery]]) -> None:
        """Brings the stored embeddings of these nodes to their galleries. Each comes with the keys
        (memory.gallery) of the rows its node holds now, in row order, or None where they are not
        known. A gallery that kept some of those rows, in that order, ahead of its new embeddings
        costs a delete per dropped row and an insert per new one; any other replaces all its rows.
        Either way the rows stay in gallery order, which a reload keeps."""
        replaced: list[tuple[int]] = []
        dropped: list[tuple[int, int]] = []
        added: list[tuple[int, int, float, bytes]] = []
        for node_id, stored, g in galleries:
            keys = g.keys.tolist()
            kept = set(keys).intersection(stored or ())
            if stored is not None and (kept or not stored) and keys[: len(kept)] == [k for k in stored if k in kept]:
                # the highest position first, so the positions of the others stay as they were
                dropped.extend((node_id, i) for i in reversed(range(len(stored))) if stored[i] not in kept)
                new = slice(len(kept), None)
            else:
                replaced.append((node_id,))
                new = slice(None)
            embeddings = g.embeddings[new].astype(np.float32, copy=False)
            added.extend((node_id, t, q, e.tobytes()) for e, q, t in zip(embeddings, g.qualities[new].tolist(), g.track_ids[new].tolist()))
        self._write_many("DELETE FROM embeddings WHERE node_id = ?", replaced)
        self._write_many("DELETE FROM embeddings WHERE rowid = "
                         "(SELECT rowid FROM embeddings WHERE node_id = ? ORDER BY rowid LIMIT 1 OFFSET ?)", dropped)  # fmt: skip
        self._write_many("INSERT INTO embeddings (node_id, track_id, quality, vec) VALUES (?, ?, ?, ?)", added)

    def load_gallery(self, node_id: int, dim: int) -> Gallery:
        rows = self.db.execute(
            "SELECT track_id, quality, vec FROM embeddings WHERE node_id = ? ORDER BY rowid", (node_id,)
        ).fetchall()
        if not rows:
            return Gallery.empty(dim)
        return Gallery.new(
            np.stack([np.frombuffer(r[2], np.float32) for r in rows]),
            np.array([r[1] for r in rows], np.float32),
            np.array([r[0] for r in rows], np.int64),
        )

    # --- tracks and observations ----------------------------------------------------------------

    def save_tracks(self, rows: Iterable[TrackRow]) -> None:
        sql = self.db.upsert("tracks", ("id", "stream", "node_id", "first_t", "last_t", "first_wall", "last_wall"), ("id",))
        self._write_many(sql, (r.to_sql() for r in rows))

    def update_tracks(self, rows: Iterable[TrackRow]) -> None:
        """Like save_tracks for rows already stored: updated in place (a track never changes stream)."""
        sql = "UPDATE tracks SET node_id = ?, first_t = ?, last_t = ?, first_wall = ?, last_wall = ? WHERE id = ?"
        self._write_many(sql, ((r.node_id, r.first_t, r.last_t, r.first_wall, r.last_wall, r.id) for r in rows))

    def track(self, track_id: int) -> TrackRow | None:
        r = self.db.execute(
            "SELECT id, stream, node_id, first_t, last_t, first_wall, last_wall FROM tracks WHERE id = ?", (track_id,)
        ).fetchone()
        return None if r is None else TrackRow(*r)

    def tracks_of(self, node_id: int) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT id FROM tracks WHERE node_id = ?", (node_id,))]

    def move_tracks(self, node_id: int | None, track_ids: Sequence[int] | None, new_node: int | None) -> None:
        """Re-point tracks: the given ones, or all of `node_id`'s when track_ids is None."""
        if track_ids is None:
            self._write("UPDATE tracks SET node_id = ? WHERE node_id = ?", (new_node, node_id))
        else:
            self._write_many("UPDATE tracks SET node_id = ? WHERE id = ?", ((new_node, t) for t in track_ids))

    def track_stats(self, track_ids: Sequence[int]) -> TrackStats:
        marks = ", ".join("?" * len(track_ids))
        n = self._scalar(
            f"SELECT (SELECT COUNT(*) FROM observations WHERE track_id IN ({marks})) "
            f"+ (SELECT COUNT(*) FROM speech_turns WHERE track_id IN ({marks}))",
            list(track_ids) * 2,
        )  # a track holds faces or one speech turn: either counts as an observation
        rows = self.db.execute(f"SELECT stream, first_wall, last_wall FROM tracks WHERE id IN ({marks})", list(track_ids)).fetchall()
        return TrackStats(
            int(n), {r[0] for r in rows}, min((r[1] for r in rows), default=None), max((r[2] for r in rows), default=None)
        )

    def track_counts(self) -> dict[int, int]:
        return dict(self.db.execute("SELECT node_id, COUNT(*) FROM tracks WHERE node_id IS NOT NULL GROUP BY node_id").fetchall())

    def add_observations(self, rows: Sequence[tuple[Any, ...]]) -> None:
        sql = (
            "INSERT INTO observations (track_id, stream, t, wall_time, x1, y1, x2, y2, det_score, quality, face_type) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        self._write_many(sql, rows)

    def prune_observations(self, before_wall: float) -> int:
        return self._write("DELETE FROM observations WHERE wall_time < ?", (before_wall,)).rowcount

    def observations(self) -> Iterator[tuple[Any, ...]]:
        yield from self.db.execute(
            "SELECT o.stream, o.t, o.wall_time, o.x1, o.y1, o.x2, o.y2, o.det_score, o.quality, o.face_type, tr.node_id "
            "FROM observations o LEFT JOIN tracks tr ON tr.id = o.track_id ORDER BY o.id"
        )

    # --- speech turns ---------------------------------------------------------------------------

    def add_turns(self, turns: Sequence[SpeechTurn]) -> None:
        sql = self.db.upsert("speech_turns", ("track_id", "stream", "t_start", "t_end", "wall_time", "good"), ("track_id",))
        self._write_many(sql, ((t.track_id, t.stream, t.t_start, t.t_end, t.wall_time, int(t.good)) for t in turns))

    def set_turn_text(self, track_id: int, text: str | None) -> tuple[str, float, float] | None:
        """Stores a turn's transcript; returns the turn's (stream, t_start, t_end), None if there is no such turn."""
        found = self.db.execute("SELECT stream, t_start, t_end FROM speech_turns WHERE track_id = ?", (track_id,)).fetchone()
        if found is not None:
            self._write("UPDATE speech_turns SET text = ? WHERE track_id = ?", (text, track_id))
        return found

    def prune_turns(self, before_wall: float) -> int:
        return self._write("DELETE FROM speech_turns WHERE wall_time < ?", (before_wall,)).rowcount

    def turns(self) -> Iterator[tuple[Any, ...]]:
        """(stream, t_start, t_end, wall_time, text, node id) of every stored turn, in time order."""
        yield from self.db.execute(
            "SELECT s.stream, s.t_start, s.t_end, s.wall_time, s.text, tr.node_id "
            "FROM speech_turns s LEFT JOIN tracks tr ON tr.id = s.track_id ORDER BY s.wall_time, s.track_id"
        )

    # --- crops ----------------------------------------------------------------------------------

    def add_crop(self, node_id: int, track_id: int, quality: float, jpeg: bytes) -> int:
        sql = "INSERT INTO crops (node_id, track_id, quality, jpeg) VALUES (?, ?, ?, ?) RETURNING id"
        return int(self._write(sql, (node_id, track_id, quality, jpeg)).fetchall()[0][0])

    def crop_index(self) -> Iterator[tuple[int, int, int, float]]:
        """(crop id, node id, track id, quality) of every crop."""
        yield from self.db.execute("SELECT id, node_id, track_id, quality FROM crops")

    def move_crops(self, crop_ids: Sequence[int], node_id: int) -> None:
        self._write_many("UPDATE crops SET node_id = ? WHERE id = ?", ((node_id, c) for c in crop_ids))

    def delete_crops(self, crop_ids: Sequence[int]) -> None:
        self._write_many("DELETE FROM crops WHERE id = ?", ((c,) for c in crop_ids))

    def crop_jpegs(self, crop_ids: Sequence[int]) -> list[bytes]:
        found = {r[0]: bytes(r[1]) for r in self.db.execute(
            f"SELECT id, jpeg FROM crops WHERE id IN ({', '.join('?' * len(crop_ids))})", list(crop_ids))}  # fmt: skip
        return [found[c] for c in crop_ids if c in found]

    # --- voice snippets -------------------------------------------------------------------------

    def save_snippet(self, node_id: int, quality: float, wav: bytes) -> None:
        self._write(self.db.upsert("voice_snippets", ("node_id", "quality", "wav"), ("node_id",)), (node_id, quality, wav))

    def snippet_qualities(self) -> dict[int, float]:
        return dict(self.db.execute("SELECT node_id, quality FROM voice_snippets").fetchall())

    # --- who-spoke evidence ---------------------------------------------------------------------

    def save_turn_faces(self, rows: Iterable[TurnFaceRow]) -> None:
        """Adds verdicts; a row already there keeps its co-occurrence and takes a new synchrony score."""
        sql = (
            "INSERT INTO turn_faces (turn_id, face_track, seen, alone, sync, outcome) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (turn_id, face_track) DO UPDATE SET seen = CASE WHEN excluded.seen > turn_faces.seen THEN excluded.seen "
            "ELSE turn_faces.seen END, alone = CASE WHEN excluded.alone > turn_faces.alone THEN excluded.alone ELSE turn_faces.alone END, "
            "sync = COALESCE(excluded.sync, turn_faces.sync), "
            "outcome = CASE WHEN excluded.sync IS NULL THEN turn_faces.outcome ELSE excluded.outcome END"
        )
        self._write_many(sql, (r.to_sql() for r in rows))

    def turn_faces(self, turn_id: int) -> list[TurnFaceRow]:
        rows = self.db.execute(
            "SELECT turn_id, face_track, seen, alone, sync, outcome FROM turn_faces WHERE turn_id = ?", (turn_id,)
        )
        return [TurnFaceRow(r[0], r[1], bool(r[2]), bool(r[3]), r[4], r[5]) for r in rows]

    def turn_face_evidence(self, before_wall: float | None = None) -> Iterator[tuple[TurnFaceRow, int | None, int | None]]:
        """Every verdict (or those of turns last heard before `before_wall`) with the stored node of its
        face track and of its turn (merges not followed)."""
        sql = (
            "SELECT tf.turn_id, tf.face_track, tf.seen, tf.alone, tf.sync, tf.outcome, ft.node_id, vt.node_id "
            "FROM turn_faces tf LEFT JOIN tracks ft ON ft.id = tf.face_track LEFT JOIN tracks vt ON vt.id = tf.turn_id"
        )
        for r in self.db.execute(*((sql,) if before_wall is None else (sql + " WHERE vt.last_wall < ?", (before_wall,)))):
            yield TurnFaceRow(r[0], r[1], bool(r[2]), bool(r[3]), r[4], r[5]), r[6], r[7]

    def add_cannot_link(self, a: int, b: int) -> None:
        self._write("INSERT INTO cannot_link (a, b) VALUES (?, ?) ON CONFLICT DO NOTHING", (min(a, b), max(a, b)))

    def cannot_links(self) -> list[tuple[int, int]]:
        return self.db.execute("SELECT a, b FROM cannot_link").fetchall()

    # --- events ---------------------------------------------------------------------------------

    def latest_presence(self) -> list[tuple[str, int, int, str, float]]:
        """The latest person.appeared or person.left of each (stream, node): (stream, node, event
        seq, event type, the presence's stream time in it)."""
        rows = self.db.execute(
            "SELECT p.stream, p.node_id, p.seq, p.type, e.data FROM presence p JOIN events e ON e.seq = p.seq"
        ).fetchall()
        return [(stream, node, seq, type_, float(json.loads(data)["t"])) for stream, node, seq, type_, data in rows]

    def last_seen_t(self, stream: str, node_id: int) -> float | None:
        """The stream time of a node's latest stored track in a stream."""
        return self._scalar("SELECT MAX(last_t) FROM tracks WHERE stream = ? AND node_id = ?", (stream, node_id))


    def add_event(self, uid: str, type_: str, wall_time: float, stream: str | None, data: dict[str, Any]) -> int:
        sql = "INSERT INTO events (id, type, wall_time, stream, data) VALUES (?, ?, ?, ?, ?) RETURNING seq"
        return int(self._write(sql, (uid, type_, wall_time, stream, json.dumps(data))).fetchall()[0][0])

    def events_after(self, seq: int, limit: int) -> list[MemoryEvent]:
        """Committed events only: one the outbox publishes must survive a crash."""
        rows = self.db.execute(
            "SELECT seq, id, type, wall_time, stream, data FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
            (seq, self.committed_seq, limit),
        )
        return [MemoryEvent(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]
