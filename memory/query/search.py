"""Text search over episodic and semantic memories and transcripts: words and meaning, fused.

Words: the word index the schema keeps in step with the texts: FTS5 on SQLite (porter stemming,
bm25 ranking), tsvector columns on PostgreSQL (english stemming, ts_rank); both spellings below.
Meaning: sentence vectors (memory.query.embedder), computed here off the live run's hot path,
written to `text_vectors` through a connection of our own, and kept in a matrix in memory until the
table changes. A question never waits for the store's writer: vectors the store cannot take at once
(the live run's batch holds the file's write lock, the server is away) are kept in memory, used in
answers, and stored by a later question. Tags are replaced by "someone" before embedding: a tag's digits carry no meaning.
A transcript is embedded as the quote a memory would make of it ('someone says: "..."'), so quotes
and transcripts compare alike. The two rankings are fused by reciprocal rank. E5's cosines crowd
together (0.7-0.85 for related and unrelated texts alike) while its ranking is good, so a text counts
as close in meaning when it is near the best match (within MEANING_MARGIN) and above a floor
(MIN_SIMILARITY); both set on the labelled set of tools/bench_query.py (20 of 20 paraphrases found,
1.05 texts per question).
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..database import Database, Dialect, open_database
from ..errors import StoreError
from .embedder import SentenceEmbedder
from .people import TAG

log = logging.getLogger(__name__)

RRF_K = 60  # reciprocal rank fusion: score = sum of 1 / (RRF_K + rank)
MIN_SIMILARITY = 0.78  # below this nothing is close in meaning
MEANING_MARGIN = 0.01  # ...and a text must be this close to the best match
CANDIDATES = 50  # from each ranking, before fusion
WORD = re.compile(r"\w+", re.UNICODE)
# English function words: a question's "who", "did", "in" would match nearly every memory by words
STOPWORDS = frozenset(
    "a about all also an and any are as at be been but by can could did do does for from get got had has have he her here "
    "him his how i if in is it its just me my no not of on or our out she so than that the their them then there they "
    "this to up us very was we were what when where which who whom why will with would you your".split()
)
# The best `limit` of each source, then of both: ? = the words, the limit per source, the limit overall.
# Both take fts_query's quoted words joined by OR (websearch_to_tsquery reads them as FTS5 does).
BY_WORDS = {
    Dialect.SQLITE: "SELECT * FROM (SELECT 'memory', rowid, bm25(memory_fts) AS r FROM memory_fts WHERE memory_fts MATCH ? ORDER BY r LIMIT ?) "
    "UNION ALL SELECT * FROM (SELECT 'speech', rowid, bm25(speech_fts) AS r FROM speech_fts WHERE speech_fts MATCH ? ORDER BY r LIMIT ?) "
    "ORDER BY 3 LIMIT ?",  # bm25: lower is better
    Dialect.POSTGRES: "SELECT * FROM (SELECT 'memory', node_id, ts_rank(words, q) AS r FROM text_nodes, websearch_to_tsquery('english', ?) q "
    "WHERE words @@ q ORDER BY r DESC LIMIT ?) m UNION ALL SELECT * FROM (SELECT 'speech', track_id, ts_rank(words, q) AS r "
    "FROM speech_turns, websearch_to_tsquery('english', ?) q WHERE words @@ q ORDER BY r DESC LIMIT ?) s ORDER BY 3 DESC LIMIT ?",
}


@dataclass(frozen=True)
class Ranked:
    source: str  # "memory" (a text node) or "speech" (a turn)
    id: int
    score: float
    words: bool  # found by the word index
    meaning: bool  # close enough in meaning
    similarity: float | None  # cosine, where the vectors were compared


def fts_query(text: str) -> str | None:
    """Any of the words but function words, each quoted (FTS5 syntax in a question would be an error, not a search)."""
    words = [w for w in WORD.findall(text) if w.casefold() not in STOPWORDS]
    return " OR ".join(f'"{w}"' for w in words) or None


def for_embedding(source: str, text: str) -> str:
    return TAG.sub("someone", text) if source == "memory" else f'someone says: "{text.strip()}"'


def _texts(unstored: dict[tuple[str, int], tuple[str, npt.NDArray[np.float32]]]) -> dict[tuple[str, int], str]:
    return {key: text for key, (text, _) in unstored.items()}


class TextSearch:
    def __init__(self, path: str, embedder: SentenceEmbedder | None) -> None:
        self._path = path
        self.embedder = embedder
        self._lock = threading.Lock()
        self._matrix: tuple[tuple[int, int, int], list[tuple[str, int]], npt.NDArray[np.float32]] | None = None
        # vectors not stored yet, by (source, id): (the text embedded, its vector), with a number that
        # moves when a refresh finds a different set
        self._unstored: tuple[int, dict[tuple[str, int], tuple[str, npt.NDArray[np.float32]]]] = (0, {})

    # --- vectors ----------------------------------------------------------------------------------

    def refresh(self, db: Database) -> int:
        """Embeds the texts that have no stored vector yet and stores the vectors if the store takes
        them at once; returns how many texts had none. Serialised: one refresher at a time."""
        if self.embedder is None:
            return 0
        with self._lock:
            missing = db.execute(
                "SELECT 'memory', t.node_id, t.text FROM text_nodes t LEFT JOIN text_vectors v ON v.source = 'memory' AND v.id = t.node_id "
                "WHERE v.id IS NULL UNION ALL "
                "SELECT 'speech', s.track_id, s.text FROM speech_turns s LEFT JOIN text_vectors v ON v.source = 'speech' AND v.id = s.track_id "
                "WHERE v.id IS NULL AND s.text IS NOT NULL AND trim(s.text) != ''"
            ).fetchall()
            unstored: dict[tuple[str, int], tuple[str, npt.NDArray[np.float32]]] = {}
            writer = self._writer() if missing else None
            try:
                for i in range(0, len(missing), 256):
                    batch: list[tuple[str, int, str]] = missing[i : i + 256]
                    vecs = self._embed(batch)
                    if writer is not None and not self._store(writer, batch, vecs):
                        writer.close()  # busy or away: the rest stays in memory too
                        writer = None
                    if writer is None:
                        unstored.update(((s, n), (t, v)) for (s, n, t), v in zip(batch, vecs))
            finally:
                if writer is not None:
                    writer.close()
            # a new number (the matrix reloads) only when they changed: while the store stays busy
            # each refresh finds the very same ones (same texts, the same vectors reused)
            if _texts(unstored) != _texts(self._unstored[1]):
                self._unstored = (self._unstored[0] + 1, unstored)
            return len(missing)

    def _embed(self, batch: list[tuple[str, int, str]]) -> list[npt.NDArray[np.float32]]:
        """The vectors of (source, id, text), reusing those kept unstored for the same text."""
        assert self.embedder is not None
        vecs: dict[tuple[str, int], npt.NDArray[np.float32]] = {}
        todo = []
        for source, id_, text in batch:
            kept = self._unstored[1].get((source, id_))
            if kept is not None and kept[0] == text:
                vecs[(source, id_)] = kept[1]
            else:
                todo.append((source, id_, text))
        if todo:
            log.info("embedding %d texts for search by meaning", len(todo))
            for (source, id_, _), v in zip(todo, self.embedder.passages([for_embedding(s, t) for s, _, t in todo])):
                vecs[(source, id_)] = np.asarray(v, np.float32)
        return [vecs[(source, id_)] for source, id_, _ in batch]

    def _writer(self) -> Database | None:
        """A connection that writes without waiting for anyone; None if the store cannot be reached now."""
        try:
            return open_database(self._path, waits=False)
        except StoreError as e:
            log.info("search vectors kept in memory for now: %s", e)
            return None

    def _store(self, writer: Database, batch: list[tuple[str, int, str]], vecs: list[npt.NDArray[np.float32]]) -> bool:
        """Stores the vectors of a batch if the store takes them at once; False if it does not."""
        try:
            writer.begin(immediate=True)  # SQLite: the write lock now, or "locked" at once (the link does not wait)
            # only if the text is still the one embedded: a change since then dropped the vector;
            # a vector there already came from another refresher, of the same text
            writer.executemany(
                "INSERT INTO text_vectors (source, id, vec) SELECT ?, ?, ? WHERE "
                "(CASE ? WHEN 'memory' THEN (SELECT text FROM text_nodes WHERE node_id = ?) "
                "ELSE (SELECT text FROM speech_turns WHERE track_id = ?) END) = ? ON CONFLICT DO NOTHING",
                [(s, n, v.tobytes(), s, n, n, t) for (s, n, t), v in zip(batch, vecs)],
            )
            writer.commit()
            return True
        except (StoreError, *writer.errors) as e:
            log.info("search vectors kept in memory for now: %s", " ".join(str(e).split()))
            return False

    def _vectors(self, db: Database) -> tuple[list[tuple[str, int]], npt.NDArray[np.float32]]:
        generation, unstored = self._unstored
        version = (*db.execute("SELECT COUNT(*), COALESCE(MAX(rowid), 0) FROM text_vectors").fetchone(), generation)
        cached = self._matrix
        if cached is None or cached[0] != version:
            rows = db.execute("SELECT source, id, vec FROM text_vectors ORDER BY rowid").fetchall()
            keys = [(r[0], r[1]) for r in rows]
            dim = self.embedder.dim if self.embedder else 0
            matrix = np.frombuffer(b"".join(r[2] for r in rows), np.float32).reshape(len(rows), dim) if rows else np.zeros((0, dim), np.float32)
            stored = set(keys)
            extra = [(k, v) for k, (_, v) in unstored.items() if k not in stored]  # (another process may have stored them since)
            if extra:
                keys += [k for k, _ in extra]
                matrix = np.vstack([matrix, np.stack([v for _, v in extra])])
            cached = self._matrix = (version, keys, matrix)
        return cached[1], cached[2]

    # --- rankings ---------------------------------------------------------------------------------

    def by_words(self, db: Database, text: str, limit: int = CANDIDATES) -> list[tuple[str, int]]:
        query = fts_query(text)
        if query is None:
            return []
        rows = db.execute(BY_WORDS[db.dialect], (query, limit, query, limit, limit)).fetchall()
        return [(r[0], r[1]) for r in rows]

    def by_meaning(self, db: Database, text: str, limit: int = CANDIDATES) -> list[tuple[str, int, float]]:
        if self.embedder is None:
            return []
        keys, matrix = self._vectors(db)
        if not keys:
            return []
        sims = matrix @ self.embedder.query(text)
        top = np.argsort(-sims)[:limit]
        return [(*keys[i], float(sims[i])) for i in top]

    def rank(self, db: Database, text: str, limit: int) -> list[Ranked]:
        """The best `limit` texts for a question, fused from both rankings."""
        scores: dict[tuple[str, int], float] = {}
        words = self.by_words(db, text)
        for rank, key in enumerate(words):
            scores[key] = scores.get(key, 0.0) + 1.0 / (RRF_K + rank)
        meaning = self.by_meaning(db, text)
        similarity = {(source, id_): sim for source, id_, sim in meaning}
        close = max(MIN_SIMILARITY, meaning[0][2] - MEANING_MARGIN) if meaning else 1.0
        for rank, (source, id_, sim) in enumerate(meaning):
            if sim >= close:
                scores[(source, id_)] = scores.get((source, id_), 0.0) + 1.0 / (RRF_K + rank)
        in_words = set(words)
        # equal fused scores (first by words, first by meaning) are told apart by meaning
        best = sorted(scores.items(), key=lambda kv: (-kv[1], -similarity.get(kv[0], -1.0)))[:limit]
        return [Ranked(s, i, score, (s, i) in in_words, similarity.get((s, i), -1.0) >= close, similarity.get((s, i)))
                for (s, i), score in best]  # fmt: skip
