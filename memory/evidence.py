"""Who spoke: evidence, per (face node, voice node) pair, that a face and a voice are one person.

Two sources meet per speech turn. Co-occurrence: which face tracks spanned most of the turn in
the same stream (from the face observations), and whether one of them was the only face there.
Synchrony (SpeakerEvidence, from the streamer): how each visible face's mouth moved with the
speech. A turn's verdict for a face is a win (its mouth moved with the voice, clearly more than any
other face's), a loss (it did not move with it, or another face clearly did) or nothing (too close
to call, or a face on screen was not measured). Verdicts are stored per (turn, face track), so they
follow merges and splits of the nodes; counts per node pair are kept in memory for the tie rule.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from .config import MemoryConfig
from .nodes import NodeTable
from .records import FaceObservation, NodeKind, SpeakerEvidence, SpeechTurn
from .rows import TurnFaceRow
from .store import Store
from .tracks import TrackTable

log = logging.getLogger(__name__)

SPAN_KEEP_SECONDS = 300.0  # face track spans kept this long (stream time) after their last face
WIN, NONE, LOSS = 1, 0, -1


@dataclass
class PairCounts:
    """Evidence that one face and one voice are one person, summed over the voice's turns."""

    seen: int = 0  # turns of the voice with the face on screen for most of the turn
    alone: int = 0  # ...as the only face on screen
    synced: int = 0  # turns with a synchrony score for the face
    sync_sum: float = 0.0
    wins: int = 0
    losses: int = 0

    def add(self, other: PairCounts, sign: int = 1) -> None:
        self.seen += sign * other.seen
        self.alone += sign * other.alone
        self.synced += sign * other.synced
        self.sync_sum += sign * other.sync_sum
        self.wins += sign * other.wins
        self.losses += sign * other.losses

    @property
    def agreement(self) -> float:
        """Share of the turns that counted for or against the pair that counted for it."""
        decided = self.wins + self.losses
        return self.wins / decided if decided else 0.0

    @property
    def mean_sync(self) -> float:
        return self.sync_sum / self.synced if self.synced else 0.0

    @property
    def empty(self) -> bool:
        return not (self.seen or self.synced)


def verdicts(sync: dict[int, float], visible: Iterable[int], min_sync: float, margin: float) -> dict[int, int]:
    """WIN, LOSS or NONE per scored face track of one turn."""
    unscored = set(visible) - sync.keys()
    out = {}
    for track, score in sync.items():
        rivals = [s for t, s in sync.items() if t != track]
        if score < min_sync or any(r >= score + margin for r in rivals):
            out[track] = LOSS
        elif not unscored and all(r <= score - margin for r in rivals):
            out[track] = WIN
        else:
            out[track] = NONE
    return out


@dataclass
class _Pending:
    turn: SpeechTurn
    since: float  # clock time it was added
    cover: dict[int, float] | None = None  # face track -> share of the turn it spanned, once the faces are in
    sync: dict[int, float] | None = None


@dataclass
class _Spans:
    latest: float = float("-inf")  # stream time of the latest face
    tracks: dict[int, list[float]] = field(default_factory=dict)  # track -> [first_t, last_t]
    # One entry per track, its last_t when it went in (at most its last_t now): the next to go is at
    # the top, found without a pass over every track of the stream for every frame.
    by_last: list[tuple[float, int]] = field(default_factory=list)

    def see(self, track: int, t: float) -> None:
        span = self.tracks.get(track)
        if span is None:
            self.tracks[track] = [t, t]
            heapq.heappush(self.by_last, (t, track))
        else:
            span[0], span[1] = min(span[0], t), max(span[1], t)
        self.latest = max(self.latest, t)

    def expire(self) -> None:
        """Drops the tracks whose last face is more than SPAN_KEEP_SECONDS behind the latest."""
        horizon = self.latest - SPAN_KEEP_SECONDS
        while self.by_last and self.by_last[0][0] < horizon:
            _, track = heapq.heappop(self.by_last)
            span = self.tracks.get(track)
            if span is None:
                continue  # forgotten meanwhile
            if span[1] < horizon:
                del self.tracks[track]
            else:  # seen since it went in: back in at its last face
                heapq.heappush(self.by_last, (span[1], track))


