"""Consume a source in a background task and wait for what it does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from streamer.records import Frame
from streamer.sources import Source, SourceState


class Watcher:
    """Collects a source's frames and state changes (via on_state) while a test waits on them."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.frames: list[Frame] = []
        self.states: list[SourceState] = []
        source.on_state = lambda _name, state: self.states.append(state)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Watcher:
        self._task = asyncio.create_task(self._consume())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> float:
        """Close the source; returns how long close() took."""
        t0 = time.monotonic()
        await self.source.close()
        took = time.monotonic() - t0
        assert self._task is not None
        await asyncio.wait_for(self._task, 5)
        return took

    async def until(self, what: str, check: Callable[[], bool], timeout: float) -> float:
        """Wait until check() holds; returns the seconds it took, fails naming `what` after timeout."""
        t0 = time.monotonic()
        while not check():
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"{what} not within {timeout}s; states {self.states}, stats {self.source.stats}")
            assert self._task is not None and not self._task.done(), "the frame iterator ended"
            await asyncio.sleep(0.02)
        return time.monotonic() - t0

    async def until_state(self, state: SourceState, timeout: float) -> float:
        return await self.until(f"state {state.value}", lambda: self.source.stats.state == state, timeout)

    async def until_frames(self, n: int, timeout: float) -> float:
        return await self.until(f"{n} frames", lambda: len(self.frames) >= n, timeout)

    async def _consume(self) -> None:
        async for frame in self.source.frames():
            self.frames.append(frame)
