"""Where the broker is and how to connect to it: URL parsing, TLS, credentials, and one-line errors.

The password never leaves this module in text form: `BrokerAddress.__str__` omits it, and every log
line and error message names the broker through that.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from ..config import MqttConfig
from ..errors import ConfigError
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
