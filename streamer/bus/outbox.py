"""A worker's messages on their way to JetStream: in order, each acknowledged before the next is
sent, held in a bounded buffer while the bus is away.

One at a time keeps each source's messages in order even across failures (a resend after a lost
acknowledgement is dropped by the server's duplicate window, by its Nats-Msg-Id). When the buffer
is full, new face frames are dropped and counted; speech and stream ends are always kept."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass

from nats.js import JetStreamContext

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_SECONDS = 2.0
RETRY_SECONDS = 0.5
WARN_EVERY_SECONDS = 10.0


@dataclass
class OutboxStats:
    published: int = 0
    overflow: int = 0  # frames dropped because the buffer was full
    retries: int = 0
    bytes: int = 0


@dataclass
class _Item:
    subject: str
    data: bytes
    msg_id: str
    droppable: bool


class Outbox:
    def __init__(self, js: JetStreamContext, limit: int) -> None:
        self._js = js
        self._limit = limit
        self._items: deque[_Item] = deque()
        self._ready = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self._last_warning = 0.0
        self.stats = OutboxStats()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, subject: str, data: bytes, msg_id: str, droppable: bool) -> bool:
        """From the event loop; False if the message was dropped (buffer full)."""
        if droppable and len(self._items) >= self._limit:
            self.stats.overflow += 1
            now = time.monotonic()
            if now - self._last_warning >= WARN_EVERY_SECONDS:
                self._last_warning = now
                log.warning("bus: buffer full (%d messages); %d frames dropped so far", self._limit, self.stats.overflow)
            return False
        self._items.append(_Item(subject, data, msg_id, droppable))
        self._empty.clear()
        self._ready.set()
        return True

    async def drained(self) -> None:
        """Until every message put so far is acknowledged by the bus."""
        await self._empty.wait()

    async def run(self) -> None:
        while True:
            await self._ready.wait()
            while self._items:
                item = self._items[0]
                try:
                    await self._js.publish(
                        item.subject, item.data, timeout=PUBLISH_TIMEOUT_SECONDS, headers={"Nats-Msg-Id": item.msg_id}
                    )
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # the bus is away or restarting: keep the message and try again
                    self.stats.retries += 1
                    log.debug("bus: publish failed (%s); %d waiting", e, len(self._items))
                    await asyncio.sleep(RETRY_SECONDS)
                    continue
                self._items.popleft()
                self.stats.published += 1
                self.stats.bytes += len(item.data)
            self._ready.clear()
            self._empty.set()
