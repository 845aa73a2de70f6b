"""Memory-graph pieces that need no storage: per-stream clips, episodic text, characters.

Clips follow M3-Agent: a stream is cut into intervals of `interval_seconds` of stream time, clip
number floor(t / interval_seconds). Without a language model, a closed clip's episodic memories are
templated sentences (see memory.episodes).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class OpenClip:
    stream: str
    index: int
    first_t: float
    last_t: float
    first_wall: float
    last_wall: float
    track_ids: set[int] = field(default_factory=set)


class Clips:
    """The open clip of every stream."""

    def __init__(self, interval_seconds: float) -> None:
        self.interval = interval_seconds
        self._open: dict[str, OpenClip] = {}

    def observe(self, stream: str, t: float, wall: float, track_id: int) -> OpenClip | None:
        """Adds a face or a speech turn's end to its stream's clip; returns the clip it closed when t is beyond that clip's end."""
        index = int(t // self.interval)
        clip = self._open.get(stream)
        closed = None
        if clip is not None and index > clip.index:
            closed = self._open.pop(stream)
            clip = None
        if clip is None:
            clip = self._open[stream] = OpenClip(stream, index, t, t, wall, wall)
        # a late face or turn (index below the open clip's) counts in the open clip rather than reopening one
        clip.first_t, clip.last_t = min(clip.first_t, t), max(clip.last_t, t)
        clip.first_wall, clip.last_wall = min(clip.first_wall, wall), max(clip.last_wall, wall)
        clip.track_ids.add(track_id)
        return closed

    def close(self, stream: str) -> OpenClip | None:
        return self._open.pop(stream, None)


def clock_time(wall: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(wall))


def episodic_text(seen: list[str], heard: list[str], stream: str, start_wall: float, end_wall: float) -> str:
    """'<face_3> and <face_7> were seen in camera 'door' from 10:02:30 to 10:02:41', with the tags
    of faces seen and of voices heard ('<face_3> was seen and <voice_9> was heard in camera ...')."""
    parts = [f"{names(tags)} {'was' if len(tags) == 1 else 'were'} {verb}" for tags, verb in ((seen, "seen"), (heard, "heard")) if tags]
    return f"{' and '.join(parts)} in camera '{stream}' from {clock_time(start_wall)} to {clock_time(end_wall)}"


def names(tags: list[str]) -> str:
    return tags[0] if len(tags) == 1 else ", ".join(tags[:-1]) + " and " + tags[-1]


def connected_groups(links: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Connected groups of linked ids, each sorted, by union-find (M3-Agent's refresh_equivalences
    builds characters from face-voice equivalences this way)."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in links:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for x in parent:
        groups.setdefault(find(x), []).append(x)
    return sorted(sorted(g) for g in groups.values())
