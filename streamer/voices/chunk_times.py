"""When each recent audio chunk arrived, so that a speech turn gets the wall time its audio was heard."""

from __future__ import annotations

import bisect
import math
import time
from collections import deque

CHUNK_TIMES_KEPT = 20_000  # at most this many chunks' times, however short the chunks
# Stream time kept behind the latest chunk beyond the longest VAD segment: a turn starts inside the
# segment it was cut from, and a segment starts at most max_segment_seconds (plus its padding) back.
CHUNK_TIMES_SLACK_SECONDS = 60.0


class ChunkTimes:
    """(stream time, wall time) of a stream's recent audio chunks, to date a turn by the chunk it
    starts in, as a face by the frame it is in (a file decodes faster than real time, so the latest
    chunk won't do).

    Only the stretch a turn can still start in is kept (`forget_before`): a count alone kept 20,000
    chunks, 21 minutes of a camera's AAC at ~16 chunks a second (~2.2 MB), filling for as long."""

    def __init__(self, most: int = CHUNK_TIMES_KEPT) -> None:
        self._times: deque[tuple[float, float]] = deque(maxlen=most)

    def add(self, t: float, wall: float) -> None:
        self._times.append((t, wall))

    def forget_before(self, t: float) -> None:
        """Drops the chunks that end before stream time `t`; the one holding `t` stays."""
        times = self._times
        while len(times) > 1 and times[1][0] <= t:
            times.popleft()

    def span(self) -> float:
        """Stream seconds from the oldest chunk kept to the latest."""
        return self._times[-1][0] - self._times[0][0] if self._times else 0.0

    def wall_at(self, t: float) -> float:
        """Unix time at stream time `t`, from the chunk that holds it (or the oldest one kept)."""
        times = self._times
        k = bisect.bisect_right(times, (t, math.inf)) - 1
        chunk_t, wall = times[max(k, 0)] if times else (t, time.time())
        return wall + (t - chunk_t)
