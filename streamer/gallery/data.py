"""What the gallery shows, read from a memory file through the query layer (people, last seen, what
they said, clips) plus the few things it does not answer: crops, per-person counts and track spans.
Read-only; never an embedding."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from memory.database import Database, open_database
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
    def _db(self) -> Iterator[Database]:
        db = open_database(self.query.path, read_only=True)
        try:
            yield db
        finally:
            db.close()

    def cards(self) -> list[Card]:
        """Everyone, most recently seen first."""
        people = self.query.people()
        with self._db() as db:
            stats = _Stats.read(db, None)  # one pass over each table, however many people
        return sorted((stats.card(p) for p in people), key=lambda c: -(c.last_seen or 0.0))

    def page(self, name: str) -> Page:
        """A person's page by slug or tag; PersonNotFound if there is no such person."""
        person = self.query.person(name if name.startswith("<") else f"<{name}>")
        with self._db() as db:
            stats = _Stats.read(db, list(person.nodes))
            card = stats.card(person)
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
            crops = [c for f in person.faces for c in stats.crops.get(f, [])]
        return Page(card, tuple(c for _, c in sorted(crops, reverse=True)), tuple(spans), tuple(self.query.clip(s, i) for s, i, _ in reversed(clips)),
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


@dataclass
class _Stats:
    """Per node: time span, streams, counts, crops (quality, id) and best voice snippet (quality, node)."""

    spans: dict[int, tuple[float, float, set[str]]]
    faces: dict[int, int]
    turns: dict[int, int]
    crops: dict[int, list[tuple[float, int]]]
    snippets: dict[int, tuple[float, int]]  # live voice -> its best snippet, its own or of a voice merged into it

    @classmethod
    def read(cls, db: Database, nodes: list[int] | None) -> _Stats:
        where, args = ("", []) if nodes is None else (f" WHERE t.node_id IN ({', '.join('?' * len(nodes))})", nodes)
        spans: dict[int, tuple[float, float, set[str]]] = {}
        for node, first, last in db.execute(f"SELECT t.node_id, MIN(t.first_wall), MAX(t.last_wall) FROM tracks t{where} GROUP BY t.node_id", args):
            spans[node] = (first, last, set())
        for node, stream in db.execute(f"SELECT DISTINCT t.node_id, t.stream FROM tracks t{where}", args):
            spans[node][2].add(stream)
        counts = [
            dict(db.execute(f"SELECT t.node_id, COUNT(*) FROM {table} x JOIN tracks t ON t.id = x.track_id{where} GROUP BY t.node_id", args).fetchall())
            for table in ("observations", "speech_turns")
        ]  # fmt: skip
        crop_where = where.replace("t.node_id", "node_id")
        crops: dict[int, list[tuple[float, int]]] = {}
        for crop_id, node, quality in db.execute(f"SELECT id, node_id, quality FROM crops{crop_where} ORDER BY quality DESC, id", args):
            crops.setdefault(node, []).append((quality, crop_id))
        snippets: dict[int, tuple[float, int]] = {}
        for node, merged_into, quality in db.execute(
            "SELECT s.node_id, n.merged_into, s.quality FROM voice_snippets s JOIN nodes n ON n.id = s.node_id"
        ):
            voice = merged_into if merged_into is not None else node
            snippets[voice] = max(snippets.get(voice, (quality, node)), (quality, node))
        return cls(spans, counts[0], counts[1], crops, snippets)

    def card(self, person: Person) -> Card:
        spans = [self.spans[n] for n in person.nodes if n in self.spans]
        crops = sorted((c for f in person.faces for c in self.crops.get(f, [])), reverse=True)[:CROPS_ON_CARD]
        voices = sorted((self.snippets[v] for v in person.voices if v in self.snippets), reverse=True)[:1]
        return Card(person, slug(person), tuple(c for _, c in crops), min((s[0] for s in spans), default=None),
                    max((s[1] for s in spans), default=None), tuple(sorted(set().union(*(s[2] for s in spans)))),
                    sum(self.faces.get(n, 0) for n in person.nodes), sum(self.turns.get(n, 0) for n in person.nodes),
                    tuple(n for _, n in voices))  # fmt: skip


__all__ = ["Card", "GalleryData", "Page", "PersonNotFound", "Span", "slug"]
