"""Which scripted person each stored face belongs to, so tests assert on identities, not counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from memory import Memory
from memory.config import MemoryConfig
from streamer.demo.compose import Appearance, Cut, person_at


def faces_by_person(
    cfg: MemoryConfig, script: Sequence[Appearance | Cut], width: int = 640
) -> tuple[dict[int, Counter[int | None]], float]:
    """Per scripted person, how often each node was given to their faces; and the share of all
    stored faces that carry a node."""
    seen: dict[int, Counter[int | None]] = {}
    total = with_node = 0
    with Memory(cfg) as memory:
        for face in memory.export_faces():
            total += 1
            with_node += face["node"] is not None
            x1, _, x2, _ = face["bbox"]
            person = person_at(script, face["t"], (x1 + x2) / 2, width)
            if person is not None:
                seen.setdefault(person, Counter())[face["node"]] += 1
    return seen, with_node / max(1, total)
