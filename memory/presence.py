"""Who is in which stream now.

A node is present in a stream from its first observation there until it has not been seen (or
heard) for its kind's absence time, in that stream's time (the latest t any face or speech turn of
the stream carried) or in the memory's clock (a stream that stops producing faces and speech does
not advance its own time). Voices get a longer absence time than faces: people pause between turns.
Whether a presence has been announced is kept here; the memory decides when to announce.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Presence:
    first_t: float  # stream time of the first sighting: when the person appeared
    last_t: float
    last_clock: float
    absent_after: float  # seconds of absence that end it
    announced: bool = False


class PresenceBoard:
    def __init__(self) -> None:
        self._present: dict[tuple[str, int], Presence] = {}
        self._streams_of: dict[int, dict[str, None]] = {}  # node -> its streams in _present, in insertion order
        self._stream_t: dict[str, float] = {}

    def _add(self, stream: str, node_id: int, p: Presence) -> Presence:
        self._present[(stream, node_id)] = p
        self._streams_of.setdefault(node_id, {})[stream] = None
        return p

    def _remove(self, stream: str, node_id: int) -> None:
        del self._present[(stream, node_id)]
        streams = self._streams_of[node_id]
        del streams[stream]
        if not streams:
            del self._streams_of[node_id]

    def seen(self, stream: str, node_id: int, first_t: float, last_t: float, now: float, absent_after: float) -> Presence:
        """The node was seen (or heard) in the stream from stream time first_t to last_t."""
        self.advance(stream, last_t)
        p = self._present.get((stream, node_id))
        if p is None:
            p = self._add(stream, node_id, Presence(first_t, last_t, now, absent_after))
        else:
            p.first_t, p.last_t, p.last_clock = min(p.first_t, first_t), max(p.last_t, last_t), now
        return p

    def advance(self, stream: str, t: float) -> None:
        self._stream_t[stream] = max(self._stream_t.get(stream, t), t)

    def of_node(self, node_id: int) -> list[tuple[str, Presence]]:
        return [(s, self._present[(s, node_id)]) for s in self._streams_of.get(node_id, ())]

    def gone(self, now: float) -> list[tuple[str, int, Presence]]:
        """Removes and returns the presences that have ended."""
        ended = [
            (s, n, p)
            for (s, n), p in self._present.items()
            if self._stream_t[s] - p.last_t > p.absent_after or now - p.last_clock > p.absent_after
        ]
        for s, n, _ in ended:
            self._remove(s, n)
        return ended

    def end_stream(self, stream: str) -> list[tuple[int, Presence]]:
        ended = [(n, p) for (s, n), p in self._present.items() if s == stream]
        for n, _ in ended:
            self._remove(stream, n)
        self._stream_t.pop(stream, None)
        return ended

    def drop(self, node_id: int) -> list[tuple[str, Presence]]:
        """Forgets a node (it expired or merged away); returns what it had."""
        had = self.of_node(node_id)
        for s, _ in had:
            self._remove(s, node_id)
        return had

    def put(self, stream: str, node_id: int, presence: Presence) -> Presence:
        """Adds a presence carried over from another node (merge), combined with any existing one."""
        mine = self._present.get((stream, node_id))
        if mine is None:
            return self._add(stream, node_id, presence)
        mine.first_t = min(mine.first_t, presence.first_t)
        mine.last_t, mine.last_clock = max(mine.last_t, presence.last_t), max(mine.last_clock, presence.last_clock)
        mine.announced = mine.announced or presence.announced
        return mine
