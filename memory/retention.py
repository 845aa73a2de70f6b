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
- expired nodes (provisional ones never confirmed: strangers passing a camera) last seen, or made if
  never seen, before then, with the nodes merged into them: their rows, embeddings, crops, voice
  snippets, unlinks and who-spoke totals, and then the tracks only they held. An expired node is kept
  while a person's word or a kept memory names it: a label, a tie to a face or voice, an edge from a
  memory (a language model's lines may name a provisional voice); its memories go by the rules above,
  and it goes at the first pass after them. Its id is never given to another node;
- tracks last seen before then, unless a node's embeddings or crops, or a verdict still kept, come
  from them (a split moves a node's embeddings by their tracks).

Nodes that were ever confirmed, their embeddings and crops, ties and labels stay: who somebody is is
not history. An expired node never became somebody.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

from .database import Database, in_chunks
from .evidence import Evidence
from .nodes import NodeTable
from .records import NodeStatus
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
    expired: int = 0  # expired face and voice nodes, with the nodes merged into them

    @property
    def total(self) -> int:
        return sum(astuple(self))


@dataclass(frozen=True)
class Pass:
    """One pass of retention: what went, and what the process holds that must follow."""

    pruned: Pruned
    recount: list[int]  # people seen since whose pruned clips their facts still count
    strangers: list[int]  # the expired nodes (and nodes merged into them) whose rows went


def prune(store: Store, evidence: Evidence, nodes: NodeTable, before_wall: float) -> Pass:
    """Removes what is older than `before_wall` (unix time) in the store's open transaction; the
    nodes' pending changes must be written first."""
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
    for chunk, marks in in_chunks(doomed):
        recount.update(r[0] for r in db.execute(
            f"SELECT DISTINCT e.dst FROM edges e JOIN nodes p ON p.id = e.dst WHERE e.src IN ({marks}) "
            "AND p.kind IN ('face', 'voice') AND p.last_seen_wall >= ?", (*chunk, before_wall)))  # fmt: skip
        db.execute(f"DELETE FROM text_nodes WHERE node_id IN ({marks})", chunk)  # triggers drop words and vectors
        db.execute(f"DELETE FROM model_memories WHERE node_id IN ({marks})", chunk)
        db.execute(f"DELETE FROM edges WHERE src IN ({marks})", chunk)
        db.execute(f"DELETE FROM nodes WHERE id IN ({marks})", chunk)
    clips = db.execute("DELETE FROM clips WHERE end_wall < ?", (before_wall,)).rowcount
    strangers = _unnamed(db, nodes, _strangers(nodes, before_wall))  # (after the memories that named them)
    _delete_nodes(db, strangers)
    # (their faces and turns went above: a track's observations are never later than its last_wall)
    tracks = db.execute(
        "DELETE FROM tracks WHERE last_wall < ? AND id NOT IN (SELECT track_id FROM embeddings) "
        "AND id NOT IN (SELECT track_id FROM crops) AND id NOT IN (SELECT turn_id FROM turn_faces) "
        "AND id NOT IN (SELECT face_track FROM turn_faces)",
        (before_wall,),
    ).rowcount
    published = int(store.meta("published_seq", "0") or 0)
    events = db.execute("DELETE FROM events WHERE wall_time < ? AND seq <= ?", (before_wall, published)).rowcount
    pruned = Pruned(observations, turns, clips, len(doomed), verdicts, events, tracks, len(strangers))
    return Pass(pruned, sorted(recount), strangers)


def _strangers(nodes: NodeTable, before_wall: float) -> dict[int, list[int]]:
    """Expired nodes last seen (or made, if never seen) before `before_wall`, each with the nodes
    merged into it, directly or not. Read from memory, which holds every face and voice row."""
    groups: dict[int, list[int]] = {}
    for row in nodes.rows.values():
        seen = row.created_wall if row.last_seen_wall is None else row.last_seen_wall
        if row.status == NodeStatus.EXPIRED and seen < before_wall:
            groups[row.id] = [row.id]
    for row in nodes.rows.values():
        if row.status == NodeStatus.MERGED and (survivor := nodes.resolve(row.id)) in groups:
            groups[survivor].append(row.id)
    return groups


def _unnamed(db: Database, nodes: NodeTable, groups: dict[int, list[int]]) -> list[int]:
    """The nodes of the groups nothing names: no label, no tie to a face or voice, no edge from a
    memory (an unlink names nobody: it goes with them)."""
    ids = [n for group in groups.values() for n in group]
    named = {n for n in ids if nodes[n].label is not None}
    for chunk, marks in in_chunks(ids):
        named.update(r[0] for r in db.execute(
            f"SELECT dst FROM edges WHERE dst IN ({marks}) UNION SELECT face_id FROM equivalences WHERE face_id IN ({marks}) "
            f"UNION SELECT voice_id FROM equivalences WHERE voice_id IN ({marks})", chunk * 3))  # fmt: skip
    return sorted(n for group in groups.values() if named.isdisjoint(group) for n in group)


def _delete_nodes(db: Database, ids: list[int]) -> None:
    """Deletes face and voice nodes with what only they hold (the tracks go by the rule for tracks)."""
    for chunk, marks in in_chunks(ids):
        for table, columns in (("embeddings", ("node_id",)), ("crops", ("node_id",)), ("voice_snippets", ("node_id",)),
                               ("cannot_link", ("a", "b")), ("pair_evidence", ("face_id", "voice_id")), ("nodes", ("id",))):  # fmt: skip
            where = " OR ".join(f"{c} IN ({marks})" for c in columns)
            db.execute(f"DELETE FROM {table} WHERE {where}", chunk * len(columns))
