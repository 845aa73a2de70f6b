"""The MQTT feed: memory events (durable, in order), identity and character state (retained), live stream topics.

All network work happens in the publisher's own task, so a slow or dead broker never stalls the
caller: `notify`, `publish_stream_status` and `publish_faces` return at once, from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from memory.records import MemoryEvent

from ..config import MqttConfig
from ..errors import PublishError
from .broker import EmbeddedBroker
from .client import Backoff, ClientConnector, Connection
from .feed import MemoryFeed, NodeState
from .homeassistant import HomeAssistant
from .link import BATCH, Connector, Link, Message
from .live import FaceRateLimit, LiveBuffer
from .payloads import (
    encode,
    event_character_ids,
    event_dissolved_ids,
    event_node_ids,
    event_removed_ids,
    faces_payload,
    stream_status_payload,
)
from .topics import Topics

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # events are also looked for without notify(), e.g. written by another caller
STABLE_SECONDS = 10.0  # a session this long resets the reconnect backoff
STOP_SECONDS = 5.0  # at stop, time to drain the outbox and say offline before giving up on the broker
ONLINE, OFFLINE = b"online", b"offline"


class Publisher:
    """`await start()` ... `await stop()` (once each) on the event loop that runs the pipeline.

    With `cfg.enabled` False every method is a no-op; with `cfg.url` None an embedded broker runs on
    127.0.0.1:`cfg.embedded_port` and messages go into it in process. `start` raises PublishError
    for what retrying cannot fix (login refused, TLS verification failed, embedded port taken) and
    ConfigError for a bad url or TLS file; an unreachable broker is retried with backoff while the
    streamer works on.
    """

    def __init__(self, cfg: MqttConfig, feed: MemoryFeed) -> None:
        self.feed = feed
        self.topics = Topics(cfg.prefix)
        self._broker = EmbeddedBroker(cfg.embedded_port) if cfg.enabled and cfg.url is None else None
        self._connector: Connector | None = self._broker
        if cfg.enabled and cfg.url is not None:
            self._connector = ClientConnector(Connection.from_config(cfg), (self.topics.status, OFFLINE))
        self._live = LiveBuffer()
        self._ha = HomeAssistant(self.topics, cfg.homeassistant_prefix) if cfg.enabled and cfg.homeassistant else None
        self._faces_limit = FaceRateLimit(cfg.faces_max_hz)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._task: asyncio.Task[None] | None = None
        self._first_attempt: asyncio.Future[None] | None = None
        self._wake_events = asyncio.Event()
        self._wake_live = asyncio.Event()
        self._stopping = asyncio.Event()
        self._cursor = 0  # seq of the last event acknowledged by the broker (as stored by mark_published)
        self.connected = False

    # ---- lifecycle

    async def start(self) -> None:
        if self._connector is None:
            log.info("MQTT publishing is off")
            return
        if self._broker is not None:
            await self._broker.start()
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._first_attempt = self._loop.create_future()
        self._task = asyncio.create_task(self._run(), name="mqtt-publisher")
        try:
            await self._first_attempt
        except PublishError:
            await self._task
            self._task = None
            await self.stop()
            raise

    async def stop(self) -> None:
        """Publishes what the outbox holds and the latest stream statuses, then `offline` (retained),
        and disconnects; gives up after STOP_SECONDS (the rest goes out on the next start). An
        embedded broker then has its own bounded drain and shutdown (`EmbeddedBroker.stop`)."""
        self._stopping.set()
        self._wake_events.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, STOP_SECONDS)
            except TimeoutError:
                log.warning("MQTT broker did not take the offline status in %.0f s", STOP_SECONDS)
            self._task = None
        self._loop = None
        if self._broker is not None:
            await self._broker.stop()

    # ---- called by the pipeline (never block, any thread)

    def notify(self) -> None:
        """New memory events were written: publish them now rather than at the next poll."""
        self._soon(self._wake_events.set)

    def publish_stream_status(self, stream: str, status: dict[str, Any]) -> None:
        """Retained `<prefix>/streams/<stream>/status`; the latest call wins."""
        payload = encode(stream_status_payload(stream, status, time.time()))
        self._soon(self._put_status, stream, payload)

    def publish_faces(self, stream: str, faces: list[dict[str, Any]], wall_time: float | None = None) -> None:
        """`<prefix>/streams/<stream>/faces`, QoS 0; each track at most mqtt.faces_max_hz; dropped
        while disconnected. A face is a dict with at least track, bbox and node (see faces.schema.json)."""
        self._soon(self._put_faces, stream, faces, time.time() if wall_time is None else wall_time)

    def _soon(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        else:
            loop.call_soon_threadsafe(fn, *args)

    def _put_status(self, stream: str, payload: bytes) -> None:
        self._live.put_status(stream, payload)
        self._wake_live.set()

    def _put_faces(self, stream: str, faces: list[dict[str, Any]], wall_time: float) -> None:
        if not self.connected:
            return
        due = self._faces_limit.select(stream, faces, time.monotonic())
        if due:
            self._live.put_faces(stream, encode(faces_payload(stream, due, wall_time)))
            self._wake_live.set()

    # ---- connection loop

    def _first_attempt_done(self, error: PublishError | None = None) -> None:
        assert self._first_attempt is not None
        if not self._first_attempt.done():
            if error is None:
                self._first_attempt.set_result(None)
            else:
                self._first_attempt.set_exception(error)

    async def _run(self) -> None:
        connector = self._connector
        assert connector is not None
        backoff, outage_logged = Backoff(), False
        while not self._stopping.is_set():
            started: float | None = None
            try:
                async with connector.open() as link:
                    self._first_attempt_done()
                    started = time.monotonic()
                    log.info("MQTT connected to %s, publishing under %s/", connector, self.topics.prefix)
                    await self._session(link)
                    return
            except Exception as exc:
                failure = connector.failure(exc)
                if failure is None:
                    log.exception("MQTT publisher failed; restarting")
                else:
                    message, fatal = failure
                    if fatal and self._first_attempt is not None and not self._first_attempt.done():
                        self._first_attempt_done(PublishError(message))
                        return
                    if started is not None:
                        message = f"lost the connection to MQTT broker {connector} ({exc})"
                        if time.monotonic() - started >= STABLE_SECONDS:
                            backoff.reset()
                            outage_logged = False
                        else:  # e.g. mosquitto drops a client right after a publish its ACL denies
                            message += f"; if it has an ACL, check that it allows publishing to {self.topics.everything}"
                    # One warning per outage; the retries are debug noise.
                    (log.debug if outage_logged else log.warning)("%s; retrying", message)
                    outage_logged = True
            finally:
                self.connected = False
                self._live.take_faces()  # stale by the time we are back
            self._first_attempt_done()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), backoff.next())

    async def _session(self, link: Link) -> None:
        """Runs until stop (then returns) or until the link is lost (it raises)."""
        self.connected = True  # before `online` goes out, so faces given after a subscriber saw it are kept
        self._raise_first(await link.publish_all([(self.topics.status, ONLINE, 1, True)]))
        self._cursor = await self.feed.published_seq()
        self._live.resend_all_status()  # a restarted broker may have lost its retained messages
        self._wake_live.set()
        workers = [
            asyncio.create_task(self._pump_events(link), name="mqtt-events"),
            asyncio.create_task(self._send_live(link), name="mqtt-live"),
            asyncio.create_task(link.closed(), name="mqtt-watch"),
        ]
        try:
            done, _ = await asyncio.wait(workers, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        for task in done:
            if (exc := task.exception()) is not None:
                raise exc
        # The pump returned: stopping, and the outbox is drained. The latest statuses, then goodbye.
        self._raise_first(await link.publish_all(self._status_messages()))
        self._raise_first(await link.publish_all([(self.topics.status, OFFLINE, 1, True)]))

    # ---- live topics

    def _status_messages(self) -> list[Message]:
        statuses = self._live.take_status()
        cameras = [m for s, _ in statuses for m in self._ha.camera(s)] if self._ha is not None else []
        return [(self.topics.stream_status(s), p, 1, True) for s, p in statuses] + cameras

    async def _send_live(self, link: Link) -> None:
        while True:
            await self._wake_live.wait()
            self._wake_live.clear()
            faces = [(self.topics.faces(s), p, 0, False) for s, p in self._live.take_faces()]
            self._raise_first(await link.publish_all(self._status_messages() + faces))

    # ---- memory events and identities

    async def _pump_events(self, link: Link) -> None:
        states = await self.feed.identity_states()
        characters = await self.feed.character_states(None)
        self._raise_first(await link.publish_all(self._node_messages(states) + self._character_messages(characters)))
        if self._ha is not None:
            self._raise_first(await link.publish_all(self._ha.connected(await self.feed.people(None))))
        while True:
            self._wake_events.clear()  # before reading, so a notify() during the read is not lost
            while events := await self.feed.events_after(self._cursor, BATCH):
                await self._publish_events(link, events)
            if self._stopping.is_set():
                return  # only between batches, so that no acknowledged batch misses mark_published
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_events.wait(), POLL_SECONDS)

    def _node_messages(self, states: dict[int, NodeState | None]) -> list[Message]:
        # An empty retained payload deletes the retained message: no ghosts of merged or expired nodes.
        return [(self.topics.node(i), b"" if s is None else encode(s), 1, True) for i, s in states.items()]

    def _character_messages(self, states: dict[int, NodeState | None]) -> list[Message]:
        return [(self.topics.character(i), b"" if s is None else encode(s), 1, True) for i, s in states.items()]

    async def _publish_events(self, link: Link, events: list[MemoryEvent]) -> None:
        """Publishes a batch, then the retained state of the nodes it touched, and moves the cursor
        past the longest prefix of events that was fully acknowledged."""
        messages = [(self.topics.events, encode(e.to_json_dict()), 1, False) for e in events]
        touched = [event_node_ids(e) for e in events]
        touched_characters = [event_character_ids(e) for e in events]
        # The memory thread looks up the node states while the events go out; the states follow
        # once the events are acknowledged, so a subscriber never sees a node cleared before the
        # node.merged event that explains it (concurrent publishes may interleave on the wire).
        lookup = asyncio.create_task(self.feed.node_states(set().union(*touched)))
        character_ids = set().union(*touched_characters)
        lookup_characters = asyncio.create_task(self.feed.character_states(character_ids)) if character_ids else None
        try:
            errors = await link.publish_all(messages)
            states = await lookup
            characters = await lookup_characters if lookup_characters is not None else {}
        finally:
            lookup.cancel()
            if lookup_characters is not None:
                lookup_characters.cancel()
        # States are read now, not as of the events: a node that is gone already but whose removal
        # is in a later batch is left alone here, so its topic is cleared after that event, not before.
        removed = set().union(*(event_removed_ids(e) for e in events))
        states = {n: s for n, s in states.items() if s is not None or n in removed}
        node_errors = await link.publish_all(self._node_messages(states))
        dissolved = set().union(*(event_dissolved_ids(e) for e in events))
        characters = {c: s for c, s in characters.items() if s is not None or c in dissolved}
        character_errors = await link.publish_all(self._character_messages(characters))
        failed = [err is not None for err in errors]
        last_touch = {node: i for i, ids in enumerate(touched) for node in ids}
        for node, err in zip(states, node_errors, strict=True):
            failed[last_touch[node]] |= err is not None  # a node's state counts with the last event that touched it
        last_character = {c: i for i, ids in enumerate(touched_characters) for c in ids}
        for character, err in zip(characters, character_errors, strict=True):
            failed[last_character[character]] |= err is not None
        acked = failed.index(True) if True in failed else len(events)
        if acked:
            self._cursor = events[acked - 1].seq
            await self.feed.mark_published(self._cursor)
        self._raise_first(errors + node_errors + character_errors)
        if self._ha is not None:  # (a failure drops the session; the next one republishes all of it)
            people = await self.feed.people(self._ha.nodes_of(events))
            self._raise_first(await link.publish_all(self._ha.events(events, people)))

    # ---- plumbing

    @staticmethod
    def _raise_first(errors: list[BaseException | None]) -> None:
        for err in errors:
            if err is not None:
                raise err
