"""Track ids unique across every worker and restart: blocks handed out by one counter in a
JetStream key-value bucket, taken by compare-and-set on its revision."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Iterator

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

log = logging.getLogger(__name__)

KEY = "next_track_id"
BLOCK = 10_000  # ids per reservation: a busy camera starts a few new tracks a second
REFILL_BELOW = BLOCK // 4  # the next block is fetched in the background once this few are left


async def reserve(kv: KeyValue, size: int, at_least: int = 1) -> range:
    """The next `size` ids, starting at `at_least` or later."""
    while True:
        try:
            entry = await kv.get(KEY)
        except KeyNotFoundError:
            try:
                await kv.create(KEY, str(max(at_least, 1) + size).encode())
                return range(max(at_least, 1), max(at_least, 1) + size)
            except KeyWrongLastSequenceError:
                continue  # someone else made it first
        assert entry.value is not None and entry.revision is not None
        start = max(int(entry.value), at_least)
        try:
            await kv.update(KEY, str(start + size).encode(), last=entry.revision)
            return range(start, start + size)
        except KeyWrongLastSequenceError:
            continue  # another worker took a block meanwhile: read again


class TrackIds(Iterator[int]):
    """`next()` from the event loop or any thread (the voice path); blocks come from the bucket."""

    def __init__(self, kv: KeyValue, loop: asyncio.AbstractEventLoop) -> None:
        self._kv = kv
        self._loop = loop
        self._lock = threading.Lock()
        self._blocks: deque[range] = deque()
        self._current: Iterator[int] = iter(())
        self._left = 0
        self._refilling = False

    async def start(self) -> TrackIds:
        self._blocks.append(await reserve(self._kv, BLOCK))
        return self

    def __next__(self) -> int:
        with self._lock:
            if self._left == 0:
                if not self._blocks:
                    raise RuntimeError("no track ids left: the bus did not answer in time")
                block = self._blocks.popleft()
                self._current, self._left = iter(block), len(block)
            self._left -= 1
            if self._left < REFILL_BELOW and not self._blocks and not self._refilling:
                self._refilling = True
                asyncio.run_coroutine_threadsafe(self._refill(), self._loop)
            return next(self._current)

    async def _refill(self) -> None:
        while True:
            try:
                block = await reserve(self._kv, BLOCK)
                break
            except Exception as e:  # the bus is away: try again, the current block still lasts a while
                log.warning("bus: reserving track ids failed (%s); retrying", e)
                await asyncio.sleep(1.0)
        with self._lock:
            self._blocks.append(block)
            self._refilling = False
