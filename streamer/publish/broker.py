"""The embedded broker (amqtt): with no --mqtt url, a robot on this machine can subscribe with no set-up.

It shares the streamer's event loop, so it is loopback only and anonymous, and nothing blocking may
run on that loop. The publisher hands it messages in process (it is its own link.Link): what a
client's PUBLISH becomes in the broker once read and parsed, without the client's encoding, the
socket and the parsing (~0.19 -> ~0.02 ms of CPU a message).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import time
from contextlib import AbstractAsyncContextManager

from amqtt.broker import Broker
from amqtt.errors import BrokerError

from ..errors import PublishError
from .client import EMBEDDED_HOST
from .link import Message

log = logging.getLogger(__name__)

DRAIN_SECONDS = 2.0  # at stop, the most time given to subscribers to take what was published
DRAIN_POLL_SECONDS = 0.002
SHUTDOWN_SECONDS = 3.0  # then amqtt is left behind: its close of a session can wait for ever (below)


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the broker will; TIME_WAIT is not "in use"
        try:
            s.bind((EMBEDDED_HOST, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return True
            raise
    return False


class EmbeddedBroker:
    def __init__(self, port: int) -> None:
        self.port = port
        self._broker: Broker | None = None

    def __str__(self) -> str:
        return f"the embedded broker (mqtt://{EMBEDDED_HOST}:{self.port})"

    async def start(self) -> None:
        # Checked first: amqtt would log a traceback before raising.
        if _port_in_use(self.port):
            raise PublishError(
                f"port {self.port} is in use: pass --mqtt mqtt://host:port to use that broker, "
                "--no-mqtt to publish nothing, or set mqtt.embedded_port to another port"
            )
        broker = Broker(
            {
                "listeners": {"default": {"type": "tcp", "bind": f"{EMBEDDED_HOST}:{self.port}"}},
                "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
            }
        )
        try:
            await broker.start()
        except BrokerError as e:
            raise PublishError(f"the embedded MQTT broker did not start: {e}") from None
        self._broker = broker
        log.info(
            "no --mqtt url: embedded MQTT broker listening on mqtt://%s:%d (pass --mqtt to use another broker)",
            EMBEDDED_HOST,
            self.port,
        )

    async def stop(self) -> None:
        """Once what was published reached the subscribers (within DRAIN_SECONDS), the broker closes
        (within SHUTDOWN_SECONDS: a client sending just as amqtt closes its session can hang it)."""
        if self._broker is not None:
            await self._drained(self._broker)
            try:
                await asyncio.wait_for(self._broker.shutdown(), SHUTDOWN_SECONDS)
            except TimeoutError:
                log.warning("the embedded MQTT broker did not close in %.0f s; left behind", SHUTDOWN_SECONDS)
            self._broker = None

    @staticmethod
    async def _drained(broker: Broker) -> None:
        """Until the broker has handed every queued message to its subscribers and each QoS 1 delivery
        was acknowledged. Shutting down before that drops the feed's last messages (the `offline`
        status among them), and a subscriber's acknowledgement arriving just as the broker closes its
        session can leave amqtt waiting for ever on Python 3.11 (the cancellation of the session's
        reader is lost in asyncio.wait_for). amqtt 0.12 (pinned) keeps its delivery queue and tasks
        private; `tests/mqtt/test_embedded.py` checks that a subscriber gets everything."""
        queue, deliveries = broker._broadcast_queue, broker._tasks_queue
        deadline = time.monotonic() + DRAIN_SECONDS
        while (not queue.empty() or not all(t.done() for t in deliveries)) and time.monotonic() < deadline:
            await asyncio.sleep(DRAIN_POLL_SECONDS)

    # ---- link.Connector and link.Link, in process

    def open(self) -> AbstractAsyncContextManager[EmbeddedBroker]:
        return contextlib.nullcontext(self)

    def failure(self, exc: Exception) -> None:
        return None  # nothing to lose or refuse in process

    async def publish_all(self, messages: list[Message]) -> list[BaseException | None]:
        """Each message is taken as the broker takes a client's: queued for delivery to the matching
        subscriptions (at their QoS, in order), then kept as the topic's retained message if
        `retain` (an empty payload clears it)."""
        broker = self._broker
        assert broker is not None, "started"
        for topic, payload, qos, retain in messages:
            await broker.internal_message_broadcast(topic, payload)
            if retain:
                await broker.retain_message(None, topic, payload, qos)
        return [None] * len(messages)

    async def closed(self) -> None:
        await asyncio.get_running_loop().create_future()  # never lost: it ends with this process
