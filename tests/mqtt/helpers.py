"""Test kit for the MQTT feed: a real Memory on its own thread that makes events through its API,
a subscriber that records (and schema-checks) everything it receives, and a publisher context."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import aiomqtt
import cv2
import jsonschema
import numpy as np

from memory import Memory
from memory.config import MemoryConfig
from memory.records import TrackEvidence
from streamer.config import MqttConfig
from streamer.publish import MemoryThreadFeed, Publisher
from streamer.publish.payloads import SCHEMA_DIR

P = ParamSpec("P")
R = TypeVar("R")

PREFIX = "test"
WAIT = 30.0  # seconds a wait may take before the test fails with what it did receive
DIM = 512
CROP_JPEG = bytes(cv2.imencode(".jpg", np.full((112, 112, 3), 128, np.uint8))[1])


def schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())


SCHEMAS = {name: schema(name) for name in ("event", "node", "character", "stream_status", "faces")}


def schema_for(relative_topic: str) -> str | None:
    parts = relative_topic.split("/")
    if parts[:2] == ["memory", "events"]:
        return "event"
    if parts[:2] == ["memory", "nodes"]:
        return "node"
    if parts[:2] == ["memory", "characters"]:
        return "character"
    if parts[0] == "streams" and len(parts) == 3:
        return {"status": "stream_status", "faces": "faces"}[parts[2]]
    return None


def check_payload(relative_topic: str, payload: bytes) -> None:
    """Raises if a JSON payload does not match its schema (empty = a cleared retained topic)."""
    name = schema_for(relative_topic)
    if name is not None and payload:
        jsonschema.validate(json.loads(payload), SCHEMAS[name])


@dataclass(frozen=True)
class Received:
    topic: str  # without the prefix
    payload: bytes
    retain: bool

    def json(self) -> Any:
        return json.loads(self.payload)


def events(messages: list[Received]) -> list[dict[str, Any]]:
    return [m.json() for m in messages if m.topic == "memory/events"]


def seqs(messages: list[Received]) -> list[int]:
    return [e["seq"] for e in events(messages)]


@dataclass
class Subscriber:
    """Subscribes to `<prefix>/#` (QoS 1) and keeps every message; reconnects after a broker restart.
    With `session` set it keeps a persistent session, so the broker queues messages while it is away."""

    port: int
    username: str | None = None
    password: str | None = None
    tls_ca: Path | None = None
    session: str | None = None
    messages: list[Received] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _client: aiomqtt.Client | None = None
    _connected: asyncio.Event = field(default_factory=asyncio.Event)
    _probe: str = field(default_factory=lambda: f"probe/{uuid.uuid4().hex}")

    def _new_client(self) -> aiomqtt.Client:
        return aiomqtt.Client(
            "127.0.0.1",
            self.port,
            username=self.username,
            password=self.password,
            identifier=self.session,
            clean_session=self.session is None,
            tls_context=ssl.create_default_context(cafile=str(self.tls_ca)) if self.tls_ca else None,
        )

    async def run(self) -> None:
        while True:
            try:
                async with self._new_client() as client:
                    await client.subscribe([(f"{PREFIX}/#", 1), (self._probe, 1)])
                    self._client = client
                    self._connected.set()
                    async for m in client.messages:
                        await self._keep(m)
            except aiomqtt.MqttError:
                self._connected.clear()
                self._client = None
                await asyncio.sleep(0.05)

    async def _keep(self, m: aiomqtt.Message) -> None:
        topic = str(m.topic)
        payload = m.payload if isinstance(m.payload, bytes) else b""
        rel = topic[len(PREFIX) + 1 :] if topic.startswith(PREFIX + "/") else topic
        check_payload(rel, payload)
        async with self._changed:
            self.messages.append(Received(rel, payload, m.retain))
            self._changed.notify_all()

    async def wait_for(self, what: str, done: Callable[[list[Received]], bool]) -> list[Received]:
        async def until() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: done(self.messages))

        try:
            await asyncio.wait_for(until(), WAIT)
        except TimeoutError:
            got = [(m.topic, m.payload[:60]) for m in self.messages[-20:]]
            raise AssertionError(f"waited {WAIT} s for {what}; last received: {got}") from None
        return self.messages

    async def barrier(self) -> list[Received]:
        """Everything the broker sent before now has arrived: it delivers to one client in order."""
        await asyncio.wait_for(self._connected.wait(), WAIT)
        assert self._client is not None
        marker = uuid.uuid4().hex.encode()
        await self._client.publish(self._probe, marker, qos=1)
        await self.wait_for("the probe echo", lambda ms: any(m.payload == marker for m in ms))
        return [m for m in self.messages if m.topic != self._probe]

    def retained(self, topic: str) -> list[Received]:
        return [m for m in self.messages if m.topic == topic and m.retain]


@contextlib.asynccontextmanager
async def subscribed(port: int, **kw: Any) -> AsyncIterator[Subscriber]:
    sub = Subscriber(port, **kw)
    task = asyncio.create_task(sub.run())
    try:
        await asyncio.wait_for(sub._connected.wait(), WAIT)
        yield sub
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class MemoryRig:
    """A real Memory owned by one worker thread, as the streamer runs it, plus helpers that make
    memory events through its public API."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memory")
        self.memory: Memory = self.executor.submit(Memory, MemoryConfig(db=str(db))).result()
        self.rng = np.random.default_rng(7)

    def feed(self, *, crops: bool = False) -> MemoryThreadFeed:
        return MemoryThreadFeed(self.memory, self.executor, crops=crops)

    async def call(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.get_running_loop().run_in_executor(self.executor, lambda: fn(*args, **kwargs))

    def _new_face(self, stream: str) -> int:
        """A new identity: one track of good faces in a direction no other face has."""
        m = self.memory
        track = m.new_track_id()
        base = self.rng.standard_normal(DIM).astype(np.float32)
        emb = base + 0.05 * self.rng.standard_normal((4, DIM)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        now = time.time()
        m.identify_track(
            TrackEvidence(
                stream=stream,
                track_id=track,
                t=0.0,
                wall_time=now,
                embeddings=emb,
                qualities=np.full(4, 25.0, np.float32),
                det_scores=np.full(4, 0.9, np.float32),
                good=np.ones(4, bool),
                crop_jpeg=CROP_JPEG,
                crop_quality=25.0,
            )
        )
        m.flush()
        node = m.node_of_track(track)
        assert node is not None
        return int(node)

    async def new_face(self, stream: str = "door") -> int:
        return await self.call(self._new_face, stream)

    async def label(self, node: int, name: str) -> None:
        await self.call(self._label, node, name)

    def _label(self, node: int, name: str) -> None:
        self.memory.label(node, name)
        self.memory.flush()

    async def merge(self, keep: int, other: int) -> None:
        await self.call(self._merge, keep, other)

    def _merge(self, keep: int, other: int) -> None:
        self.memory.merge(keep, other)
        self.memory.flush()

    async def last_seq(self) -> int:
        written = await self.call(self.memory.events_after, 0, 1 << 30)
        return written[-1].seq if written else 0

    async def crop_b64(self, node: int) -> str:
        return base64.b64encode((await self.call(self.memory.crops, node))[0]).decode()

    def close(self) -> None:
        self.executor.submit(self.memory.close).result()
        self.executor.shutdown()


def mqtt_config(url: str | None, **kw: Any) -> MqttConfig:
    return MqttConfig(url=url, prefix=PREFIX, **kw)


@contextlib.asynccontextmanager
async def publishing(cfg: MqttConfig, rig: MemoryRig, *, crops: bool = False) -> AsyncIterator[Publisher]:
    pub = Publisher(cfg, rig.feed(crops=crops))
    await pub.start()
    try:
        yield pub
    finally:
        await pub.stop()
