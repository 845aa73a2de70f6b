"""Texts as answers: a clip's memories and speech, and search hits, with tags translated to names."""

from __future__ import annotations

from collections.abc import Sequence

from ..database import Database
from ..errors import NodeNotFound
from .people import People
from .records import Clip, Hit, TextMemory, Utterance
from .search import Ranked


class ClipNotFound(NodeNotFound):
    """No clip of that number in that stream (HTTP 404)."""


def _named(db: Database, people: People, memory_ids: Sequence[int]) -> dict[int, tuple[int, ...]]:
    """The live face and voice nodes each text node names (its edges, merges followed)."""
    if not memory_ids:
        return {}
    marks = ", ".join("?" * len(memory_ids))
    out: dict[int, list[int]] = {m: [] for m in memory_ids}
    for src, dst in db.execute(f"SELECT src, dst FROM edges WHERE src IN ({marks}) ORDER BY src, dst", list(memory_ids)):
        out[src].append(dst)
    return {m: people.live_nodes(nodes) for m, nodes in out.items()}


def clip_of(db: Database, people: People, stream: str, index: int) -> Clip:
    row = db.execute(
        "SELECT id, first_t, last_t, start_wall, end_wall FROM clips WHERE stream = ? AND idx = ? ORDER BY id DESC LIMIT 1",
        (stream, index),
    ).fetchone()
    if row is None:
        raise ClipNotFound(f"no clip {index} of stream {stream!r} in the memory")
    clip_id, first_t, last_t, start, end = row
    texts = db.execute("SELECT node_id, text FROM text_nodes WHERE clip_id = ? ORDER BY node_id", (clip_id,)).fetchall()
    named = _named(db, people, [m for m, _ in texts])
    episodic = tuple(TextMemory(m, "episodic", people.translate(t), t, named[m]) for m, t in texts)
    turns = db.execute(
        "SELECT s.track_id, s.t_start, s.t_end, s.wall_time, s.text, tr.node_id FROM speech_turns s LEFT JOIN tracks tr ON tr.id = s.track_id "
        "WHERE s.stream = ? AND s.t_start BETWEEN ? AND ? ORDER BY s.t_start, s.track_id",
        (stream, first_t, last_t),
    ).fetchall()
    speech = []
    for turn, t0, t1, wall, text, node in turns:
        voice = None if node is None else (people.live_nodes([node]) or (None,))[0]
        speaker = None if voice is None else people.of_node(voice)
        speech.append(Utterance(stream, turn, voice, speaker.character if speaker else None,
                                speaker.name if speaker else "(unknown voice)", wall, wall + t1 - t0, t0, t1,
                                text.strip() if text else None))  # fmt: skip
    nodes = people.live_nodes([n for m in episodic for n in m.nodes] + [u.voice for u in speech if u.voice is not None])
    persons = people.people_of(list(nodes))
    semantic: tuple[TextMemory, ...] = ()
    if nodes:
        members = sorted({n for p in persons for n in p.nodes})
        marks = ", ".join("?" * len(members))
        rows = db.execute(
            f"SELECT DISTINCT t.node_id, t.text FROM text_nodes t JOIN nodes n ON n.id = t.node_id JOIN edges e ON e.src = t.node_id "
            f"WHERE n.kind = 'semantic' AND e.dst IN ({marks}) ORDER BY t.node_id",
            members,
        ).fetchall()
        about = _named(db, people, [m for m, _ in rows])
        semantic = tuple(TextMemory(m, "semantic", people.translate(t), t, about[m]) for m, t in rows)
    return Clip(stream, index, start, end, first_t, last_t, episodic, semantic, persons, tuple(speech))


def hits_of(db: Database, people: People, ranked: list[Ranked]) -> list[Hit]:
    """Search results with their texts, times, clips and people (a text deleted meanwhile is left out)."""
    memory_ids = [r.id for r in ranked if r.source == "memory"]
    turn_ids = [r.id for r in ranked if r.source == "speech"]
    memories = {}
    if memory_ids:
        marks = ", ".join("?" * len(memory_ids))
        for m, kind, text, stream, idx, wall in db.execute(
            f"SELECT t.node_id, n.kind, t.text, c.stream, c.idx, COALESCE(c.start_wall, n.created_wall) FROM text_nodes t "
            f"JOIN nodes n ON n.id = t.node_id LEFT JOIN clips c ON c.id = t.clip_id WHERE t.node_id IN ({marks})",
            memory_ids,
        ):
            memories[m] = (kind, text, stream, idx, wall)
    turns = {}
    if turn_ids:
        marks = ", ".join("?" * len(turn_ids))
        for turn, stream, wall, text, node in db.execute(
            f"SELECT s.track_id, s.stream, s.wall_time, s.text, tr.node_id FROM speech_turns s LEFT JOIN tracks tr ON tr.id = s.track_id "
            f"WHERE s.track_id IN ({marks})",
            turn_ids,
        ):
            turns[turn] = (stream, wall, text, node)
    named = _named(db, people, list(memories))
    hits = []
    for r in ranked:
        match = "both" if r.words and r.meaning else "words" if r.words else "meaning"
        if r.source == "memory" and r.id in memories:
            kind, text, stream, idx, wall = memories[r.id]
            nodes = named[r.id]
            hits.append(Hit(kind, r.id, people.translate(text), text, stream, wall, idx, nodes, match, r.score, r.similarity,
                            people.people_of(list(nodes))))  # fmt: skip
        elif r.source == "speech" and r.id in turns:
            stream, wall, text, node = turns[r.id]
            speaker = None if node is None else people.of_node(node)
            nodes = () if speaker is None else speaker.voices
            said = f'{speaker.name if speaker else "(unknown voice)"} says: "{text.strip()}"'
            tagged = f'{speaker.tag if speaker else "(unknown voice)"} says: "{text.strip()}"'
            hits.append(Hit("speech", r.id, said, tagged, stream, wall, None, nodes, match, r.score, r.similarity,
                            () if speaker is None else (speaker,)))  # fmt: skip
    return hits
