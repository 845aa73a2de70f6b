"""Which scripted person each stored face belongs to, so tests assert on identities, not counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from memory import Memory
from memory.config import MemoryConfig
from streamer.demo.compose import Appearance, Cut

MARGIN_SECONDS = 0.6  # people slide in and out over half a second: skip those frames
NEAR_PX = 70  # a face this close to a person's scripted position is theirs


def person_at(script: Sequence[Appearance | Cut], t: float, cx: float, width: int = 640) -> int | None:
    """The person the script put at time t near horizontal position cx, or None while unclear."""
    for item in script:
        if isinstance(item, Cut) and item.start + 0.3 <= t < item.end - 0.1:
            return item.person
        if (
            isinstance(item, Appearance)
            and item.start + MARGIN_SECONDS <= t < item.end - MARGIN_SECONDS
            and abs(cx - item.x * width) < NEAR_PX
        ):
            return item.person
    return None


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
