"""Who is who, read from the file: nodes after merges, characters, labels, and tags in text.

A snapshot of the small tables (nodes' kind, status, label and merge target; character ids) taken
inside one read transaction, so everything one answer says comes from one moment of the file.
A person is a character (all its face and voice nodes) or a lone face or voice node.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..database import Database
from ..errors import NodeNotFound
from .records import Person

TAG = re.compile(r"<(face|voice|character)_(\d+)>")
NAME_TAG = re.compile(r"^<?(face|voice|character)_(\d+)>?$")
IDENTITY = ("face", "voice")
LIVE = ("provisional", "confirmed")


class PersonNotFound(NodeNotFound):
    """No person answers to a name, tag or id (HTTP 404)."""


@dataclass(frozen=True)
class _Node:
    kind: str
    status: str
    label: str | None
    merged_into: int | None


class People:
    def __init__(self, db: Database) -> None:
        self._nodes = {
            r[0]: _Node(r[1], r[2], r[3], r[4])
            for r in db.execute("SELECT id, kind, status, label, merged_into FROM nodes WHERE kind IN ('face', 'voice')")
        }
        self._character_of: dict[int, int] = dict(db.execute("SELECT node_id, character_id FROM characters").fetchall())
        self._members: dict[int, list[int]] = {}
        for node, cid in sorted(self._character_of.items()):
            self._members.setdefault(cid, []).append(node)
        self._cache: dict[int, Person | None] = {}
        self._merged_from: dict[int, list[int]] | None = None

    def resolve(self, node_id: int) -> int:
        """The node an id names now (merges followed)."""
        seen = 0
        while (node := self._nodes.get(node_id)) is not None and node.merged_into is not None and seen < 64:
            node_id, seen = node.merged_into, seen + 1
        return node_id

    def aliases(self, node_id: int) -> list[int]:
        """A live node and every node merged into it, directly or not."""
        return [node_id, *self._merges().get(node_id, [])]

    def merged(self) -> list[int]:
        """Every node of a merge: the live ones and those merged into them."""
        return sorted({n for live, gone in self._merges().items() for n in (live, *gone)})

    def _merges(self) -> dict[int, list[int]]:
        if self._merged_from is None:
            self._merged_from = {}
            for n, node in self._nodes.items():
                if node.merged_into is not None:
                    self._merged_from.setdefault(self.resolve(n), []).append(n)
        return self._merged_from

    def of_node(self, node_id: int) -> Person | None:
        """The person a face or voice node belongs to now; None for an expired or unknown node."""
        node_id = self.resolve(node_id)
        if node_id not in self._cache:
            self._cache[node_id] = self._person(node_id)
        return self._cache[node_id]

    def _person(self, node_id: int) -> Person | None:
        node = self._nodes.get(node_id)
        if node is None or node.status not in LIVE:
            return None
        cid = self._character_of.get(node_id)
        return self.character(cid) if cid is not None else self._person_of([node_id], None)

    def character(self, character_id: int) -> Person | None:
        members = self._members.get(character_id)
        return None if not members else self._person_of(members, character_id)

    def _person_of(self, members: list[int], character_id: int | None) -> Person:
        faces = tuple(n for n in members if self._nodes[n].kind == "face")
        voices = tuple(n for n in members if self._nodes[n].kind == "voice")
        label = next((self._nodes[n].label for n in faces + voices if self._nodes[n].label), None)
        tag = f"<character_{character_id}>" if character_id is not None else f"<{self._nodes[members[0]].kind}_{members[0]}>"
        return Person(tag, label, character_id, faces, voices)

    def find(self, name: str) -> list[Person]:
        """The people a name stands for: a tag (<face_3>, face_3, <character_2>), a node id, or a label
        (case-insensitive; people with the same label are all returned). PersonNotFound if none."""
        text = name.strip()
        found: list[Person | None]
        if (m := NAME_TAG.match(text)) is not None:
            kind, number = m.group(1), int(m.group(2))
            if kind == "character":
                found = [self.character(number)]
            else:
                live = self.resolve(number)
                found = [self.of_node(number) if self._nodes.get(live, _Node("", "", None, None)).kind == kind else None]
        elif text.isdigit():
            found = [self.of_node(int(text))]
        else:
            wanted = text.casefold()
            found = [self.of_node(n) for n, node in self._nodes.items() if node.label and node.label.casefold() == wanted]
        people = list({p.tag: p for p in found if p is not None}.values())
        if not people:
            raise PersonNotFound(f"nobody called {name!r} in the memory (try a label, a tag like <face_3>, or a node id)")
        return people

    def one(self, name: str) -> Person:
        """find, merged into one person when a label names several (they carry one name, so the user
        means one person)."""
        people = self.find(name)
        if len(people) == 1:
            return people[0]
        return Person(people[0].tag, people[0].label, None, tuple(n for p in people for n in p.faces),
                      tuple(n for p in people for n in p.voices))  # fmt: skip

    def translate(self, text: str) -> str:
        """Tags with a label become 'Label (<tag>)' (M3-Agent's translate, tag kept); others stay."""

        def one(m: re.Match[str]) -> str:
            kind, number = m.group(1), int(m.group(2))
            person = self.character(number) if kind == "character" else self.of_node(number)
            return f"{person.label} ({m.group(0)})" if person is not None and person.label else m.group(0)

        return TAG.sub(one, text)

    def live_nodes(self, node_ids: list[int]) -> tuple[int, ...]:
        """Live identity nodes among ids, after merges, in order, once each."""
        out = [self.resolve(n) for n in node_ids]
        return tuple(dict.fromkeys(n for n in out if (node := self._nodes.get(n)) is not None and node.status in LIVE))

    def people_of(self, node_ids: list[int]) -> tuple[Person, ...]:
        people = [self.of_node(n) for n in node_ids]
        return tuple({p.tag: p for p in people if p is not None}.values())
