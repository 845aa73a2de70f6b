"""What the publisher sends through: the embedded broker in this process (broker.EmbeddedBroker), or a
client connected to the user's broker (client.ClientConnector)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

BATCH = 100  # events per round trip to the memory thread and per concurrent publish burst

Message = tuple[str, bytes, int, bool]  # topic, payload, qos, retain


class Link(Protocol):
    async def publish_all(self, messages: list[Message]) -> list[BaseException | None]:
        """Publishes in order and returns once the broker has taken each message (for QoS 1), with
        one error or None per message."""
        ...

    async def closed(self) -> None:
        """Returns or raises only when the link is lost."""
        ...


class Connector(Protocol):
    def open(self) -> AbstractAsyncContextManager[Link]:
        """The link for one session; entering raises what `failure` describes when it cannot be had."""
        ...

    def failure(self, exc: Exception) -> tuple[str, bool] | None:
        """(one-line message, fatal) for an error that lost or refused the link; None for any other."""
        ...
