"""The worker's side of the bus: the analyzers' memory port, served by publishing observations.

Every call returns at once: the memory service applies the observations later and sends back the
node of each track it saw (`<prefix>.nodes.<worker>`), kept here so the faces' node tags on this
worker's MQTT feed follow the memory's decisions."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Iterator

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from memory.records import FaceObservation, MemoryEvent, SpeakerEvidence, SpeechTurn, TrackEvidence

from ..publish.feed import NodeState, PersonState
from .connection import BusConfig, bucket
from .messages import AnyMsg, EndMsg, FacesMsg, SyncMsg, TextsMsg, TurnsMsg, encode
from .outbox import Outbox
from .track_ids import TrackIds

log = logging.getLogger(__name__)

NODES_KEPT = 100_000  # track -> node answers remembered (tracks end; the oldest answers go first)


class BusMemory:
    """RemoteMemory and MemoryPort over the bus (see streamer.memory_port)."""

    def __init__(self, nc: Client, js: JetStreamContext, cfg: BusConfig, worker_id: str | None = None) -> None:
        self.port = self
        self.worker_id = worker_id or uuid.uuid4().hex[:12]
        self._nc = nc
        self._js = js
        self._cfg = cfg
        self.outbox = Outbox(js, cfg.buffer)
        self._counts: defaultdict[str, int] = defaultdict(int)
        self._nodes: OrderedDict[int, int | None] = OrderedDict()
        self._turn_streams: OrderedDict[int, str] = OrderedDict()  # speech turn -> its stream, for texts and sync
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._sub: object | None = None

    async def start(self) -> BusMemory:
        self._loop = asyncio.get_running_loop()
        self._sub = await self._nc.subscribe(self._cfg.nodes_subject(self.worker_id), cb=self._on_nodes)
        self._task = asyncio.create_task(self.outbox.run(), name="bus-outbox")
        return self

    async def _on_nodes(self, msg: Msg) -> None:
        try:
            nodes = {int(k): v for k, v in json.loads(msg.data).items()}
        except (ValueError, AttributeError):
            log.warning("bus: a malformed node answer was skipped")
            return
        for track, node in nodes.items():
            self._nodes[track] = node
            self._nodes.move_to_end(track)
        while len(self._nodes) > NODES_KEPT:
            self._nodes.popitem(last=False)

    def node_of(self, track: int) -> int | None:
        return self._nodes.get(track)

    # --- RemoteMemory

    async def track_ids(self) -> Iterator[int]:
        kv = await bucket(self._js, f"{self._cfg.prefix}_ids")
        return await TrackIds(kv, asyncio.get_running_loop()).start()

    async def end_stream(self, stream: str, still: bool) -> None:
        self._send(EndMsg("", 0, self.worker_id, stream, still=still), droppable=False)

    async def close(self) -> None:
        """Until the bus has acknowledged everything sent; then the connection is drained and closed."""
        if self._task is not None:
            if len(self.outbox):
                log.info("bus: waiting for %d messages to be acknowledged", len(self.outbox))
            await self.outbox.drained()
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    # --- MemoryPort

    async def faces(
        self, observations: list[FaceObservation], evidence: list[TrackEvidence], track_ids: list[int]
    ) -> tuple[list[int | None], bool]:
        if observations:  # a frame without faces changes nothing in the memory
            o = observations[0]
            self._send(FacesMsg("", 0, self.worker_id, o.stream, o.t, o.wall_time, observations, evidence), droppable=True)
        return [self._nodes.get(t) for t in track_ids], False

    def turns(self, turns: list[SpeechTurn], final: bool) -> tuple[list[int | None], bool]:
        if turns:
            self._send_threadsafe(TurnsMsg("", 0, self.worker_id, turns[0].stream, turns=turns, final=final))
        return [None] * len(turns), False

    def speaker_evidence(self, ev: SpeakerEvidence) -> bool:
        self._send_threadsafe(SyncMsg("", 0, self.worker_id, self._stream_of_turn(ev.turn), evidence=ev))
        return False

    def transcribed(self, texts: list[tuple[int, str | None]]) -> bool:
        by_stream: defaultdict[str, list[tuple[int, str | None]]] = defaultdict(list)
        for track, text in texts:
            by_stream[self._stream_of_turn(track)].append((track, text))
        for stream, part in by_stream.items():
            self._send_threadsafe(TextsMsg("", 0, self.worker_id, stream, texts=part))
        return False

    # --- sending

    def _stream_of_turn(self, track: int) -> str:
        """Turns are applied in order per source, so a turn's text and sync go with its stream's messages."""
        return self._turn_streams.get(track, "")

    def _send_threadsafe(self, msg: AnyMsg) -> None:
        assert self._loop is not None
        if isinstance(msg, TurnsMsg):
            for turn in msg.turns:
                self._turn_streams[turn.track_id] = turn.stream
            while len(self._turn_streams) > NODES_KEPT:
                self._turn_streams.popitem(last=False)
        self._loop.call_soon_threadsafe(self._send, msg, False)

    def _send(self, msg: AnyMsg, droppable: bool) -> None:
        """On the event loop: numbered in the order sent, per stream."""
        self._counts[msg.stream] += 1
        msg.source, msg.n = f"{self.worker_id}/{msg.stream}", self._counts[msg.stream]
        self.outbox.put(self._cfg.obs_subject(msg.stream), encode(msg), f"{msg.source}/{msg.n}", droppable)


class WorkerFeed:
    """The MQTT feed of a worker: its streams' status and faces only; memory events, identities and
    characters are published by the memory service."""

    async def events_after(self, seq: int, limit: int) -> list[MemoryEvent]:
        return []

    async def published_seq(self) -> int:
        return 0

    async def mark_published(self, seq: int) -> None:
        return None

    async def node_states(self, ids: Iterable[int]) -> dict[int, NodeState | None]:
        return {}

    async def identity_states(self) -> dict[int, NodeState]:
        return {}

    async def character_states(self, ids: Iterable[int] | None) -> dict[int, NodeState | None]:
        return {}

    async def people(self, ids: Iterable[int] | None) -> dict[int, PersonState | None]:
        return {}
