"""Episodic and semantic memories, written from the graph without a language model.

Per closed clip, episodic memories in M3-Agent's style, one text node each, linked to the nodes it
names: who was there ("<face_3> was seen and <voice_1> was heard in camera 'door' from ... to ..."),
who was together (faces on screen at the same time), and who said what ('<character_2> says: "..."').
A person tied into a character is named by the character's tag.

Transcripts lag behind speech (ASR has its own queue), so a clip can close before its last turns
are transcribed. The clip's memories are written when it closes, with the turns transcribed by
then, so `clip.closed` goes out on time and carries them; a quote that comes later is added as a
further episodic memory of the same clip (its `speech` event tells subscribers). Nothing waits and
nothing is lost; only the set of turns awaiting text is held, bounded.

Semantic memories are facts about a person, kept up to date (one text node per person and aspect,
rewritten as evidence grows): their label, how often and where and when they are usually seen, and
who they are regularly seen with.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from collections.abc import Callable

from .events import EventLog
from .graph import OpenClip, connected_groups, episodic_text, names
from .nodes import NodeTable
from .records import NodeKind, NodeStatus
from .rows import NodeRow
from .store import Store
from .tracks import TrackTable

AWAITING_TEXT_MAX = 10_000  # turns of closed clips still waiting for their transcript
TOGETHER_MIN_SECONDS = 1.0  # two faces on screen together at least this long were together
REGULAR_MIN_CLIPS = 3  # "regularly seen with": in at least this many clips...
REGULAR_MIN_SHARE = 0.5  # ...and this share of the person's clips


class Episodes:
    def __init__(
        self,
        store: Store,
        nodes: NodeTable,
        tracks: TrackTable,
        events: EventLog,
        tag: Callable[[int], str],
        members: Callable[[int], list[int]],
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._nodes = nodes
        self._tracks = tracks
        self._events = events
        self._tag = tag  # a node's tag in memories: its character's where it has one
        self._members = members  # the nodes one subject stands for: its character's, or itself
        self._clock = clock
        self._untranscribed: OrderedDict[int, None] = OrderedDict()  # turns not transcribed yet
        self._late: OrderedDict[int, int] = OrderedDict()  # turn of a closed clip -> the clip's id

    # --- speech ---------------------------------------------------------------------------------

    def turn_added(self, turn_id: int) -> None:
        self._untranscribed[turn_id] = None
        while len(self._untranscribed) > AWAITING_TEXT_MAX:
            self._untranscribed.popitem(last=False)

    def transcribed(self, turn_id: int, text: str | None) -> None:
        self._untranscribed.pop(turn_id, None)
        clip_id = self._late.pop(turn_id, None)
        if clip_id is None or not text or not text.strip():
            return
        voice = self._confirmed(self._tracks.node_of(turn_id))
        if voice is not None:
            self._add(clip_id, self._quote(voice, text), [voice], None)
            self.update_semantic([voice])

    def forget(self, track_ids: set[int]) -> None:
        """Turns of a forgotten person wait for no transcript (memory.forget)."""
        for turn_id in track_ids:
            self._untranscribed.pop(turn_id, None)
            self._late.pop(turn_id, None)

    # --- clips ----------------------------------------------------------------------------------

    def close(self, clip: OpenClip) -> None:
        self._tracks.write()  # the clip's turns may still wait in the batch
        by_track = {t: n for t in clip.track_ids if (n := self._confirmed(self._tracks.node_of(t))) is not None}
        nodes = sorted(set(by_track.values()))
        clip_id = self._store.add_clip(clip.stream, clip.index, clip.first_t, clip.last_t, clip.first_wall, clip.last_wall)
        memories: list[tuple[int, str, list[int]]] = []
        if nodes:
            seen = self._tags([n for n in nodes if self._nodes[n].kind == NodeKind.FACE])
            heard = [t for t in self._tags([n for n in nodes if self._nodes[n].kind == NodeKind.VOICE]) if t not in seen]
            text = episodic_text(seen, heard, clip.stream, clip.first_wall, clip.last_wall)
            memories.append(self._add(clip_id, text, nodes, clip))
        for group in self._together(by_track):
            text = f"{names(self._tags(group))} were together in camera '{clip.stream}'"
            memories.append(self._add(clip_id, text, group, clip))
        for turn_id, _, _, text in self._store.clip_turns(sorted(clip.track_ids)):
            voice = by_track.get(turn_id)
            if turn_id in self._untranscribed:
                self._late[turn_id] = clip_id
                while len(self._late) > AWAITING_TEXT_MAX:
                    self._late.popitem(last=False)
            elif voice is not None and text and text.strip():
                memories.append(self._add(clip_id, self._quote(voice, text), [voice], clip))
        self._events.clip_closed(clip, nodes, memories)
        self.update_semantic(nodes)

    def _together(self, by_track: dict[int, int]) -> list[list[int]]:
        """Groups of face nodes whose tracks were on screen at the same time for a while."""
        spans = [(n, s) for t, n in by_track.items() if self._nodes[n].kind == NodeKind.FACE and (s := self._tracks.span(t))]
        links = {
            (min(a, b), max(a, b))
            for i, (a, sa) in enumerate(spans) for b, sb in spans[i + 1:]
            if a != b and min(sa[1], sb[1]) - max(sa[0], sb[0]) >= TOGETHER_MIN_SECONDS
        }  # fmt: skip
        # one person (a character) counts once: tags, not nodes, must differ
        return [g for g in connected_groups(links) if len(set(self._tags(g))) > 1]

    def _tags(self, nodes: list[int]) -> list[str]:
        return list(dict.fromkeys(self._tag(n) for n in nodes))

    def _quote(self, voice: int, text: str) -> str:
        return f'{self._tag(voice)} says: "{text.strip()}"'

    def _confirmed(self, node_id: int | None) -> int | None:
        return node_id if node_id is not None and self._nodes[node_id].status == NodeStatus.CONFIRMED else None

    def _add(self, clip_id: int | None, text: str, nodes: list[int], clip: OpenClip | None, kind: NodeKind = NodeKind.EPISODIC,
             key: str | None = None) -> tuple[int, str, list[int]]:  # fmt: skip
        memory_id = self._nodes.new_id()
        now = self._clock()
        first, last = (clip.first_wall, clip.last_wall) if clip else (now, now)
        row = NodeRow(memory_id, kind, NodeStatus.CONFIRMED, None, None, now, first, last, 0, 0, 0, None, None,
                      {clip.stream} if clip else set(), None)  # fmt: skip
        self._store.add_text_node(row, clip_id, text, key)
        self._store.add_edges((memory_id, n, 1.0) for n in nodes)
        return memory_id, text, nodes

    # --- semantic memories ----------------------------------------------------------------------

    def update_semantic(self, nodes: list[int]) -> None:
        """Re-derives the facts about the people among `nodes` (after a clip, a label, a tie)."""
        done: set[str] = set()
        for node in nodes:
            subject = self._tag(node)
            if subject in done or node not in self._nodes.rows or self._nodes[node].status != NodeStatus.CONFIRMED:
                continue
            done.add(subject)
            members = self._members(node)
            for aspect, text, linked in self._facts(subject, members):
                self._keep(f"{subject}:{aspect}", text, linked)

    def _facts(self, subject: str, members: list[int]) -> list[tuple[str, str, list[int]]]:
        facts = []
        label = next((self._nodes[n].label for n in members if self._nodes[n].label), None)
        if label:
            facts.append(("label", f"{subject} is {label}", members))
        clips = self._store.appearances(members)
        if clips:
            streams = Counter(s for _, s, _ in clips)
            hours = Counter(time.localtime(w).tm_hour for _, _, w in clips)
            days = len({time.strftime("%Y-%m-%d", time.localtime(w)) for _, _, w in clips})
            (stream, in_stream), (hour, _) = streams.most_common(1)[0], hours.most_common(1)[0]
            verb = "seen" if any(self._nodes[n].kind == NodeKind.FACE for n in members) else "heard"
            facts.append(("seen", f"{subject} has been {verb} in {len(clips)} {'clip' if len(clips) == 1 else 'clips'} over {days} "
                          f"{'day' if days == 1 else 'days'}, most often in camera '{stream}' ({in_stream} of {len(clips)}), "
                          f"usually between {hour:02d}:00 and {(hour + 1) % 24:02d}:00", members))  # fmt: skip
            for other, shared in self._store.companions(members):
                live = self._nodes.live(other) if other in self._nodes.rows else None
                if live is None or self._tag(live) == subject or self._nodes[live].status != NodeStatus.CONFIRMED:
                    continue
                if shared >= REGULAR_MIN_CLIPS and shared >= REGULAR_MIN_SHARE * len(clips):
                    facts.append((f"with:{self._tag(live)}", f"{subject} is regularly seen with {self._tag(live)} "
                                  f"({shared} of {len(clips)} clips)", [*members, live]))  # fmt: skip
        return facts

    def _keep(self, key: str, text: str, nodes: list[int]) -> None:
        found = self._store.keyed_text(key)
        if found is None:
            self._add(None, text, nodes, None, NodeKind.SEMANTIC, key)
        elif found[1] != text:
            self._store.set_text(found[0], text)
            self._store.set_edges(found[0], ((n, 1.0) for n in nodes))
