"""Where the broker is and how to connect to it: URL parsing, TLS, credentials, one-line errors, and
the publisher's link to a broker of the user's (`--mqtt`) through an aiomqtt client.

The password never leaves this module in text form: `BrokerAddress.__str__` omits it, and every log
line and error message names the broker through that. aiomqtt (with paho) loads only once a client
is made: a run that publishes into its embedded broker needs none (~15 ms of a start).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from ..config import MqttConfig
from ..errors import ConfigError
from .link import BATCH, Message

if TYPE_CHECKING:
    from .mqtt_client import aiomqtt

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
EMBEDDED_HOST = "127.0.0.1"
IN_FLIGHT = 100  # QoS 1 messages on the wire before paho queues the rest; sized for one event batch
LOGIN_REFUSED = {4, 5, 134, 135}  # 3.1.1 and 5 reason codes: bad user name or password, not authorised


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, for messages about a URL that failed to parse."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def broker_address(cfg: MqttConfig) -> BrokerAddress:
    """The broker of `cfg.url`, or the embedded one when there is no URL. Credentials in the URL win
    over `cfg.username` / `cfg.password` (which may come from the config file or the environment)."""
    if cfg.url is None:
        return BrokerAddress(EMBEDDED_HOST, cfg.embedded_port, username=cfg.username, password=cfg.password)
    try:
        parts = urlsplit(cfg.url)
        port = parts.port
    except ValueError as e:
        raise ConfigError(f"invalid mqtt.url {redact_url(cfg.url)}: {e}") from None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        raise ConfigError(f"invalid mqtt.url {redact_url(cfg.url)}: expected mqtt://[user:pass@]host[:port] or mqtts://...")
    tls = parts.scheme == "mqtts"
    if not tls and (cfg.ca_file or cfg.cert_file or cfg.key_file):
        raise ConfigError("mqtt.ca_file, cert_file and key_file need an mqtts:// url")
    username = unquote(parts.username) if parts.username else cfg.username
    password = unquote(parts.password) if parts.password is not None else cfg.password
    return BrokerAddress(parts.hostname, port or DEFAULT_PORTS[parts.scheme], tls, username, password)


def _tls_context(cfg: MqttConfig) -> ssl.SSLContext:
    """Verifies the broker against `ca_file` (else the system CAs); presents a client certificate if given."""
    try:
        ctx = ssl.create_default_context(cafile=cfg.ca_file)
        if cfg.cert_file:
            ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"cannot load the MQTT TLS files (mqtt.ca_file, cert_file, key_file): {e}") from None
    return ctx


@dataclass(frozen=True)
class Connection:
    """Everything needed to open a client, checked once so that reconnects cannot fail on config.
    The client speaks MQTT 3.1.1, which MQTT 5 brokers speak too."""

    address: BrokerAddress
    keepalive: int
    tls: ssl.SSLContext | None = None

    @classmethod
    def from_config(cls, cfg: MqttConfig) -> Connection:
        address = broker_address(cfg)
        return cls(address, cfg.keepalive, _tls_context(cfg) if address.tls else None)

    def client(self, will: aiomqtt.Will | None = None) -> aiomqtt.Client:
        from .mqtt_client import aiomqtt  # noqa: PLC0415 (see the module's docstring)

        client = aiomqtt.Client(
            self.address.host,
            self.address.port,
            username=self.address.username,
            password=self.address.password,
            will=will,
            keepalive=self.keepalive,
            tls_context=self.tls,
            max_inflight_messages=IN_FLIGHT,
            # Without it a QoS 1 message may wait ~40 ms for Nagle + delayed ACK on the broker side.
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )
        client.pending_calls_threshold = 3 * IN_FLIGHT  # batches publish concurrently on purpose
        return client


class Backoff:
    """Reconnect delays: doubling from `first` up to `most`; `reset()` once connected."""

    def __init__(self, first: float = 0.5, most: float = 10.0) -> None:
        self.first, self.most = first, most
        self.delay = first

    def reset(self) -> None:
        self.delay = self.first

    def next(self) -> float:
        delay, self.delay = self.delay, min(2 * self.delay, self.most)
        return delay


def describe_failure(exc: aiomqtt.MqttError, address: BrokerAddress) -> tuple[str, bool]:
    """(one-line message, fatal): a refused login or a failed TLS check will not fix itself by retrying."""
    from .mqtt_client import aiomqtt  # noqa: PLC0415

    if isinstance(exc, aiomqtt.MqttCodeError) and _code(exc.rc) in LOGIN_REFUSED:
        how = "the user name and password (in the --mqtt url, mqtt.username / mqtt.password, or STREAMER_MQTT__PASSWORD)"
        return f"MQTT broker {address} refused the login ({exc.rc}): check {how}", True
    cause = exc.__cause__ or exc.__context__  # aiomqtt re-raises socket errors as MqttError(str(e))
    if isinstance(cause, ssl.SSLError):
        reason = getattr(cause, "verify_message", None) or cause.reason or str(cause)
        return f"TLS with MQTT broker {address} failed ({reason}): check mqtt.ca_file and the broker's certificate", True
    return f"cannot reach MQTT broker {address}: {exc}", False


def _code(rc: object) -> int | None:
    value = getattr(rc, "value", rc)
    return value if isinstance(value, int) else None


class ClientLink:
    """The publisher's link through one connected client (see link.Link)."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self._client = client

    async def publish_all(self, messages: list[Message]) -> list[BaseException | None]:
        """BATCH at a time concurrently (paho keeps them in order on the wire; one awaited publish per
        message would cost a round trip each); QoS 1 returns at the broker's PUBACK."""
        results: list[BaseException | None] = []
        for i in range(0, len(messages), BATCH):
            chunk = messages[i : i + BATCH]
            done = await asyncio.gather(
                *(self._client.publish(t, p, qos=q, retain=r) for t, p, q, r in chunk), return_exceptions=True
            )
            results += [r if isinstance(r, BaseException) else None for r in done]
        return results

    async def closed(self) -> None:
        """Raises MqttError when the connection drops (we subscribe to nothing, so no messages come)."""
        async for _ in self._client.messages:
            pass


class ClientConnector:
    """Connects to the broker of `connection`, leaving `will` (topic, payload; retained, QoS 1) for
    the broker to publish should the connection die without a goodbye."""

    def __init__(self, connection: Connection, will: tuple[str, bytes]) -> None:
        self._connection = connection
        self._will = will

    def __str__(self) -> str:
        return str(self._connection.address)

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[ClientLink]:
        from .mqtt_client import aiomqtt  # noqa: PLC0415

        async with self._connection.client(aiomqtt.Will(*self._will, qos=1, retain=True)) as client:
            yield ClientLink(client)

    def failure(self, exc: Exception) -> tuple[str, bool] | None:
        from .mqtt_client import aiomqtt  # noqa: PLC0415

        return describe_failure(exc, self._connection.address) if isinstance(exc, aiomqtt.MqttError) else None
