"""Forgetting a person: everything memory holds about them goes, and they are never matched again.

A person is a character (all its face and voice nodes) or a lone face or voice node; naming any node
of a character forgets the whole character, since its nodes are one person. Gone are: the nodes'
embeddings and crops, the tracks with their face observations and speech turns (transcripts too),
who-spoke evidence, ties, unlinks, voice snippets, the events that name them, and their memories:

- a memory about them alone (their quotes, facts about them, "seen" memories naming only them) is
  deleted;
- a memory they share with others ("<face_3> and <face_7> were seen ...") keeps what it says about
  the others, with their tag replaced by "someone": deleting it would make memory forget the others
  too, while "someone" no longer identifies anybody. Facts about a pair (a key naming their tag) and
  quotes are deleted outright, since the quoted words are theirs.

Node ids are not reused: each node stays as a tombstone row (status `forgotten`, no label, no vector,
no times), so an old id in a log or a retained MQTT topic never names somebody new, and nobody is
ever matched to it (it leaves the matching index). A forgotten person seen again starts as a stranger.

SQLite keeps deleted bytes in free pages and in the write-ahead log; on an SQLite file the deletion
runs with `secure_delete` on, the word indexes are rebuilt, and the log is checkpointed, so the file
itself no longer holds their words or pictures. PostgreSQL deletes the same rows, but its dead row
versions, write-ahead log, replicas and backups are the operator's (VACUUM, retention).

The process lets go of a forgotten person the way it lets go of the expired strangers retention
deletes (memory.retention; `Forgetting.strangers`): one release for both.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .characters import Characters
from .crops import CropShelf
from .database import in_chunks
from .edits import Edits
from .episodes import Episodes
from .errors import MemoryGraphError, NodeNotFound
from .events import EventLog
from .evidence import Evidence
from .identity import Identities
from .nodes import ACTIVE, NodeTable
from .presence import PresenceBoard
from .records import NodeStatus
from .recluster import pairs
from .snippets import VoiceSnippets
from .store import Store
from .tracks import TrackTable

log = logging.getLogger(__name__)

TARGET = re.compile(r"^<?(face|voice|character)_(\d+)>?$")
QUOTE = re.compile(r'^<(?:face|voice|character)_\d+> says: "')
REDACTED = "someone"


@dataclass(frozen=True)
class Forgotten:
    """What one `forget` removed."""

    nodes: tuple[int, ...]  # the person's live face and voice nodes
    former: tuple[int, ...]  # ids merged into them before, forgotten with them
    character: int | None
    tracks: int
    observations: int
    turns: int
    crops: int
    snippets: int  # voice recordings
    memories_deleted: int
    memories_redacted: int
    events_deleted: int


def parse_target(text: str) -> tuple[str, int]:
    """('node' | 'character', id) from '3', 'face_3', '<voice_7>' or '<character_2>'."""
    value = text.strip()
    if value.isdigit():
        return "node", int(value)
    m = TARGET.match(value)
    if m is None:
        raise MemoryGraphError(f"forget takes a node id or a tag like <face_3> or <character_2>, not {text!r}")
    return ("character" if m.group(1) == "character" else "node"), int(m.group(2))


class Forgetting:
    def __init__(
        self,
        store: Store,
        nodes: NodeTable,
        tracks: TrackTable,
        identities: Identities,
        presence: PresenceBoard,
        crops: CropShelf,
        characters: Characters,
        evidence: Evidence,
        episodes: Episodes,
        edits: Edits,
        events: EventLog,
        snippets: VoiceSnippets,
        flush: Callable[[], None],
    ) -> None:
        self._store = store
        self._nodes = nodes
        self._tracks = tracks
        self._identities = identities
        self._presence = presence
        self._crops = crops
        self._characters = characters
        self._evidence = evidence
        self._episodes = episodes
        self._edits = edits
        self._events = events
        self._snippets = snippets
        self._flush = flush
        self.turns: set[int] = set()  # tracks forgotten in this process

    def person(self, target: str | int) -> tuple[list[int], int | None]:
        """The live nodes and the character a target names."""
        kind, number = parse_target(str(target))
        if kind == "character":
            character = self._characters.get(number)
            if character is None:
                raise NodeNotFound(f"no character {number}")
            return [*character.faces, *character.voices], character.id
        live = self._nodes.resolve(number)
        row = self._nodes.rows.get(live)
        if row is None or row.status not in ACTIVE:
            raise NodeNotFound(f"node {number} is not a face or voice node memory holds")
        named = TARGET.match(str(target).strip())
        if named is not None and named.group(1) != row.kind.value:
            raise NodeNotFound(f"node {number} is a {row.kind.value} node, not a {named.group(1)} node")
        character = self._characters.of_node(live)
        if character is None:
            return [live], None
        return [*character.faces, *character.voices], character.id

    def forget(self, target: str | int) -> Forgotten:
        live, character = self.person(target)
        self._flush()  # everything pending is in the file, so the deletion sees it all
        ids = sorted(n for n in self._nodes.rows if self._nodes.resolve(n) in live)
        tags = {f"<{self._nodes[n].kind.value}_{n}>" for n in ids} | ({f"<character_{character}>"} if character else set())
        db = self._store.db
        db.link.secure_delete(True)
        try:
            db.begin()
            try:
                track_ids = [r[0] for r in db.execute(f"SELECT id FROM tracks WHERE node_id IN ({', '.join('?' * len(ids))})", ids)]
                counts = self._delete(ids, track_ids, tags, character)
            except BaseException:
                db.rollback()  # nothing in memory has changed yet: all or nothing
                raise
            self._forget_in_memory(ids, track_ids)
            self._events.forgotten(live, [n for n in ids if n not in live], character)
            self._flush()  # the tombstones, the event and every deletion in one commit
            db.link.compact_words()
        finally:
            db.link.secure_delete(False)
        if db.link.empty_log():
            log.warning("forget: a reader holds the write-ahead log; it is emptied at the next checkpoint")
        done = Forgotten(tuple(live), tuple(n for n in ids if n not in live), character, len(track_ids), **counts)
        log.info("forgot %s: %s", target, done)
        return done

    # --- the file -------------------------------------------------------------------------------

    def _delete(self, ids: list[int], track_ids: list[int], tags: set[str], character: int | None) -> dict[str, int]:
        """Deletes the rows; returns the counts of Forgotten but tracks."""
        db = self._store.db
        marks = ", ".join("?" * len(ids))
        counts = {"observations": 0, "turns": 0}
        for chunk, tm in in_chunks(track_ids):
            counts["observations"] += db.execute(f"DELETE FROM observations WHERE track_id IN ({tm})", chunk).rowcount
            counts["turns"] += db.execute(f"DELETE FROM speech_turns WHERE track_id IN ({tm})", chunk).rowcount
            db.execute(f"DELETE FROM turn_faces WHERE turn_id IN ({tm}) OR face_track IN ({tm})", chunk * 2)
            db.execute(f"DELETE FROM tracks WHERE id IN ({tm})", chunk)
        counts["crops"] = db.execute(f"DELETE FROM crops WHERE node_id IN ({marks})", ids).rowcount
        db.execute(f"DELETE FROM embeddings WHERE node_id IN ({marks})", ids)
        # (the tombstones are written from memory, where a node no longer active holds no mean to clear)
        db.execute(f"UPDATE nodes SET mean = NULL WHERE id IN ({marks})", ids)
        counts["snippets"] = db.execute(f"DELETE FROM voice_snippets WHERE node_id IN ({marks})", ids).rowcount
        db.execute(f"DELETE FROM equivalences WHERE face_id IN ({marks}) OR voice_id IN ({marks})", ids * 2)
        db.execute(f"DELETE FROM cannot_link WHERE a IN ({marks}) OR b IN ({marks})", ids * 2)
        db.execute(f"DELETE FROM characters WHERE node_id IN ({marks})", ids)
        db.execute(f"DELETE FROM pair_evidence WHERE face_id IN ({marks}) OR voice_id IN ({marks})", ids * 2)
        db.execute(f"DELETE FROM presence WHERE node_id IN ({marks})", ids)
        deleted, redacted = self._memories(ids, tags)
        counts["memories_deleted"], counts["memories_redacted"] = deleted, redacted
        counts["events_deleted"] = self._events_about(set(ids), set(track_ids), tags, character)
        return counts

    def _memories(self, ids: list[int], tags: set[str]) -> tuple[int, int]:
        """Deletes the memories about the person alone, redacts the ones they share; returns both counts."""
        db = self._store.db
        marks = ", ".join("?" * len(ids))
        linked = {r[0] for r in db.execute(f"SELECT DISTINCT src FROM edges WHERE dst IN ({marks})", ids)}
        tag_match = " OR ".join(f"{db.strpos}(text, ?) > 0" for _ in tags)
        named = {r[0] for r in db.execute(f"SELECT node_id FROM text_nodes WHERE {tag_match}", sorted(tags))}
        doomed, redact = [], []
        for node_id in sorted(linked | named):
            text, key = db.execute("SELECT text, key FROM text_nodes WHERE node_id = ?", (node_id,)).fetchone() or (None, None)
            if text is None:
                continue
            others = [d for (d,) in db.execute(f"SELECT dst FROM edges WHERE src = ? AND dst NOT IN ({marks})", (node_id, *ids))]
            their_quote = QUOTE.match(text) is not None and any(text.startswith(t) for t in tags)
            about_them = key is not None and any(t in key for t in tags)  # a fact about them, or about them and another
            if not others or their_quote or about_them:
                doomed.append(node_id)
            else:
                redact.append((node_id, text))
        for node_id, text in redact:
            for tag in tags:
                text = text.replace(tag, REDACTED)
            db.execute("UPDATE text_nodes SET text = ? WHERE node_id = ?", (text, node_id))
        for node_id in doomed:
            db.execute("DELETE FROM text_nodes WHERE node_id = ?", (node_id,))
            db.execute("DELETE FROM model_memories WHERE node_id = ?", (node_id,))
            db.execute("DELETE FROM edges WHERE src = ?", (node_id,))
            db.execute("DELETE FROM nodes WHERE id = ?", (node_id,))
            # a clip whose "who was there" memory went is told by its next memory, if any
            db.execute(
                "UPDATE clips SET text_node = (SELECT MIN(node_id) FROM text_nodes WHERE clip_id = clips.id) WHERE text_node = ?",
                (node_id,),
            )
        db.execute(f"DELETE FROM edges WHERE dst IN ({marks}) OR src IN ({marks})", ids * 2)
        return len(doomed), len(redact)

    def _events_about(self, ids: set[int], track_ids: set[int], tags: set[str], character: int | None) -> int:
        """Deletes the stored events that name the person; a clip.closed shared with others loses them only."""
        db = self._store.db
        doomed, rewritten = [], []
        for seq, type_, raw in db.execute("SELECT seq, type, data FROM events"):
            data = json.loads(raw)
            if type_ == "clip.closed":
                new = _clip_without(data, ids, tags)
                if new != data:
                    rewritten.append((json.dumps(new), seq))
            elif _names(type_, data, ids, track_ids, character):
                doomed.append((seq,))
        db.executemany("DELETE FROM events WHERE seq = ?", doomed)
        db.executemany("UPDATE events SET data = ? WHERE seq = ?", rewritten)
        return len(doomed)

    # --- the process ----------------------------------------------------------------------------

    def strangers(self, ids: list[int]) -> None:
        """Expired nodes whose rows retention deleted (memory.retention) leave the process too."""
        if ids:
            self._let_go(ids, set())
            self._nodes.remove(ids)
            self._nodes.keep_next_id()

    def _forget_in_memory(self, ids: list[int], track_ids: Sequence[int]) -> None:
        gone_tracks = set(track_ids)
        self._let_go(ids, gone_tracks)  # unindexed too: a returning face starts as a stranger
        for n in ids:
            row = self._nodes[n]
            row.status, row.merged_into, row.label = NodeStatus.FORGOTTEN, None, None
            row.first_seen_wall = row.last_seen_wall = row.first_good_t = row.last_good_t = None
            row.n_observations = row.n_embeddings = row.good_faces = 0
            row.streams, row.mean = set(), None
            self._nodes.touch(n)
        self._nodes.keep_next_id()
        self.turns |= gone_tracks  # a transcript still on its way for one of them is dropped

    def _let_go(self, ids: list[int], gone_tracks: set[int]) -> None:
        """What the process holds about nodes and tracks whose rows are deleted."""
        gone = set(ids)
        for n in ids:
            self._nodes.drop_gallery(n)
            self._nodes.provisional.discard(n)
            self._identities.progress.pop(n, None)
            self._identities.founder.pop(n, None)
            self._presence.drop(n)
        for buffer in self._identities.buffers.values():
            buffer.forget(gone_tracks)
        self._tracks.forget(gone_tracks)
        self._crops.forget(ids)
        self._snippets.forget(gone)
        self._evidence.forget(gone, gone_tracks)
        self._episodes.forget(gone_tracks)
        self._events.forget(ids)
        self._edits.cannot_link = pairs((a, b) for a, b in self._edits.cannot_link if a not in gone and b not in gone)
        self._characters.forget(gone)


def _names(type_: str, data: dict[str, Any], ids: set[int], track_ids: set[int], character: int | None) -> bool:
    """Whether an event is about the person (and goes with them)."""
    if type_ == "character.updated":
        return data.get("character") == character or bool(ids & {*data.get("faces", []), *data.get("voices", [])})
    if type_ == "speech" and data.get("turn") in track_ids:
        return True
    named = set()
    for key in ("node", "from", "into"):
        value = data.get(key)
        named |= set(value) if isinstance(value, list) else {value}
    return bool(ids & named)


def _clip_without(data: dict[str, Any], ids: set[int], tags: set[str]) -> dict[str, Any]:
    """A clip.closed event without the person: their memories dropped, shared ones redacted."""
    def redact(text: str | None) -> str | None:
        for tag in tags:
            text = None if text is None else text.replace(tag, REDACTED)
        return text

    memories = []
    for m in data.get("memories", []):
        others = [n for n in m.get("nodes", []) if n not in ids]
        if len(others) < len(m.get("nodes", [])) and (not others or QUOTE.match(m.get("text") or "")):
            continue
        memories.append({**m, "text": redact(m.get("text")), "nodes": others})
    first = memories[0] if memories else None
    out = {**data, "nodes": [n for n in data.get("nodes", []) if n not in ids], "memories": memories}
    if data.get("memories") and (data.get("memory") is not None):
        out["text"], out["memory"] = (first["text"], first["id"]) if first else (None, None)
    return out
