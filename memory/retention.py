"""Retention (`memory.retention_days`): what the file holds about the past is bounded in time.

Older than the retention, these go:
- face observations, and speech turns with their transcripts;
- clips with their episodic memories (who was there, who was together, who said what, and a
  language model's memories of the clip);
- semantic memories written before then, unless one of the people they are about has been seen or
  heard since: facts about somebody still around stay (they are rewritten as evidence grows), facts
  about somebody gone that long go with the clips they were drawn from;
- who-spoke verdicts per turn and face track, after their counts are added to per-pair totals
  (memory.evidence), so ties and characters stand as they are;
- events already published (the feed's outbox; presence keeps its own table);
- tracks last seen before then, unless a node's embeddings or crops, or a verdict still kept, come
  from them (a split moves a node's embeddings by their tracks).

Nodes, their embeddings and crops, ties and labels stay: who somebody is is not history.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

from .evidence import Evidence
from .store import Store


@dataclass(frozen=True)
class Pruned:
    """What one pass removed."""

    observations: int = 0
    turns: int = 0
    clips: int = 0
    memories: int = 0  # episodic and semantic text memories
    verdicts: int = 0  # who-spoke verdicts folded into per-pair totals
    events: int = 0
    tracks: int = 0

    @property
    def total(self) -> int:
        return sum(astuple(self))


def prune(store: Store, evidence: Evidence, before_wall: float) -> tuple[Pruned, list[int]]:
    """Removes what is older than `before_wall` (unix time) in the store's open transaction. Returns
    what went, and the people seen since whose pruned clips their facts still count."""
    observations, turns = store.prune_observations(before_wall), store.prune_turns(before_wall)
    db = store.db
    if not db.in_transaction:
        db.begin()
    verdicts = evidence.fold(before_wall)
    doomed = [r[0] for r in db.execute(
        "SELECT t.node_id FROM text_nodes t JOIN clips c ON c.id = t.clip_id WHERE c.end_wall < ? "
        "UNION SELECT n.id FROM nodes n WHERE n.kind = 'semantic' AND n.created_wall < ? AND NOT EXISTS ("
        "    SELECT 1 FROM edges e JOIN nodes p ON p.id = e.dst WHERE e.src = n.id AND p.last_seen_wall >= ?)",
        (before_wall, before_wall, before_wall),
    )]  # fmt: skip
    recount: set[int] = set()
    for start in range(0, len(doomed), 500):  # (SQLite caps the number of parameters)
        chunk = doomed[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        recount.update(r[0] for r in db.execute(
            f"SELECT DISTINCT e.dst FROM edges e JOIN nodes p ON p.id = e.dst WHERE e.src IN ({marks}) "
            "AND p.kind IN ('face', 'voice') AND p.last_seen_wall >= ?", (*chunk, before_wall)))  # fmt: skip
        db.execute(f"DELETE FROM text_nodes WHERE node_id IN ({marks})", chunk)  # triggers drop words and vectors
        db.execute(f"DELETE FROM model_memories WHERE node_id IN ({marks})", chunk)
        db.execute(f"DELETE FROM edges WHERE src IN ({marks})", chunk)
        db.execute(f"DELETE FROM nodes WHERE id IN ({marks})", chunk)
    clips = db.execute("DELETE FROM clips WHERE end_wall < ?", (before_wall,)).rowcount
    # (their faces and turns went above: a track's observations are never later than its last_wall)
    tracks = db.execute(
        "DELETE FROM tracks WHERE last_wall < ? AND id NOT IN (SELECT track_id FROM embeddings) "
        "AND id NOT IN (SELECT track_id FROM crops) AND id NOT IN (SELECT turn_id FROM turn_faces) "
        "AND id NOT IN (SELECT face_track FROM turn_faces)",
        (before_wall,),
    ).rowcount
    published = int(store.meta("published_seq", "0") or 0)
    events = db.execute("DELETE FROM events WHERE wall_time < ? AND seq <= ?", (before_wall, published)).rowcount
    return Pruned(observations, turns, clips, len(doomed), verdicts, events, tracks), sorted(recount)
