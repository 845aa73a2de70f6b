"""The embedded broker (amqtt): with no --mqtt url, a robot on this machine can subscribe with no set-up.

It shares the streamer's event loop, so it is loopback only and anonymous, and nothing blocking may
run on that loop.
"""

from __future__ import annotations

import errno
import logging
import socket

from amqtt.broker import Broker
from amqtt.errors import BrokerError

from ..errors import PublishError
from .client import EMBEDDED_HOST

log = logging.getLogger(__name__)


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
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None
