"""Pick frames by timestamp, not by index, so the analysed rate holds for any input rate or VFR."""

from __future__ import annotations

# Timestamps that land a hair before their due time (float rounding of PTS x time base) still count.
DUE_TOLERANCE_SECONDS = 1e-4


class TimestampSampler:
    """Takes a frame whenever its time reaches the next due time, then moves the due time one period on.

    Keeping due times on a grid gives the exact target rate on average (a 7 fps input at 5 fps
    target yields 5 frames a second, not every other frame). After a gap or a slow input the grid
    restarts at the frame taken, so a jump never releases a burst; a jump back restarts it too.
    """

    def __init__(self, fps: float) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.period = 1.0 / fps
        self._due: float | None = None
        self._last: float | None = None

    def take(self, t: float) -> bool:
        if self._last is not None and t < self._last:
            self._due = None  # time went back: start over from here
        self._last = t
        if self._due is not None and t < self._due - DUE_TOLERANCE_SECONDS:
            return False
        self._due = t + self.period if self._due is None else self._due + self.period
        if self._due <= t:
            self._due = t + self.period
        return True

    def may_take(self, t: float, step: float) -> bool:
        """Whether `take` may accept a frame at `t` in frames `step` seconds apart: one within a step
        after any due time to come (a decoder hands frames over a few late, so not only the next)."""
        if self._due is None or (self._last is not None and t < self._last):
            return True
        ahead = t - self._due + DUE_TOLERANCE_SECONDS
        return ahead >= 0 and ahead % self.period < step
