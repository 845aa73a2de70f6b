"""Recent event rates and reconnect delays for a source."""

from __future__ import annotations

from collections import deque


class RateMeter:
    """Events per second over the last `window` seconds (monotonic times)."""

    def __init__(self, window: float = 2.0) -> None:
        self.window = window
        self._times: deque[float] = deque(maxlen=512)

    def reset(self) -> None:
        self._times.clear()

    def tick(self, now: float) -> float:
        self._times.append(now)
        while now - self._times[0] > self.window:
            self._times.popleft()
        span = now - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0


class Backoff:
    """Exponential reconnect delays: initial, doubling up to max; reset after a good frame."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial, self.maximum = initial, max(initial, maximum)
        self._next = initial

    def reset(self) -> None:
        self._next = self.initial

    def next(self) -> float:
        delay, self._next = self._next, min(self._next * 2, self.maximum)
        return delay
