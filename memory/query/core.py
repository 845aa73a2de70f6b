"""MemoryQuery: questions to a memory file, read-only, beside a live run that writes it.

Each thread gets its own read-only connection (WAL readers never block the writer, nor it them;
on PostgreSQL, MVCC does the same), and each answer is read inside one transaction (a REPEATABLE
READ one on PostgreSQL): one consistent moment of the memory, even while the run commits. What the run has not flushed yet (at most `flush_every_seconds`) is not seen.
The only writes are the search cache (sentence vectors, see memory.query.search), on a
connection of their own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..database import Database, Dialect, exists, open_database, shown

from ..errors import StoreError
from ..schema import SCHEMA_VERSION, connect, stored_version
from .embedder import SentenceEmbedder
from .people import People, PersonNotFound
from .records import Clip, Companion, Hit, LastSeen, Person, Present, Sighting, Utterance, Visit
from .search import TextSearch
from .texts import clip_of, hits_of

log = logging.getLogger(__name__)

VISIT_GAP_SECONDS = 60.0  # tracks of a person in one stream less than this apart are one visit
MAX_TURNS = 1000  # `said` answers at most this many turns
MAX_LISTED = 900  # node ids one statement lists at most (older SQLite builds take 999 parameters)
TOGETHER = "% were together in camera %"  # the episodic memory of faces on screen at once (memory.episodes)
# A number that moves when another connection commits a change to who is who (memory.schema)
PEOPLE_VERSION = {Dialect.SQLITE: "PRAGMA data_version", Dialect.POSTGRES: "SELECT value FROM meta WHERE key = 'people_version'"}


class QueryError(ValueError):
    """A question that cannot be asked as given (HTTP 400)."""


class MemoryQuery:
    def __init__(self, path: str | Path, *, embedder: SentenceEmbedder | None = None, clock: Callable[[], float] = time.time) -> None:
        self.path = str(path)
        if not exists(self.path):
            raise StoreError(f"memory database not found: {shown(self.path)}")
        self._clock = clock
        self._local = threading.local()
        self._connections: list[Database] = []
        self._guard = threading.Lock()
        self._check_version()
        self.search_index = TextSearch(self.path, embedder if embedder is not None else SentenceEmbedder())

    def _check_version(self) -> None:
        db = self._connection()
        try:
            version = stored_version(db)
        except db.errors as e:
            raise StoreError(f"{db.target.shown} is not a memory database ({e})") from e
        if version < SCHEMA_VERSION:  # an older file is brought up to date once, as any command would
            connect(self.path).close()

    def close(self) -> None:
        with self._guard:
            for db in self._connections:
                db.close()
            self._connections.clear()

    def __enter__(self) -> MemoryQuery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connection(self) -> Database:
        db: Database | None = getattr(self._local, "db", None)
        if db is None:
            db = open_database(self.path, read_only=True)
            self._local.db = db
            with self._guard:
                self._connections.append(db)
        return db

    @contextmanager
    def _read(self) -> Iterator[tuple[Database, People]]:
        db = self._connection()
        try:
            db.begin_snapshot()
            db.execute("SELECT 1 FROM meta LIMIT 1").fetchone()  # the snapshot starts at the first read
        except db.errors as e:
            if db.in_transaction:
                db.rollback()
            raise StoreError(f"{db.target.shown} is not a memory database ({e})") from e
        try:
            yield db, self._people(db)
        finally:
            db.commit()

    def _people(self, db: Database) -> People:
        """Who is who in this snapshot, read again only when another connection committed a change since."""
        version = db.scalar(PEOPLE_VERSION[db.dialect])
        cached: tuple[object, People] | None = getattr(self._local, "people", None)
        if cached is None or cached[0] != version:
            cached = self._local.people = (version, People(db))
        return cached[1]

    # --- people -----------------------------------------------------------------------------------

    def person(self, name: str) -> Person:
        """The person a label, tag (<face_3>, <character_2>) or node id names; PersonNotFound if none."""
        with self._read() as (_, people):
            return people.one(name)

    def people(self) -> list[Person]:
        """Everyone memory holds (confirmed or not yet), characters first, by tag."""
        with self._read() as (db, people):
            ids = [r[0] for r in db.execute("SELECT id FROM nodes WHERE kind IN ('face', 'voice') AND status IN ('provisional', 'confirmed')")]
            return sorted(people.people_of(ids), key=lambda p: (p.character is None, p.tag))

    # --- presence ---------------------------------------------------------------------------------

    def present(self, stream: str | None = None) -> list[Present]:
        """Who is in each stream now: announced (person.appeared) and not gone (no person.left since,
        for the node or any node merged with it: a merged node's presence goes on as its survivor's)."""
        with self._read() as (db, people):
            # One query. The table holds each (stream, node)'s latest presence event, so a node announced
            # there has not left since: only a node merged with it may have, and theirs are the departures read.
            merged = people.merged()
            listed = merged if len(merged) <= MAX_LISTED else []
            if listed:
                departures = f" OR node_id IN ({', '.join('?' * len(listed))})"
            else:  # none, or too many to list: every departure
                departures = " OR type = 'person.left'" if merged else ""
            rows = db.execute(
                "SELECT stream, node_id, type, wall_time, seq FROM presence WHERE (CAST(? AS TEXT) IS NULL OR stream = ?) "
                f"AND (type = 'person.appeared'{departures})",
                (stream, stream, *listed),
            ).fetchall()
        left = {(s, node): seq for s, node, type_, _, seq in rows if type_ == "person.left"}
        out: dict[tuple[str, str], Present] = {}
        for s, node, _, wall, seq in sorted((r for r in rows if r[2] == "person.appeared"), key=lambda r: r[3]):
            live = people.resolve(node)
            person = people.of_node(live)
            if person is None or (s, person.tag) in out:
                continue
            if all(left.get((s, alias), -1) < seq for alias in people.aliases(live)):  # none of its nodes left since
                out[(s, person.tag)] = Present(s, person, wall, live)
        return sorted(out.values(), key=lambda p: (p.stream, p.since))

    def seen_between(self, since: float, until: float | None = None, stream: str | None = None) -> list[Sighting]:
        """Who was seen or heard between two times (unix seconds), per person and stream."""
        until = self._clock() if until is None else until
        if until < since:
            raise QueryError(f"the range ends ({until}) before it starts ({since})")
        with self._read() as (db, people):
            rows = db.execute(
                "SELECT t.stream, t.node_id, n.kind, MIN(t.first_wall), MAX(t.last_wall) FROM tracks t JOIN nodes n ON n.id = t.node_id "
                "WHERE t.last_wall >= ? AND t.first_wall <= ? AND (CAST(? AS TEXT) IS NULL OR t.stream = ?) GROUP BY t.stream, t.node_id, n.kind",
                (since, until, stream, stream),
            ).fetchall()
            found: dict[tuple[str, str], Sighting] = {}
            for s, node, kind, first, last in rows:
                person = people.of_node(node)
                if person is None:
                    continue
                had = found.get((s, person.tag))
                found[(s, person.tag)] = Sighting(
                    person, s, min(first, had.first) if had else first, max(last, had.last) if had else last,
                    kind == "face" or (had is not None and had.seen), kind == "voice" or (had is not None and had.heard),
                )  # fmt: skip
            return sorted(found.values(), key=lambda x: (x.first, x.stream))

    # --- one person -------------------------------------------------------------------------------

    def last_seen(self, name: str) -> LastSeen:
        """When and where a person was last seen (face) and heard (voice), and for how long."""
        with self._read() as (db, people):
            person = people.one(name)
            marks = ", ".join("?" * len(person.nodes))
            first = db.scalar(f"SELECT MIN(first_wall) FROM tracks WHERE node_id IN ({marks})", person.nodes)
            streams = [r[0] for r in db.execute(f"SELECT DISTINCT stream FROM tracks WHERE node_id IN ({marks})", person.nodes)]
            return LastSeen(person, self._last_visit(db, person.faces), self._last_visit(db, person.voices), first,
                            tuple(sorted(streams)))  # fmt: skip

    def _last_visit(self, db: Database, nodes: tuple[int, ...]) -> Visit | None:
        """The person's latest tracks in the stream of their latest one, joined back while the gaps
        between them stay under VISIT_GAP_SECONDS of stream time. Durations are in stream time: a file
        analysed faster than real time keeps its real durations (its wall times are compressed)."""
        if not nodes:
            return None
        marks = ", ".join("?" * len(nodes))
        last = db.execute(f"SELECT stream FROM tracks WHERE node_id IN ({marks}) ORDER BY last_wall DESC LIMIT 1", nodes).fetchone()
        if last is None:
            return None
        span: list[float] = []  # start wall, end wall, first t, last t
        members: set[int] = set()
        for first_wall, last_wall, first_t, last_t, node in db.execute(
            f"SELECT first_wall, last_wall, first_t, last_t, node_id FROM tracks WHERE node_id IN ({marks}) AND stream = ? "
            f"ORDER BY last_wall DESC",
            (*nodes, last[0]),
        ):
            # an older track far before the visit ends it; one "after" it in stream time is from before a restart
            if span and (last_t < span[2] - VISIT_GAP_SECONDS or last_t > span[3] + VISIT_GAP_SECONDS):
                break
            span = [first_wall, last_wall, first_t, last_t] if not span else [
                min(span[0], first_wall), max(span[1], last_wall), min(span[2], first_t), max(span[3], last_t)]  # fmt: skip
            members.add(node)
        return Visit(last[0], span[0], span[1], span[3] - span[2], tuple(sorted(members)), span[2], span[3])

    def said(self, name: str, since: float | None = None, until: float | None = None, limit: int = 100) -> list[Utterance]:
        """What a person said (transcribed turns), oldest first; the latest `limit` in the range."""
        if not 1 <= limit <= MAX_TURNS:
            raise QueryError(f"limit must be between 1 and {MAX_TURNS}, not {limit}")
        with self._read() as (db, people):
            person = people.one(name)
            if not person.voices:
                return []
            marks = ", ".join("?" * len(person.voices))
            rows = db.execute(
                f"SELECT s.stream, s.track_id, t.node_id, s.wall_time, s.t_start, s.t_end, s.text FROM tracks t "
                f"JOIN speech_turns s ON s.track_id = t.id WHERE t.node_id IN ({marks}) AND s.wall_time >= ? AND s.wall_time <= ? "
                f"AND s.text IS NOT NULL AND trim(s.text) != '' ORDER BY s.wall_time DESC, s.track_id DESC LIMIT ?",
                (*person.voices, -1e18 if since is None else since, 1e18 if until is None else until, limit),
            ).fetchall()
            return [Utterance(s, turn, node, person.character, person.name, wall, wall + t1 - t0, t0, t1, text.strip())
                    for s, turn, node, wall, t0, t1, text in reversed(rows)]  # fmt: skip

    def together(self, name: str, since: float | None = None, until: float | None = None) -> list[Companion]:
        """Who a person shared clips with, most clips first; `together`: clips where both were on screen at once."""
        with self._read() as (db, people):
            person = people.one(name)
            marks = ", ".join("?" * len(person.nodes))
            lo, hi = -1e18 if since is None else since, 1e18 if until is None else until
            shared = db.execute(
                f"SELECT e2.dst, c.id, c.stream, c.end_wall FROM edges e1 JOIN clips c ON c.text_node = e1.src "
                f"JOIN edges e2 ON e2.src = e1.src WHERE e1.dst IN ({marks}) AND e2.dst NOT IN ({marks}) "
                f"AND c.end_wall >= ? AND c.start_wall <= ?",
                (*person.nodes, *person.nodes, lo, hi),
            ).fetchall()
            at_once = db.execute(
                f"SELECT DISTINCT e2.dst, t.clip_id FROM edges e1 JOIN text_nodes t ON t.node_id = e1.src "
                f"JOIN edges e2 ON e2.src = e1.src WHERE e1.dst IN ({marks}) AND e2.dst NOT IN ({marks}) AND t.text LIKE ?",
                (*person.nodes, *person.nodes, TOGETHER),
            ).fetchall()
            clips: dict[str, set[int]] = {}
            both: dict[str, set[int]] = {}
            streams: dict[str, set[str]] = {}
            last: dict[str, float] = {}
            who: dict[str, Person] = {}
            for node, clip, stream, end in shared:
                other = people.of_node(node)
                if other is None or other.tag == person.tag:
                    continue
                who[other.tag] = other
                clips.setdefault(other.tag, set()).add(clip)
                streams.setdefault(other.tag, set()).add(stream)
                last[other.tag] = max(last.get(other.tag, end), end)
            for node, clip in at_once:
                other = people.of_node(node)
                if other is not None and clip in clips.get(other.tag, ()):
                    both.setdefault(other.tag, set()).add(clip)
            out = [Companion(who[t], len(c), len(both.get(t, ())), tuple(sorted(streams[t])), last[t]) for t, c in clips.items()]
            return sorted(out, key=lambda c: (-c.together, -c.clips, -c.last))

    # --- clips and texts --------------------------------------------------------------------------

    def clip(self, stream: str, index: int) -> Clip:
        """A clip's episodic and semantic memories, people and speech (the latest clip of that number:
        a file analysed twice has its clips twice); ClipNotFound if there is none."""
        with self._read() as (db, people):
            return clip_of(db, people, stream, index)

    def search(self, text: str, limit: int = 10) -> list[Hit]:
        """Memories and transcripts matching a question by words or by meaning, best first."""
        if not text.strip():
            raise QueryError("the search text is empty")
        if not 1 <= limit <= 100:
            raise QueryError(f"limit must be between 1 and 100, not {limit}")
        with self._read() as (db, _):
            self.search_index.refresh(db)  # texts written since the last search get their vectors first
        with self._read() as (db, people):
            return hits_of(db, people, self.search_index.rank(db, text, limit))

    def index_texts(self) -> int:
        """Embeds the texts not embedded yet (a server runs this in the background); returns how many."""
        with self._read() as (db, _):
            return self.search_index.refresh(db)


__all__ = ["MemoryQuery", "PersonNotFound", "QueryError"]