class Evidence:
    def __init__(self, store: Store, nodes: NodeTable, tracks: TrackTable, cfg: MemoryConfig, clock: Callable[[], float]) -> None:
        self._store = store
        self._nodes = nodes
        self._tracks = tracks
        self._cfg = cfg
        self._clock = clock
        self._spans: dict[str, _Spans] = {}
        self._pending: dict[int, _Pending] = {}
        self.counts: dict[tuple[int, int], PairCounts] = {}
        self.changed = False  # counts changed since the tie rule last looked
        self.rebuild()

    # --- input ----------------------------------------------------------------------------------

    def faces_seen(self, obs: Sequence[FaceObservation]) -> None:
        for o in obs:
            spans = self._spans.get(o.stream)
            if spans is None:
                spans = self._spans[o.stream] = _Spans()
            spans.see(o.track_id, o.t)
        for stream in {o.stream for o in obs}:
            spans = self._spans[stream]
            spans.expire()
            self._settle(lambda p: p.turn.stream == stream and p.turn.t_end <= spans.latest)

    def turn(self, turn: SpeechTurn) -> None:
        if turn.t_end > turn.t_start:
            pending = self._pending[turn.track_id] = _Pending(turn, self._clock())
            spans = self._spans.get(turn.stream)
            if spans is not None and spans.latest >= turn.t_end:  # the faces of the turn are all in already
                self._settle(lambda p: p is pending)

    def sync(self, ev: SpeakerEvidence) -> None:
        pending = self._pending.get(ev.turn)
        if pending is not None:
            pending.sync = dict(ev.sync)
            self._settle(lambda p: p is pending)
            return
        # a late score, for a turn already weighed without one: the faces it had on screen are stored
        visible = {r.face_track for r in self._store.turn_faces(ev.turn) if r.seen}
        rows = [TurnFaceRow(ev.turn, t, t in visible, False, s, v) for t, s, v in self._verdicts(ev.sync, visible)]
        self._write(ev.turn, rows)

    def due(self, now: float) -> None:
        """Weighs the turns that waited long enough for their faces or their synchrony."""
        self._settle(lambda p: now - p.since >= self._cfg.character_settle_seconds, force=True)

    def end_stream(self, stream: str) -> None:
        self._settle(lambda p: p.turn.stream == stream, force=True)
        self._spans.pop(stream, None)

    # --- weighing -------------------------------------------------------------------------------

    def _settle(self, which: Callable[[_Pending], bool], force: bool = False) -> None:
        if not self._pending:  # (on every frame: most have no turn waiting)
            return
        for turn_id, p in list(self._pending.items()):
            if not which(p):
                continue
            if p.cover is None:
                p.cover = self._cover(p.turn)
            if p.sync is None and not force:
                continue  # the faces are in; the synchrony may still come
            del self._pending[turn_id]
            self._weigh(p)

    def _cover(self, turn: SpeechTurn) -> dict[int, float]:
        spans = self._spans.get(turn.stream)
        if spans is None:
            return {}
        length = turn.t_end - turn.t_start
        out = {}
        for track, (first, last) in spans.tracks.items():
            overlap = min(last, turn.t_end) - max(first, turn.t_start)
            if overlap > 0:
                out[track] = overlap / length
        return out

    def _weigh(self, p: _Pending) -> None:
        assert p.cover is not None
        visible = {t for t, c in p.cover.items() if c >= self._cfg.character_min_visible}
        scored = {t: (s, v) for t, s, v in self._verdicts(p.sync or {}, visible)}
        rows = [
            TurnFaceRow(p.turn.track_id, t, t in visible, visible == {t}, *scored.get(t, (None, NONE)))
            for t in sorted(visible | scored.keys())
        ]
        self._write(p.turn.track_id, rows)

    def _verdicts(self, sync: dict[int, float], visible: set[int]) -> list[tuple[int, float, int]]:
        cfg = self._cfg
        v = verdicts(sync, visible, cfg.character_min_sync, cfg.character_sync_margin)
        return [(t, float(s), v[t]) for t, s in sorted(sync.items())]

    def _write(self, turn_id: int, rows: list[TurnFaceRow]) -> None:
        if not rows:
            return
        voice = self._tracks.node_of(turn_id)
        before = self._turn_counts(turn_id, voice)
        self._store.save_turn_faces(rows)
        after = self._turn_counts(turn_id, voice)
        for pair in before.keys() | after.keys():
            counts = self.counts.setdefault(pair, PairCounts())
            counts.add(before.get(pair, PairCounts()), -1)
            counts.add(after.get(pair, PairCounts()))
        self.changed = True

    def _turn_counts(self, turn_id: int, voice: int | None) -> dict[tuple[int, int], PairCounts]:
        if voice is None:
            return {}
        rows = [(r, self._tracks.node_of(r.face_track)) for r in self._store.turn_faces(turn_id)]
        return count_turn(voice, [(r, n) for r, n in rows if n is not None and self._nodes.kind(n) == NodeKind.FACE])

    # --- nodes change ---------------------------------------------------------------------------

    def merged(self, keep: int, other: int) -> None:
        for (f, v) in [p for p in self.counts if other in p]:
            counts = self.counts.pop((f, v))
            self.counts.setdefault((keep if f == other else f, keep if v == other else v), PairCounts()).add(counts)
        self.changed = True

    def forget(self, node_ids: set[int], track_ids: set[int]) -> None:
        """A forgotten person's evidence goes (memory.forget); their stored verdicts are already deleted."""
        self.counts = {p: c for p, c in self.counts.items() if not node_ids & set(p)}
        for track_id in track_ids:
            self._pending.pop(track_id, None)
            for spans in self._spans.values():
                spans.tracks.pop(track_id, None)
        self.changed = True

    def rebuild(self) -> None:
        """Counts from the stored verdicts and the totals of pruned ones (at start, and after a split
        moved tracks between nodes); stored node ids are followed through later merges."""
        self._tracks.write()
        self.counts = self._sum(self._store.turn_face_evidence())
        for (face_node, voice_node), counts in folded(self._store):
            face, voice = self._live(face_node, NodeKind.FACE), self._live(voice_node, NodeKind.VOICE)
            if face is not None and voice is not None:
                self.counts.setdefault((face, voice), PairCounts()).add(counts)
        self.changed = True

    def fold(self, before_wall: float) -> int:
        """Retention: the verdicts of turns last heard before `before_wall` leave the file, their counts
        added to the per-pair totals first, so ties weigh the same evidence after a restart; the counts
        in memory do not change. Returns the verdicts folded."""
        self._tracks.write()
        totals = self._sum(self._store.turn_face_evidence(before_wall))
        db = self._store.db
        db.executemany(
            "INSERT INTO pair_evidence (face_id, voice_id, seen, alone, synced, sync_sum, wins, losses) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (face_id, voice_id) DO UPDATE SET "
            + ", ".join(f"{c} = pair_evidence.{c} + excluded.{c}" for c in ("seen", "alone", "synced", "sync_sum", "wins", "losses")),
            [(f, v, c.seen, c.alone, c.synced, c.sync_sum, c.wins, c.losses) for (f, v), c in totals.items()],
        )
        return int(db.execute(
            "DELETE FROM turn_faces WHERE turn_id IN (SELECT id FROM tracks WHERE last_wall < ?)", (before_wall,)
        ).rowcount)  # fmt: skip

    def _sum(self, evidence: Iterable[tuple[TurnFaceRow, int | None, int | None]]) -> dict[tuple[int, int], PairCounts]:
        """Counts per (face, voice) pair of live nodes over stored verdicts."""
        by_turn: dict[int, tuple[int, list[tuple[TurnFaceRow, int]]]] = {}
        for row, face_node, voice_node in evidence:
            face, voice = self._live(face_node, NodeKind.FACE), self._live(voice_node, NodeKind.VOICE)
            if face is not None and voice is not None:
                by_turn.setdefault(row.turn_id, (voice, []))[1].append((row, face))
        out: dict[tuple[int, int], PairCounts] = {}
        for voice, rows in by_turn.values():
            for pair, counts in count_turn(voice, rows).items():
                out.setdefault(pair, PairCounts()).add(counts)
        return out

    def _live(self, node_id: int | None, kind: NodeKind) -> int | None:
        if node_id is None or self._nodes.kind(node_id) != kind:
            return None
        return self._nodes.live(node_id)


def folded(store: Store) -> list[tuple[tuple[int, int], PairCounts]]:
    """The totals of pruned verdicts, per (face, voice) node pair as they were when folded."""
    rows = store.db.execute("SELECT face_id, voice_id, seen, alone, synced, sync_sum, wins, losses FROM pair_evidence")
    return [((r[0], r[1]), PairCounts(*r[2:])) for r in rows]


def count_turn(voice: int, rows: list[tuple[TurnFaceRow, int]]) -> dict[tuple[int, int], PairCounts]:
    """One turn's evidence per face node: a node with two tracks in the turn counts once, by its best-synced track."""
    by_face: dict[int, list[TurnFaceRow]] = {}
    for row, face in rows:
        by_face.setdefault(face, []).append(row)
    out = {}
    for face, mine in by_face.items():
        c = PairCounts(seen=int(any(r.seen for r in mine)), alone=int(any(r.alone for r in mine)))
        scored = [r for r in mine if r.sync is not None]
        if scored:
            best = max(scored, key=lambda r: r.sync or 0.0)
            c.synced, c.sync_sum = 1, float(best.sync or 0.0)
            c.wins, c.losses = int(best.outcome == WIN), int(best.outcome == LOSS)
        out[(face, voice)] = c
    return out
