"""Memory: the one object the streamer talks to. Used from one thread at a time.

State lives in memory for speed (nodes, their mean vectors, recent tracks, presence, open clips)
and is written to the store in batches: every change marks what it touched dirty, and `flush`
writes the dirty rows and commits once. Events go into the same transaction as the state they
describe, so a crash loses both or neither, and the outbox only ever sees committed events.

The parts: `nodes` (rows, galleries, matching index), `tracks`, `identity` (online matching, one
machinery for faces and voices, told apart by `policy`), `edits` (label, merge, split,
re-clustering), `events`, `presence`, `graph` (clips), `evidence` (who spoke), `characters` (faces
tied to voices), `episodes` (episodic and semantic memories) and `store`; the reads are memory.reads,
the exports memory.exports.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from types import TracebackType

import numpy as np

from .characters import Characters
from .config import MemoryConfig
from .crops import CropShelf
from .database import shown
from .edits import Edits
from .episodes import Episodes
from .errors import MemoryGraphError
from .events import EventLog
from .exports import Exports
from .forget import Forgetting, Forgotten
from .evidence import Evidence
from .graph import Clips, OpenClip
from .identity import Identities
from .model_memories import ModelMemories
from .nodes import IDENTITY_KINDS, NodeTable
from .policy import policies
from .presence import PresenceBoard
from .reads import Reads
from .retention import Pruned, prune
from .records import FaceObservation, NodeKind, NodeStatus, Provenance, SpeakerEvidence, SpeechTurn, TrackEvidence
from .snippets import VoiceSnippets
from .store import Store
from .tracks import MAX_PENDING_ROWS, TrackState, TrackTable

log = logging.getLogger(__name__)

PRUNE_EVERY_SECONDS = 3600.0  # retention runs this rarely
TRACK_ID_BLOCK = 1000  # track ids are reserved in blocks, one commit per block


class Memory(Reads, Exports):
    def __init__(self, cfg: MemoryConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self._clock = clock
        self._store = Store(cfg.db)
        now = clock()
        self._nodes = NodeTable(self._store)
        self._tracks = TrackTable(self._store, self._nodes)
        self._events = EventLog(self._store, self._nodes, clock)
        self._presence = PresenceBoard()
        self._clips = Clips(cfg.interval_seconds)
        self._crops = CropShelf(self._store, cfg.crops_per_node)
        self._identities = Identities(policies(cfg), self._nodes, self._tracks, self._events, self._presence, self._crops)
        self._identities.restore_presence(self._store.latest_presence(), self._store.last_seen_t, now)
        self._evidence = Evidence(self._store, self._nodes, self._tracks, cfg, clock)
        self._characters = Characters(self._store, self._nodes, self._evidence, self._events, cfg)
        self._edits = Edits(self._store, self._nodes, self._tracks, self._identities, self._events, self._presence,
                            self._crops, self._characters, clock)  # fmt: skip
        self._episodes = Episodes(self._store, self._nodes, self._tracks, self._events, self._tag, self._members, clock)
        self._snippets = VoiceSnippets(self._store, cfg.voice_snippet_seconds)
        self._forgetting = Forgetting(self._store, self._nodes, self._tracks, self._identities, self._presence, self._crops,
                                      self._characters, self._evidence, self._episodes, self._edits, self._events,
                                      self._snippets, self.flush)  # fmt: skip
        self._model_memories = ModelMemories(self._store, self._nodes, self._characters, clock)
        self._next_track_id = self._track_id_limit = int(self._store.meta("next_track_id", "1") or 1)
        self._bookmarks: dict[str, str] = {}  # callers' notes, written with the next flush
        self._last_flush = self._last_prune = now
        self._last_recluster = dict.fromkeys(IDENTITY_KINDS, now)
        self._recluster_rest = dict.fromkeys(IDENTITY_KINDS, 0.0)  # seconds after a run before the tick starts another
        log.info("opened %s: %d identity nodes", shown(cfg.db), len(self._nodes.rows))

    # --- context manager ------------------------------------------------------------------------

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._evidence.due(float("inf"))  # turns still waiting for synchrony are weighed with what came
        self._characters.evaluate()
        self._write_pending()
        self._store.close()

    def flush(self) -> None:
        self._write_pending()
        self._store.commit()
        self._events.unflushed = 0
        self._last_flush = self._clock()
        self._nodes.trim_cache()

    def flush_events(self) -> bool:
        """Commit now if events wait, so the feed can publish them at once (events_after only sees
        committed ones); True if it did. Cheap when nothing happened, as on most frames."""
        if not self._events.unflushed:
            return False
        self.flush()
        return True

    def _write_pending(self) -> None:
        self._tracks.write()
        self._nodes.write()
        for key, value in self._bookmarks.items():
            self._store.set_meta(f"bookmark.{key}", value)
        self._bookmarks.clear()

    def load_libraries(self) -> None:
        """Loads now what matching loads at its first use (faiss: seconds on a busy machine), so that
        a service does not stall on it mid-stream. Re-clustering needs numpy only (memory.hdbscan)."""
        import faiss  # noqa: F401, PLC0415

    # --- tracks ---------------------------------------------------------------------------------

    def new_track_id(self) -> int:
        if self._next_track_id >= self._track_id_limit:
            self._track_id_limit = self._next_track_id + TRACK_ID_BLOCK
            self._store.set_meta("next_track_id", str(self._track_id_limit))
            self.flush()  # the reservation must be durable before any id of the block is handed out
        self._next_track_id += 1
        return self._next_track_id - 1

    def node_of_track(self, track_id: int) -> int | None:
        return self._tracks.node_of(track_id)

    # --- the hot path ---------------------------------------------------------------------------

    def record_faces(self, obs: Sequence[FaceObservation]) -> None:
        now = self._clock()
        for o in obs:
            track = self._tracks.touch(o.track_id, o.stream, (o.t, o.t), (o.wall_time, o.wall_time), now)
            self._tracks.add_observation(
                (o.track_id, o.stream, o.t, o.wall_time, *o.bbox, o.det_score, o.quality, o.face_type)
            )
            self._observed(track, o.stream, (o.t, o.t), (o.wall_time, o.wall_time), now)
        self._evidence.faces_seen(obs)
        if self._tracks.pending >= MAX_PENDING_ROWS:
            self.flush()

    def identify_track(self, ev: TrackEvidence, kind: NodeKind = NodeKind.FACE) -> int | None:
        """Matches (and, with good evidence, creates or extends) the node of a track; voices pass kind=VOICE."""
        if kind not in IDENTITY_KINDS:
            raise MemoryGraphError(f"identify_track takes face or voice evidence, not {kind.value}")
        now = self._clock()
        track = self._tracks.touch(ev.track_id, ev.stream, (ev.t, ev.t), (ev.wall_time, ev.wall_time), now)
        return self._identify(track, ev, kind, (ev.t, ev.t), (ev.wall_time, ev.wall_time), now)

    def add_turn(self, turn: SpeechTurn) -> int | None:
        """Stores a speech turn and identifies it as a voice; returns its voice node (None: no identity).

        A turn that is not good (short, overlapped) may be matched to a voice, but never creates
        or reshapes one. A good turn's embedding is kept with its length in seconds as its quality:
        longer turns embed the voice more reliably."""
        now = self._clock()
        span, wall = (turn.t_start, turn.t_end), (turn.wall_time, turn.wall_time + turn.seconds)
        track = self._tracks.touch(turn.track_id, turn.stream, span, wall, now)
        self._tracks.add_turn(turn)
        self._observed(track, turn.stream, span, wall, now)
        node_id = self._tracks.node(track)
        if turn.embedding is not None:
            ev = TrackEvidence(turn.stream, turn.track_id, turn.t_start, turn.wall_time,
                               np.asarray(turn.embedding, np.float32)[None, :], np.array([turn.seconds], np.float32),
                               np.ones(1, np.float32), np.array([turn.good]))  # fmt: skip
            node_id = self._identify(track, ev, NodeKind.VOICE, span, wall, now, turn.seconds if turn.good else 0.0)
        if turn.good and turn.audio is not None and node_id is not None:
            self._snippets.offer(node_id, turn.seconds, turn.audio)
        self._evidence.turn(turn)
        self._episodes.turn_added(turn.track_id)
        if self._tracks.pending >= MAX_PENDING_ROWS:
            self.flush()
        return node_id

    def transcribed(self, track_id: int, text: str | None) -> None:
        """Stores what a turn said (None: not transcribed) and emits its `speech` event, in one transaction."""
        self._tracks.write()  # the turn's row may still wait in the batch
        found = self._store.set_turn_text(track_id, text)
        if found is None:
            if track_id in self._forgetting.turns:  # its speaker was forgotten while it was transcribed
                return
            raise MemoryGraphError(f"no speech turn {track_id}")
        stream, t_start, t_end = found
        self._events.speech(stream, track_id, t_start, t_end, self._tracks.node_of(track_id), text)
        self._episodes.transcribed(track_id, text)

    def speaker_evidence(self, ev: SpeakerEvidence) -> None:
        """How the mouths of the faces on screen moved with one speech turn (after add_turn for that
        turn; it may come late, or never). Weighed with the faces seen during the turn, it may tie or
        untie a face and a voice (see memory.characters for the rule)."""
        self._evidence.sync(ev)
        self._characters.evaluate()

    def _observed(self, track: TrackState, stream: str, span: tuple[float, float], wall: tuple[float, float], now: float) -> None:
        """A face or a turn of a track: its stream's clip and time grow, its node (if any) was seen."""
        for t, w in {span[0]: wall[0], span[1]: wall[1]}.items():
            closed = self._clips.observe(stream, t, w, track.row.id)
            if closed is not None:
                self._close_clip(closed)
        self._presence.advance(stream, span[1])
        node_id = self._tracks.node(track)
        if node_id is None:
            track.n_observations += 1
        else:
            self._nodes[node_id].n_observations += 1
            self._identities.seen(node_id, stream, span, wall, now)

    def _identify(
        self,
        track: TrackState,
        ev: TrackEvidence,
        kind: NodeKind,
        span: tuple[float, float],
        wall: tuple[float, float],
        now: float,
        speech_seconds: float = 0.0,
    ) -> int | None:
        if len(ev.embeddings) == 0:
            return self._tracks.node(track)
        good = np.asarray(ev.good, bool)
        node_id = self._identities.match_or_create(track, ev, kind, bool(good.any()), now)
        if node_id is None:
            return None
        if good.any():
            self._identities.absorb(node_id, ev, good, span, now, speech_seconds)
            target = self._identities.catch_up_target(node_id, ev.track_id, self._edits.cannot_link)
            if target is not None:  # a node made by this track alone turns out to be a known one
                self._edits.merge_into(target, node_id, manual=False)
                node_id = target
        self._identities.seen(node_id, ev.stream, span, wall, now)
        return node_id

    # --- periodic work --------------------------------------------------------------------------

    def tick(self) -> None:
        now = self._clock()
        self._identities.expire_due(now)
        for kind, buffer in self._identities.buffers.items():
            rc = self._identities.policies[kind].recluster
            due = buffer.new_faces >= rc.every_faces or now - self._last_recluster[kind] >= rc.every_seconds
            if buffer.new_faces and due and now - self._last_recluster[kind] >= self._recluster_rest[kind]:
                self.recluster(kind)
        for stream, node_id, presence in self._presence.gone(now):
            self._identities.left(stream, node_id, presence)
        self._events.updates_due(now)
        self._evidence.due(now)
        self._characters.evaluate()
        if now - self._last_prune >= PRUNE_EVERY_SECONDS:
            self.prune()
        if now - self._last_flush >= self.cfg.flush_every_seconds:
            self.flush()

    def end_stream(self, stream: str, still: bool = False) -> None:
        """The stream ended or disconnected. A still photo is one deliberate look at each face in it,
        not a passer-by: its provisional nodes with a good face are confirmed (still=True)."""
        if still:
            self._identities.confirm_still(stream)
        self._evidence.end_stream(stream)
        self._characters.evaluate()
        clip = self._clips.close(stream)
        if clip is not None:
            self._close_clip(clip)
        for node_id, presence in self._presence.end_stream(stream):
            self._identities.left(stream, node_id, presence)

    def prune(self) -> Pruned:
        """Retention (memory.retention): history older than retention_days goes, and strangers who
        expired before then; who somebody is stays."""
        now = self._clock()
        self._last_prune = now
        self._write_pending()
        done = prune(self._store, self._evidence, self._nodes, now - self.cfg.retention_days * 86400.0)
        self._forgetting.strangers(done.strangers)
        self._episodes.update_semantic(done.recount)  # "seen in N clips over D days" counts the clips kept
        self._tracks.forget_idle(now, set().union(*(b.track_ids() for b in self._identities.buffers.values())))
        log.info("retention pruned %s", done.pruned)
        return done.pruned

    def _close_clip(self, clip: OpenClip) -> None:
        self._episodes.close(clip)

    def add_model_memories(
        self, stream: str, index: int, episodic: Sequence[str], semantic: Sequence[str], source: Provenance
    ) -> list[tuple[int, str, list[int]]]:
        """Stores a language model's memories of a closed clip (the latest clip `index` of `stream`):
        text nodes with their provenance, linked to the clip's people whose tags they mention. Returns
        (text node, text, linked nodes) per memory."""
        clip = self.clip_memories(stream, index)
        people = set() if clip is None else {*clip["faces"], *clip["voices"]}
        return self._model_memories.add(stream, index, list(episodic), list(semantic), source, people)

    def provenance(self, node_id: int) -> tuple[int | None, Provenance] | None:
        """(clip id, provenance) of a memory a language model wrote; None for any other node."""
        return self._store.model_memory(node_id)

    def tag(self, node_id: int) -> str:
        """A node's tag in memories (`<face_3>`, `<voice_1>`, or its character's `<character_2>`)."""
        return self._tag(self.resolve(node_id))

    def _tag(self, node_id: int) -> str:
        """A node's tag in memories: its character's when it has one."""
        character = self._characters.of_node(node_id)
        return character.tag if character is not None else f"<{self._nodes[node_id].kind.value}_{node_id}>"

    def _members(self, node_id: int) -> list[int]:
        character = self._characters.of_node(node_id)
        return [node_id] if character is None else [*character.faces, *character.voices]

    # --- edits by hand (and by re-clustering) ---------------------------------------------------

    def recluster(self, kind: NodeKind | None = None) -> None:
        """HDBSCAN over the buffered tracks of one kind (both when None), then splits and merges."""
        for k in IDENTITY_KINDS if kind is None else (kind,):
            self._last_recluster[k] = self._clock()
            started = time.perf_counter()
            self._edits.recluster(k)
            self._recluster_rest[k] = (time.perf_counter() - started) / self._identities.policies[k].recluster.max_share

    def label(self, node_id: int, name: str) -> None:
        self._edits.label(node_id, name)
        self._characters.regroup()  # a label on any node names its character
        self._episodes.update_semantic([self.resolve(node_id)])

    def merge(self, keep: int, other: int) -> int:
        return self._edits.merge(keep, other)

    def split(self, node_id: int, track_ids: Sequence[int]) -> int:
        """Moves tracks (with their embeddings, crops and observations) to a new node; re-clustering
        will not merge the two back."""
        return self._edits.split(node_id, track_ids)

    def forget(self, target: int | str) -> Forgotten:
        """Deletes a person (a node id, a tag like <face_3>, or <character_2>; a node of a character
        forgets the whole character): see memory.forget. Emits node.forgotten and commits."""
        return self._forgetting.forget(target)

    # --- the feed's place -----------------------------------------------------------------------

    def published_seq(self) -> int:
        return int(self._store.meta("published_seq", "0") or 0)

    def mark_published(self, seq: int) -> None:
        """Committed with the next flush: after a crash the outbox may publish a few events again
        (at-least-once; events carry a uuid for consumers that dedupe)."""
        self._store.set_meta("published_seq", str(seq))

    def bookmark(self, key: str) -> str | None:
        """A caller's own note in the store, such as how far it has applied a log of messages."""
        pending = self._bookmarks.get(key)
        return pending if pending is not None else self._store.meta(f"bookmark.{key}")

    def set_bookmark(self, key: str, value: str) -> None:
        """Committed with the next flush, in one transaction with every change made since the last
        one: a crash keeps both the note and those changes, or neither. Held until then: a caller
        may note its place once per message at no cost."""
        self._bookmarks[key] = value

    # --- characters -----------------------------------------------------------------------------

    def link(self, face_id: int, voice_id: int) -> None:
        """Ties a face and a voice by hand (evidence never unties it); a face may take several voices this way.
        Someone a person names is real: a provisional node of the pair is confirmed (it would expire)."""
        face, voice = self._characters.pair(face_id, voice_id)
        for node_id in (face, voice):
            if self._nodes[node_id].status == NodeStatus.PROVISIONAL:
                self._identities.confirm(node_id)
        self._characters.link(face_id, voice_id)

    def unlink(self, face_id: int, voice_id: int) -> None:
        """Unties a face and a voice, and remembers it: evidence never ties the two again."""
        self._characters.unlink(face_id, voice_id)

    add_equivalence = link  # M3-Agent's name
