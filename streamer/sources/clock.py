"""Stream time for frames: seconds from the first frame, by PTS, never going back."""

from __future__ import annotations

# A live source's PTS running this far ahead of the wall clock is a discontinuity, not elapsed time.
MAX_LIVE_JUMP_SECONDS = 5.0


class StreamClock:
    """Maps each decoded frame's PTS (seconds, or None) to a stream time `t`.

    Every connection is a segment: its first timed frame is anchored where the previous segment
    left off plus the wall-clock gap, so `t` stays monotonic across reconnects. Frames without
    PTS, and PTS that go back, advance by one nominal frame step instead.
    """

    def __init__(self, *, live: bool) -> None:
        self._live = live
        self._offset: float | None = None  # t = pts + offset within the current segment
        self._last_t: float | None = None
        self._last_wall = 0.0
        self._segment_start = True

    def new_segment(self) -> None:
        self._offset = None
        self._segment_start = True

    def t(self, pts: float | None, wall: float, step: float) -> float:
        expected = self._expected(wall, step)
        self._segment_start = False
        if pts is None:
            t = expected
        else:
            if self._offset is None:
                self._offset = expected - pts
            t = pts + self._offset
            if self._last_t is not None and (t <= self._last_t or self._jumped(t, wall)):
                self._offset = expected - pts
                t = expected
        self._last_t, self._last_wall = t, wall
        return t

    def _expected(self, wall: float, step: float) -> float:
        if self._last_t is None:
            return 0.0
        if self._segment_start:
            return self._last_t + max(wall - self._last_wall, step)
        return self._last_t + step

    def _jumped(self, t: float, wall: float) -> bool:
        assert self._last_t is not None
        return self._live and (t - self._last_t) - (wall - self._last_wall) > MAX_LIVE_JUMP_SECONDS
