"""Stream time for frames and audio: seconds from the stream start, by PTS, never going back."""

from __future__ import annotations

# A live source's PTS running this far ahead of the wall clock is a discontinuity, not elapsed time.
MAX_LIVE_JUMP_SECONDS = 5.0


class StreamClock:
    """Maps each decoded frame's PTS (seconds, or None) to a stream time `t`, and audio PTS alike.

    Every connection is a segment: its first timed item is anchored where the previous segment
    left off plus the wall-clock gap, so `t` stays monotonic across reconnects. Frames without
    PTS, and PTS that go back, advance by one nominal frame step instead.

    Within one container, video and audio PTS share a timeline, so audio maps through the same
    segment offset (`shared_pts`): a frame at 2.0 s and the audio at 2.0 s agree whichever came
    first. WebRTC tracks start at unrelated random RTP timestamps; there the audio gets its own
    offset, anchored at the stream time it arrives.
    """

    def __init__(self, *, live: bool, shared_pts: bool = True) -> None:
        self._live = live
        self._shared = shared_pts
        self._offset: float | None = None  # t = pts + offset within the current segment
        self._audio_offset: float | None = None  # only when audio PTS are on a timeline of their own
        self._origin: float | None = None  # earliest start PTS of the segment's streams, if known
        self._last_t: float | None = None  # last video frame
        self._last_wall = 0.0
        self._reached: float | None = None  # latest t of either kind, where a next segment resumes
        self._reached_wall = 0.0
        self._segment_start = True  # no video frame yet in this segment

    def new_segment(self, origin: float | None = None) -> None:
        """A new connection. `origin` (seconds) is the earliest start PTS among its streams when the
        container declares one: the segment's first item is placed relative to it, so a stream that
        starts later than the other keeps its lead."""
        self._offset = self._audio_offset = None
        self._origin = origin
        self._segment_start = True

    def t(self, pts: float | None, wall: float, step: float) -> float:
        """Stream time of a video frame."""
        if self._segment_start or self._last_t is None:
            expected = self._resume(wall, step)
        else:
            expected = self._last_t + step
        self._segment_start = False
        if pts is None:
            t = expected
        else:
            if self._offset is None:
                self._offset = self._anchor(pts, expected)
            t = pts + self._offset
            if self._last_t is not None and (t <= self._last_t or self._jumped(t, wall)):
                self._offset = expected - pts
                t = expected
        self._last_t, self._last_wall = t, wall
        self._reach(t, wall)
        return t

    def peek(self, pts: float) -> float | None:
        """The stream time a video frame at `pts` will get, once its segment's first frame has set the
        offset; None before. Without side effects: for deciding before decoding."""
        if self._segment_start or self._offset is None:
            return None
        return pts + self._offset

    def audio_t(self, pts: float, wall: float) -> float:
        """Stream time of the audio sample at `pts` seconds."""
        if self._shared:
            if self._offset is None:
                self._offset = self._anchor(pts, self._resume(wall, 0.0))
            t = pts + self._offset
        else:
            if self._audio_offset is None:
                self._audio_offset = self._now(wall) - pts
            t = pts + self._audio_offset
        self._reach(t, wall)
        return t

    def _anchor(self, pts: float, start: float) -> float:
        origin = pts if self._origin is None else min(self._origin, pts)
        return start - origin

    def _resume(self, wall: float, step: float) -> float:
        """Where a segment starts: where the last one left off, plus the wall-clock gap."""
        if self._reached is None:
            return 0.0
        return self._reached + max(wall - self._reached_wall, step)

    def _now(self, wall: float) -> float:
        """The video's stream time at `wall`: its last frame plus the wall time since."""
        if self._segment_start or self._last_t is None:
            return self._resume(wall, 0.0)
        return self._last_t + max(0.0, wall - self._last_wall)

    def _reach(self, t: float, wall: float) -> None:
        if self._reached is None or t > self._reached:
            self._reached, self._reached_wall = t, wall

    def _jumped(self, t: float, wall: float) -> bool:
        assert self._last_t is not None
        return self._live and (t - self._last_t) - (wall - self._last_wall) > MAX_LIVE_JUMP_SECONDS
