"""The NATS connection, the JetStream stream of observations and the key-value buckets.

Everything on the bus is named under one prefix (default `streamer`): observations on the stream
`<PREFIX>_OBS` (subjects `<prefix>.obs.<stream>`), nodes sent back to workers on
`<prefix>.nodes.<worker>`, and the buckets `<prefix>_ids` (track id blocks), `<prefix>_leases`
(who owns each camera) and `<prefix>_workers` (who is alive).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext, api
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from ..errors import ConfigError

log = logging.getLogger(__name__)

STREAM_MAX_AGE_SECONDS = 24 * 3600.0  # a memory service down longer than this loses the oldest observations
DUPLICATE_WINDOW_SECONDS = 120.0  # a worker's resend after a lost acknowledgement is dropped by the server
ENTRIES_TIMEOUT_SECONDS = 5.0
# the server removes a bucket read's consumer this long after the read: nats-py's default, 5 minutes,
# keeps 300 per worker and bucket at a read a second, and nats-server refuses a stream's 1001st
READ_CONSUMER_IDLE_SECONDS = 2.0
_TOKEN = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class BusConfig:
    url: str  # nats://[user:pass@]host:port, tls://... for TLS; several separated by commas
    token: str | None = None
    ca: str | None = None  # TLS: CA file to verify the server with
    cert: str | None = None  # TLS: client certificate and key, for servers that verify clients
    key: str | None = None
    prefix: str = "streamer"
    stream_max_bytes: int = 8 << 30
    buffer: int = 20_000  # messages a worker holds while the bus is away; more are dropped and counted
    lease_ttl: float = 5.0  # seconds a dead worker's cameras wait before another worker takes them

    @property
    def stream(self) -> str:
        return f"{self.prefix.upper()}_OBS"

    def obs_subject(self, stream: str) -> str:
        return f"{self.prefix}.obs.{subject_token(stream)}"

    def nodes_subject(self, worker: str) -> str:
        return f"{self.prefix}.nodes.{worker}"


def subject_token(name: str) -> str:
    """A stream name as one subject token (the message itself carries the exact name)."""
    return _TOKEN.sub("_", name) or "_"


def check_bus(cfg: BusConfig) -> None:
    """The bus carries face and voice embeddings: off this machine it needs credentials or TLS."""
    for server in cfg.url.split(","):
        parts = urlsplit(server.strip())
        if parts.scheme not in ("nats", "tls"):
            raise ConfigError(f"bus URL {server!r}: expected nats://HOST:PORT or tls://HOST:PORT")
        if parts.hostname is None:
            raise ConfigError(f"bus URL {server!r} names no host")
        local = parts.hostname == "localhost" or _is_loopback(parts.hostname)
        if not local and parts.username is None and cfg.token is None and parts.scheme != "tls" and cfg.ca is None:
            raise ConfigError(
                f"bus {parts.hostname}: the bus carries embeddings, so off this machine it needs a user and password "
                "(nats://USER:PASS@HOST:PORT), a token (--bus-token or $STREAMER_BUS_TOKEN) or TLS (tls://, --bus-ca)"
            )
    for path in (cfg.ca, cfg.cert, cfg.key):
        if path is not None and not os.path.isfile(path):
            raise ConfigError(f"bus TLS file not found: {path}")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _tls(cfg: BusConfig) -> ssl.SSLContext | None:
    if cfg.ca is None and cfg.cert is None and not cfg.url.startswith("tls://"):
        return None
    context = ssl.create_default_context(cafile=cfg.ca)
    if cfg.cert is not None:
        context.load_cert_chain(cfg.cert, cfg.key)
    return context


async def connect(cfg: BusConfig, name: str) -> Client:
    """Connected, with reconnects forever: a bus that goes away is waited for, never given up on."""
    options: dict[str, Any] = {
        "name": name,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5,
        "allow_reconnect": True,
        "connect_timeout": 5,
    }
    if cfg.token is not None:
        options["token"] = cfg.token
    tls = _tls(cfg)
    if tls is not None:
        options["tls"] = tls

    async def error(e: Exception) -> None:
        log.warning("bus: %s", e or type(e).__name__)

    async def disconnected() -> None:  # also on a deliberate close: errors are reported by error()
        log.info("bus: disconnected")

    async def reconnected() -> None:
        log.info("bus: reconnected")

    try:
        return await nats.connect(
            [s.strip() for s in cfg.url.split(",")], error_cb=error, disconnected_cb=disconnected,
            reconnected_cb=reconnected, **options,
        )  # fmt: skip
    except Exception as e:
        raise ConfigError(f"cannot reach the bus at {cfg.url}: {type(e).__name__}: {e}") from None


async def ensure_stream(js: JetStreamContext, cfg: BusConfig) -> None:
    config = api.StreamConfig(
        name=cfg.stream,
        subjects=[f"{cfg.prefix}.obs.>"],
        storage=api.StorageType.FILE,
        retention=api.RetentionPolicy.LIMITS,
        max_age=STREAM_MAX_AGE_SECONDS,
        max_bytes=cfg.stream_max_bytes,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        discard=api.DiscardPolicy.OLD,
    )
    try:
        await js.stream_info(cfg.stream)
    except NotFoundError:
        await js.add_stream(config)
        log.info("bus: created stream %s", cfg.stream)


async def bucket(js: JetStreamContext, name: str, ttl: float | None = None) -> KeyValue:
    try:
        return await js.key_value(name)
    except BucketNotFoundError:
        return await js.create_key_value(api.KeyValueConfig(bucket=name, history=1, ttl=ttl, storage=api.StorageType.FILE))


async def entries(kv: KeyValue, timeout: float = ENTRIES_TIMEOUT_SECONDS) -> dict[str, KeyValue.Entry]:
    """Every live key with its value and revision, in one pass over the bucket; a bus that goes away
    meanwhile raises nats.errors.TimeoutError rather than leaving the caller waiting.

    nats-py's watcher can mark the end of the current values before the first of them has arrived
    (it asks the server what is left to send after the server sent it all), which reads as an empty
    bucket: a pass that got nothing asks the bucket whether it is empty, and if not reads on to the
    value the server sent last. Deletes are read too, so that every value the bucket holds arrives."""
    watcher = await kv.watchall(inactive_threshold=READ_CONSUMER_IDLE_SECONDS)
    out: dict[str, KeyValue.Entry] = {}
    try:
        arrived = 0
        while (e := await watcher.updates(timeout)) is not None:  # None: the end of the current values
            arrived += 1
            _keep(out, e)
        if arrived == 0 and (await kv.status()).values > 0:
            while True:
                e = await watcher.updates(timeout)
                _keep(out, e)
                if e.delta == 0:  # nothing left to send when the server sent it
                    break
    finally:
        await watcher.stop()
    return out


def _keep(out: dict[str, KeyValue.Entry], e: KeyValue.Entry) -> None:
    if e.operation in (KV_DEL, KV_PURGE):
        out.pop(e.key, None)
    else:
        out[e.key] = e
