"""Who is in which stream now.

A node is present in a stream from its first observation there until no face of it has been seen
for `absent_after_seconds` of that stream's time (the latest t any face of the stream carried) or
of the memory's clock (a stream that stops producing faces does not advance its own time).
Whether a presence has been announced is kept here; the memory decides when to announce.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Presence:
    first_t: float  # stream time of the first sighting: when the person appeared
    last_t: float
    last_clock: float
    announced: bool = False


class PresenceBoard:
    def __init__(self, absent_after_seconds: float) -> None:
        self.absent_after = absent_after_seconds
        self._present: dict[tuple[str, int], Presence] = {}
        self._stream_t: dict[str, float] = {}

    def seen(self, stream: str, node_id: int, t: float, now: float) -> Presence:
        self._stream_t[stream] = max(self._stream_t.get(stream, t), t)
        p = self._present.get((stream, node_id))
        if p is None:
            p = self._present[(stream, node_id)] = Presence(t, t, now)
        else:
            p.first_t, p.last_t, p.last_clock = min(p.first_t, t), max(p.last_t, t), now
        return p

    def advance(self, stream: str, t: float) -> None:
        self._stream_t[stream] = max(self._stream_t.get(stream, t), t)

    def of_node(self, node_id: int) -> list[tuple[str, Presence]]:
        return [(s, p) for (s, n), p in self._present.items() if n == node_id]

    def gone(self, now: float) -> list[tuple[str, int, Presence]]:
        """Removes and returns the presences that have ended."""
        ended = [
            (s, n, p)
            for (s, n), p in self._present.items()
            if self._stream_t[s] - p.last_t > self.absent_after or now - p.last_clock > self.absent_after
        ]
        for s, n, _ in ended:
            del self._present[(s, n)]
        return ended

    def end_stream(self, stream: str) -> list[tuple[int, Presence]]:
        ended = [(n, p) for (s, n), p in self._present.items() if s == stream]
        for n, _ in ended:
            del self._present[(stream, n)]
        self._stream_t.pop(stream, None)
        return ended

    def drop(self, node_id: int) -> list[tuple[str, Presence]]:
        """Forgets a node (it expired or merged away); returns what it had."""
        had = self.of_node(node_id)
        for s, _ in had:
            del self._present[(s, node_id)]
        return had

    def put(self, stream: str, node_id: int, presence: Presence) -> Presence:
        """Adds a presence carried over from another node (merge), combined with any existing one."""
        mine = self._present.get((stream, node_id))
        if mine is None:
            self._present[(stream, node_id)] = presence
            return presence
        mine.first_t = min(mine.first_t, presence.first_t)
        mine.last_t, mine.last_clock = max(mine.last_t, presence.last_t), max(mine.last_clock, presence.last_clock)
        mine.announced = mine.announced or presence.announced
        return mine
