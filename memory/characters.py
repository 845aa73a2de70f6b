"""Characters: face and voice nodes that are one person, tied by evidence or by hand.

The tie rule (settings `character_*` in MemoryConfig). A face F and a voice V are tied when both
are confirmed, nobody unlinked them by hand, and over V's turns:
- F's mouth moved with V (a win, see memory.evidence) in at least `character_tie_min_turns` turns,
- at least `character_tie_min_agreement` of the turns that counted for or against the pair were
  for it, and F's mean synchrony with V is at least `character_min_sync`,
- no other face has as strong a case for V, nor another voice for F (a person has one voice), counting
  every pair with enough wins, even one whose agreement is too low to tie.
Co-occurrence alone never ties: a listener on screen while someone off camera speaks, or a person
in front of a TV, is on screen turn after turn. A tie made this way is undone when its agreement
falls below `character_untie_agreement` or a stronger rival appears. Ties set by hand are never
undone by evidence, and a pair unlinked by hand is never tied again automatically.

Characters are the connected groups of ties (union-find, as M3-Agent's refresh_equivalences).
Each keeps a stable id across restarts and merges: when two characters join, the older id stays.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .config import MemoryConfig
from .errors import MemoryGraphError
from .events import EventLog
from .evidence import Evidence
from .graph import connected_groups
from .nodes import NodeTable
from .records import NodeKind, NodeStatus
from .store import Store

log = logging.getLogger(__name__)

NEXT_ID_KEY = "next_character_id"


@dataclass(frozen=True)
class Character:
    id: int
    faces: tuple[int, ...]
    voices: tuple[int, ...]
    label: str | None  # the first label among its faces, then its voices

    @property
    def tag(self) -> str:
        return f"<character_{self.id}>"


class Characters:
    def __init__(self, store: Store, nodes: NodeTable, evidence: Evidence, events: EventLog, cfg: MemoryConfig) -> None:
        self._store = store
        self._nodes = nodes
        self._evidence = evidence
        self._events = events
        self._cfg = cfg
        self.ties: dict[tuple[int, int], bool] = {}  # (face, voice) -> set by hand
        for f, v, manual in store.equivalences():
            pair = (nodes.resolve(f), nodes.resolve(v))
            self.ties[pair] = self.ties.get(pair, False) or manual
        self.never = {
            pair for a, b in store.cannot_links()
            if (pair := self._face_voice(nodes.resolve(a), nodes.resolve(b))) is not None
        }  # fmt: skip
        self._saved = dict(self.ties)  # as the store has them
        self._ids = {nodes.resolve(n): c for n, c in store.character_ids().items()}
        self._next_id = int(store.meta(NEXT_ID_KEY, "1") or 1)
        self._by_id: dict[int, Character] = {}
        ids, self._by_id = self._group()  # (a file from before characters has ties without ids)
        if ids != self._ids:
            store.set_character_ids(ids)
        self._ids = ids

    def _face_voice(self, a: int, b: int) -> tuple[int, int] | None:
        kinds = (self._nodes.kind(a), self._nodes.kind(b))
        return (a, b) if kinds == (NodeKind.FACE, NodeKind.VOICE) else (b, a) if kinds == (NodeKind.VOICE, NodeKind.FACE) else None

    # --- by hand --------------------------------------------------------------------------------

    def pair(self, face_id: int, voice_id: int) -> tuple[int, int]:
        pair = self._face_voice(self._nodes.resolve(face_id), self._nodes.resolve(voice_id))
        if pair is None or pair[0] != self._nodes.resolve(face_id):
            raise MemoryGraphError(f"a character link joins a face node to a voice node, not {face_id} to {voice_id}")
        return pair

    def link(self, face_id: int, voice_id: int) -> None:
        pair = self.pair(face_id, voice_id)
        self.never.discard(pair)
        self.ties[pair] = True
        self.evaluate(force=True)

    def unlink(self, face_id: int, voice_id: int) -> None:
        """Unties the pair and remembers it: evidence never ties it again."""
        pair = self.pair(face_id, voice_id)
        self.ties.pop(pair, None)
        if pair not in self.never:
            self.never.add(pair)
            self._store.add_cannot_link(*pair)
        self.evaluate(force=True)

    # --- the tie rule ---------------------------------------------------------------------------

    def evaluate(self, force: bool = False) -> None:
        """Re-decides the ties made from evidence, then the characters (when anything changed)."""
        if not (force or self._evidence.changed):
            return
        self._evidence.changed = False
        cfg = self._cfg
        by_hand = {n for pair, manual in self.ties.items() if manual for n in pair}
        strong = {
            pair: (c.wins - c.losses, c.wins)
            for pair, c in self._evidence.counts.items()
            if c.wins >= cfg.character_tie_min_turns and pair not in self.never and self._confirmed(pair)
        }
        auto = set()
        for (f, v), score in strong.items():
            c = self._evidence.counts[(f, v)]
            need = cfg.character_untie_agreement if self.ties.get((f, v)) is False else cfg.character_tie_min_agreement
            if c.agreement < need or c.mean_sync < cfg.character_min_sync or f in by_hand or v in by_hand:
                continue
            rivals = [s for (f2, v2), s in strong.items() if (f2 == f) != (v2 == v)]
            if all(s < score for s in rivals):
                auto.add((f, v))
        ties = {pair: True for pair, manual in self.ties.items() if manual} | dict.fromkeys(auto, False)
        if ties != self.ties:
            for pair in auto - self.ties.keys():
                log.info("tied face %d and voice %d: %s", *pair, self._evidence.counts[pair])
            for pair in [p for p, m in self.ties.items() if not m and p not in auto]:
                log.info("untied face %d and voice %d: %s", *pair, self._evidence.counts.get(pair))
            self.ties = ties
        if self.ties != self._saved:
            self._store.set_equivalences((f, v, m) for (f, v), m in self.ties.items())
            self._saved = dict(self.ties)
        self.regroup()

    def _confirmed(self, pair: tuple[int, int]) -> bool:
        return all(n in self._nodes.rows and self._nodes[n].status == NodeStatus.CONFIRMED for n in pair)

    # --- nodes change ---------------------------------------------------------------------------

    def merged(self, keep: int, other: int) -> None:
        """Ties, unlinks and the character id of `other` move to `keep`; the older character id stays."""
        def moved(pair: tuple[int, int]) -> tuple[int, int]:
            return (keep if pair[0] == other else pair[0], keep if pair[1] == other else pair[1])

        ties: dict[tuple[int, int], bool] = {}
        for pair, manual in self.ties.items():
            ties[moved(pair)] = ties.get(moved(pair), False) or manual
        self.ties = ties
        self.never = {moved(p) for p in self.never}
        if other in self._ids:
            cid = self._ids.pop(other)
            self._ids[keep] = min(cid, self._ids.get(keep, cid))
        self._evidence.merged(keep, other)
        self.evaluate(force=True)

    def forget(self, node_ids: set[int]) -> None:
        """A forgotten person's ties, unlinks and character go without a character.updated: node.forgotten
        tells it, and that event would carry their label. Their rows are already deleted."""
        self.ties = {p: m for p, m in self.ties.items() if not node_ids & set(p)}
        self.never = {p for p in self.never if not node_ids & set(p)}
        self._saved = dict(self.ties)
        self._evidence.changed = True
        self._ids = {n: c for n, c in self._ids.items() if n not in node_ids}
        self._ids, self._by_id = self._group()
        self._store.set_character_ids(self._ids)

    def split(self) -> None:
        """Tracks moved between nodes: the evidence is counted again and the ties re-decided."""
        self._evidence.rebuild()
        self.evaluate(force=True)

    # --- characters -----------------------------------------------------------------------------

    def _group(self) -> tuple[dict[int, int], dict[int, Character]]:
        """Node -> character id and the characters, from the live ties; ids as stable as they can be."""
        live = [p for p in self.ties if all(self._nodes.live(n) == n for n in p)]
        groups = connected_groups(live)
        old = self._ids
        ids: dict[int, int] = {}
        taken: set[int] = set()
        # the group holding the oldest id claims it first; a group left without one gets a new id
        for group in sorted(groups, key=lambda g: (min((old[n] for n in g if n in old), default=1 << 62), g)):
            free = sorted({old[n] for n in group if n in old} - taken)
            cid = free[0] if free else self._new_id()
            taken.add(cid)
            ids.update(dict.fromkeys(group, cid))
        by_id = {}
        for group in groups:
            cid = ids[group[0]]
            faces = tuple(n for n in group if self._nodes.kind(n) == NodeKind.FACE)
            voices = tuple(n for n in group if self._nodes.kind(n) == NodeKind.VOICE)
            label = next((self._nodes[n].label for n in faces + voices if self._nodes[n].label), None)
            by_id[cid] = Character(cid, faces, voices, label)
        return ids, by_id

    def _new_id(self) -> int:
        self._next_id += 1
        self._store.set_meta(NEXT_ID_KEY, str(self._next_id))
        return self._next_id - 1

    def regroup(self) -> None:
        """Characters after a change of ties, nodes or labels; character.updated for each that changed."""
        ids, by_id = self._group()
        if ids != self._ids:
            self._store.set_character_ids(ids)
        self._ids = ids
        for cid in sorted(by_id.keys() | self._by_id.keys()):
            now, before = by_id.get(cid), self._by_id.get(cid)
            if now != before:
                self._events.character_updated(cid, now.faces if now else (), now.voices if now else (), now.label if now else None)
        self._by_id = by_id

    def of_node(self, node_id: int) -> Character | None:
        cid = self._ids.get(self._nodes.resolve(node_id))
        return None if cid is None else self._by_id.get(cid)

    def get(self, character_id: int) -> Character | None:
        return self._by_id.get(character_id)

    def all(self) -> list[Character]:
        return [self._by_id[c] for c in sorted(self._by_id)]
