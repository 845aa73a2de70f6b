"""A bounded hand-over of items from a worker thread to the asyncio loop."""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Handoff(Generic[T]):
    """The worker either waits for room (`put_wait`, back-pressure) or never waits and drops the
    oldest item (`put_latest`, for live feeds); the loop takes items with `get`.

    The items wait in a deque under a lock, so a worker hands one over without a round trip
    through the loop, and wakes the loop only when `get` is waiting for it (a file's reader, ahead
    of the analysis, hardly ever does)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int, on_drop: Callable[[], None]) -> None:
        self._loop = loop
        self._maxsize = maxsize
        self._on_drop = on_drop
        self._items: deque[T] = deque()
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)  # a waiting worker is told when an item is taken
        self._closed = False
        self._getter: asyncio.Future[None] | None = None  # the loop waits for an item

    async def get(self) -> T:
        while True:
            with self._lock:
                if self._items:
                    item = self._items.popleft()
                    self._room.notify()
                    return item
                getter = self._getter = self._loop.create_future()
            try:
                await getter
            finally:
                with self._lock:
                    if self._getter is getter:
                        self._getter = None

    def put_latest(self, item: T) -> None:
        """From the worker: queue without waiting, dropping the oldest item when full."""
        with self._lock:
            if self._closed:
                return
            dropped = len(self._items) >= self._maxsize
            if dropped:
                self._items.popleft()
            self._items.append(item)
            getter, self._getter = self._getter, None
        if dropped:
            self._on_drop()
        self._wake(getter)

    def put_wait(self, item: T) -> bool:
        """From the worker: wait until there is room; False when the hand-off was closed meanwhile."""
        with self._lock:
            while len(self._items) >= self._maxsize and not self._closed:
                self._room.wait()
            if self._closed:
                return False
            self._items.append(item)
            getter, self._getter = self._getter, None
        self._wake(getter)
        return True

    def close(self, last: T) -> None:
        """On the loop: release a waiting worker and queue `last` so a waiting reader wakes up."""
        with self._lock:
            self._closed = True
            self._room.notify_all()
            if len(self._items) >= self._maxsize:
                self._items.popleft()  # the reader is stopping: not a drop worth counting
            self._items.append(last)
            getter, self._getter = self._getter, None
        if getter is not None:
            _release(getter)

    def _wake(self, getter: asyncio.Future[None] | None) -> None:
        """From the worker: wake the `get` that waited (the first item after it began to wait does)."""
        if getter is None:
            return
        try:
            self._loop.call_soon_threadsafe(_release, getter)
        except RuntimeError:  # the loop is gone: nobody is listening any more
            pass


def _release(getter: asyncio.Future[None]) -> None:
    if not getter.done():
        getter.set_result(None)
