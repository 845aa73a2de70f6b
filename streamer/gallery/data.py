"""What the gallery shows, read from a memory file through the query layer (people, last seen, what
they said, clips) plus the few things it does not answer: crops, per-person counts and track spans.
Read-only; never an embedding."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from memory.query import Clip, MemoryQuery, Person, PersonNotFound, Utterance

CROPS_ON_CARD = 3
MAX_CLIPS = 50  # the latest clips on a person's page
MAX_SPANS = 5000  # timeline bars per person (the latest)


@dataclass(frozen=True)
class Card:
    person: Person
    slug: str  # "character_2", "face_3": the page's file name
    crops: tuple[int, ...]  # crop ids, best first
    first_seen: float | None
    last_seen: float | None
    streams: tuple[str, ...]
    faces: int  # face observations stored
    turns: int  # speech turns stored
    snippets: tuple[int, ...] = ()  # voice nodes with a stored voice snippet (memory.voice_snippet_seconds)


@dataclass(frozen=True)
class Span:
    """One track: a face on screen for a while, or one speech turn."""

    stream: str
    kind: str  # "face" or "voice"
    start: float  # unix seconds
    end: float


@dataclass(frozen=True)
class Page:
    card: Card
    crops: tuple[int, ...]  # every crop of the person's faces
    spans: tuple[Span, ...]
    clips: tuple[Clip, ...]
    said: tuple[Utterance, ...]


def slug(person: Person) -> str:
    return person.tag.strip("<>")


class GalleryData:
    def __init__(self, query: MemoryQuery) -> None:
        self.query = query

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(f"file:{self.query.path}?mode=ro", uri=True)
        db.execute("PRAGMA busy_timeout = 5000")
        try:
            yield db
        finally:
            db.close()

    def cards(self) -> list[Card]:
        """Everyone, most recently seen first."""
        with self._db() as db:
            cards = [self._card(db, p) for p in self.query.people()]
        return sorted(cards, key=lambda c: -(c.last_seen or 0.0))

    def _card(self, db: sqlite3.Connection, person: Person) -> Card:
        nodes = list(person.nodes)
        marks = ", ".join("?" * len(nodes))
        first, last, streams = db.execute(
            f"SELECT MIN(first_wall), MAX(last_wall), json_group_array(DISTINCT stream) FROM tracks WHERE node_id IN ({marks})", nodes
        ).fetchone()
        faces = db.execute(
            f"SELECT COUNT(*) FROM observations o JOIN tracks t ON t.id = o.track_id WHERE t.node_id IN ({marks})", nodes
        ).fetchone()[0]
        turns = db.execute(
            f"SELECT COUNT(*) FROM speech_turns s JOIN tracks t ON t.id = s.track_id WHERE t.node_id IN ({marks})", nodes
        ).fetchone()[0]
        crops = self._crops(db, person.faces)[:CROPS_ON_CARD]
        vm = ", ".join("?" * len(person.voices))
        snippets = [r[0] for r in db.execute(
            f"SELECT node_id FROM voice_snippets WHERE node_id IN ({vm}) OR node_id IN (SELECT id FROM nodes WHERE merged_into IN ({vm})) "
            f"ORDER BY quality DESC", person.voices * 2)] if person.voices else []  # fmt: skip
        return Card(person, slug(person), tuple(crops), first, last, tuple(sorted(set(json.loads(streams or "[]")) - {None})),
                    faces, turns, tuple(snippets[:1]))  # fmt: skip

    @staticmethod
    def _crops(db: sqlite3.Connection, faces: tuple[int, ...]) -> list[int]:
        if not faces:
            return []
        marks = ", ".join("?" * len(faces))
        return [r[0] for r in db.execute(f"SELECT id FROM crops WHERE node_id IN ({marks}) ORDER BY quality DESC, id", faces)]

    def page(self, name: str) -> Page:
        """A person's page by slug or tag; PersonNotFound if there is no such person."""
        person = self.query.person(name if name.startswith("<") else f"<{name}>")
        with self._db() as db:
            card = self._card(db, person)
            nodes = list(person.nodes)
            marks = ", ".join("?" * len(nodes))
            spans = [Span(s, k, a, b) for s, k, a, b in reversed(db.execute(
                f"SELECT t.stream, n.kind, t.first_wall, t.last_wall FROM tracks t JOIN nodes n ON n.id = t.node_id "
                f"WHERE t.node_id IN ({marks}) ORDER BY t.last_wall DESC LIMIT ?", (*nodes, MAX_SPANS)).fetchall())]  # fmt: skip
            clips = db.execute(
                f"SELECT DISTINCT c.stream, c.idx, c.id FROM edges e JOIN text_nodes t ON t.node_id = e.src JOIN clips c ON c.id = t.clip_id "
                f"WHERE e.dst IN ({marks}) ORDER BY c.id DESC LIMIT ?",
                (*nodes, MAX_CLIPS),
            ).fetchall()
            crops = self._crops(db, person.faces)
        return Page(card, tuple(crops), tuple(spans), tuple(self.query.clip(s, i) for s, i, _ in reversed(clips)),
                    tuple(self.query.said(person.tag, limit=1000)))  # fmt: skip

    def snippet(self, node_id: int) -> bytes | None:
        """A voice snippet's WAV, only while its voice (or the voice it was merged into) is someone memory holds."""
        with self._db() as db:
            row = db.execute(
                "SELECT s.wav FROM voice_snippets s JOIN nodes n ON n.id = s.node_id LEFT JOIN nodes m ON m.id = n.merged_into "
                "WHERE s.node_id = ? AND (n.status IN ('provisional', 'confirmed') OR m.status IN ('provisional', 'confirmed'))",
                (node_id,),
            ).fetchone()
        return None if row is None else bytes(row[0])

    def crop(self, crop_id: int) -> bytes | None:
        """A crop's JPEG, only while its node belongs to someone memory holds."""
        with self._db() as db:
            row = db.execute(
                "SELECT c.jpeg FROM crops c JOIN nodes n ON n.id = c.node_id WHERE c.id = ? AND n.status IN ('provisional', 'confirmed')",
                (crop_id,),
            ).fetchone()
        return None if row is None else bytes(row[0])


__all__ = ["Card", "GalleryData", "Page", "PersonNotFound", "Span", "slug"]
