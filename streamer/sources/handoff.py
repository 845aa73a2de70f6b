"""A bounded hand-over of items from a worker thread to the asyncio loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Handoff(Generic[T]):
    """The queue lives on the loop; the worker either waits for room (`put_wait`, back-pressure)
    or never waits and drops the oldest item (`put_latest`, for live feeds)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int, on_drop: Callable[[], None]) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[T] = asyncio.Queue(maxsize)
        self._on_drop = on_drop
        self._lock = threading.Lock()
        self._closed = False
        self._pending: concurrent.futures.Future[None] | None = None

    async def get(self) -> T:
        return await self._queue.get()

    def put_latest(self, item: T) -> None:
        """From the worker: queue without waiting, dropping the oldest item when full."""
        try:
            self._loop.call_soon_threadsafe(self._put_latest, item)
        except RuntimeError:  # the loop is gone: nobody is listening any more
            pass

    def put_wait(self, item: T) -> bool:
        """From the worker: wait until there is room; False when the hand-off was closed meanwhile."""
        with self._lock:
            if self._closed:
                return False
            try:
                self._pending = asyncio.run_coroutine_threadsafe(self._queue.put(item), self._loop)
            except RuntimeError:
                return False
            pending = self._pending
        try:
            pending.result()
            return True
        except concurrent.futures.CancelledError:
            return False

    def close(self, last: T) -> None:
        """On the loop: release a waiting worker and queue `last` so a waiting reader wakes up."""
        with self._lock:
            self._closed = True
            if self._pending is not None:
                self._pending.cancel()
        if self._queue.full():
            self._queue.get_nowait()  # the reader is stopping: not a drop worth counting
        self._queue.put_nowait(last)

    def _put_latest(self, item: T) -> None:
        if self._closed:
            return
        if self._queue.full():
            self._queue.get_nowait()
            self._on_drop()
        self._queue.put_nowait(item)
