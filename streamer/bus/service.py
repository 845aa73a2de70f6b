"""The memory service's side of the bus: the one identity authority, fed by a durable consumer.

Messages are applied in the stream's order, in batches, on the memory thread, with the same steps
`streamer run` uses (streamer.memory_port), committed once per batch. Before each message's
effects, its stream sequence is noted in the store (Memory.set_bookmark), so every commit holds
the note of exactly the messages whose effects it holds; the batch is acknowledged only after its commit. On
restart the consumer starts again right after the noted sequence, and a message already applied
(a worker's resend beyond the server's duplicate window) is recognised by its (source, n).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext, api
from nats.js.errors import FetchTimeoutError, NotFoundError

from memory import Memory
from memory.tracks import MAX_PENDING_ROWS

from ..memory_port import faces_step, speaker_evidence_step, transcribed_step, turns_step
from ..memory_worker import MemoryWorker
from .connection import BusConfig, bucket, ensure_stream
from .messages import AnyMsg, BadMessage, EndMsg, FacesMsg, SyncMsg, TextsMsg, TurnsMsg, decode
from .track_ids import reserve

log = logging.getLogger(__name__)

CONSUMER = "memory"
BATCH = 5000  # messages fetched at once at most: a backlog is taken in big bites, each part one commit
BATCH_ROWS = MAX_PENDING_ROWS // 2  # rows per applied batch: the memory never commits in the middle of a message
FETCH_WAIT_SECONDS = 0.2
SEQ, APPLIED = "bus.seq", "bus.applied"
LATENCIES_KEPT = 100_000


@dataclass
class ServiceStats:
    applied: int = 0  # messages whose effects are committed
    observations: int = 0
    duplicates: int = 0  # already applied: skipped
    malformed: int = 0  # not ours, or unreadable: logged and skipped
    batches: int = 0
    apply_seconds: float = 0.0
    pending: int = 0  # messages in the stream not yet delivered to the service (consumer lag)
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCIES_KEPT))  # stored -> committed


def apply_batch(
    memory: Memory, batch: list[tuple[int, AnyMsg | None]], applied: dict[str, int]
) -> tuple[dict[str, dict[int, int | None]], int]:
    """On the memory thread: apply (stream sequence, message) pairs and commit once. Returns the node
    of every track seen, per worker, and how many messages were applied (not duplicates or
    malformed: a None message only moves the bookmark)."""
    answers: defaultdict[str, dict[int, int | None]] = defaultdict(dict)
    count = 0
    last = int(memory.bookmark(SEQ) or 0)
    for seq, m in batch:
        if seq > last:  # a resend after the ack wait comes with its old, lower sequence
            last = seq
            memory.set_bookmark(SEQ, str(seq))  # before the effects: any commit from here on holds both
        if m is None or applied.get(m.source, 0) >= m.n:
            continue
        applied[m.source] = m.n
        count += 1
        if isinstance(m, FacesMsg):
            nodes, _ = faces_step(memory, m.observations, m.evidence, m.track_ids, commit=False)
            answers[m.worker].update(zip(m.track_ids, nodes))
        elif isinstance(m, TurnsMsg):
            nodes, _ = turns_step(memory, m.turns, m.final, commit=False)
            answers[m.worker].update(zip((t.track_id for t in m.turns), nodes))
        elif isinstance(m, TextsMsg):
            transcribed_step(memory, m.texts, commit=False)
        elif isinstance(m, SyncMsg):
            assert m.evidence is not None
            speaker_evidence_step(memory, m.evidence, commit=False)
        elif isinstance(m, EndMsg):
            memory.end_stream(m.stream, m.still)
    # the sequence alone decides where a restart resumes; this only catches late resends
    memory.set_bookmark(APPLIED, json.dumps(applied, separators=(",", ":")))
    memory.flush()
    return answers, count


def _rows(m: AnyMsg | None) -> int:
    if isinstance(m, FacesMsg):
        return len(m.observations)
    return len(m.turns) if isinstance(m, TurnsMsg) else 1


class BusConsumer:
    """Feeds the memory (owned by `worker`) from the bus until cancelled; `on_events` after each commit."""

    def __init__(self, nc: Client, js: JetStreamContext, cfg: BusConfig, worker: MemoryWorker, on_events: Callable[[], None]) -> None:
        self._nc = nc
        self._js = js
        self._cfg = cfg
        self._worker = worker
        self._on_events = on_events
        self.stats = ServiceStats()
        self._applied: dict[str, int] = {}

    async def run(self) -> None:
        await ensure_stream(self._js, self._cfg)
        seq = int(await self._worker.call(Memory.bookmark, SEQ) or 0)
        self._applied = json.loads(await self._worker.call(Memory.bookmark, APPLIED) or "{}")
        await self._track_ids_above_store()
        await self._worker.call(Memory.load_libraries)  # not in the middle of the first batches
        sub = await self._subscribe(seq + 1)
        log.info("bus: applying observations from stream sequence %d", seq + 1)
        # One part is applied on the memory thread while the next is fetched and decoded here.
        applying: asyncio.Task[None] | None = None
        try:
            while True:
                try:
                    msgs = await sub.fetch(BATCH, timeout=FETCH_WAIT_SECONDS)
                except (FetchTimeoutError, NatsTimeoutError, asyncio.TimeoutError):
                    continue
                except Exception as e:  # the bus is restarting: the client reconnects by itself
                    log.debug("bus: fetch failed (%s)", e)
                    await asyncio.sleep(0.5)
                    continue
                for part in self._parts(msgs):
                    if applying is not None:
                        await applying  # parts are applied one at a time, in order
                    applying = asyncio.create_task(self._apply_part(*part), name="bus-apply")
        finally:
            if applying is not None:
                applying.cancel()  # what the memory thread has begun, it commits; unacknowledged, it is fetched again
                await asyncio.gather(applying, return_exceptions=True)

    async def _subscribe(self, start: int) -> JetStreamContext.PullSubscription:
        """The durable consumer, placed right after what the store holds (not where acks left it:
        a batch may have been committed and not acknowledged, or acknowledged by an older store)."""
        try:
            await self._js.delete_consumer(self._cfg.stream, CONSUMER)
        except NotFoundError:
            pass
        config = api.ConsumerConfig(
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start, ack_policy=api.AckPolicy.ALL,
            ack_wait=60.0, max_ack_pending=-1, max_deliver=-1,
        )  # fmt: skip
        return await self._js.pull_subscribe(f"{self._cfg.prefix}.obs.>", durable=CONSUMER, stream=self._cfg.stream, config=config)

    async def _track_ids_above_store(self) -> None:
        """Workers take track ids from the bus's counter: it starts above any id this store handed out."""
        kv = await bucket(self._js, f"{self._cfg.prefix}_ids")
        floor = await self._worker.call(Memory.new_track_id)
        await reserve(kv, 1, at_least=floor)

    def _parts(self, msgs: list[Msg]) -> Iterator[tuple[list[Msg], list[AnyMsg | None]]]:
        """The fetched messages decoded, in parts of about BATCH_ROWS rows (one commit each)."""
        part: list[AnyMsg | None] = []
        start, rows = 0, 0
        for i, msg in enumerate(msgs):
            part.append(self._decode(msg))
            rows += _rows(part[-1])
            if rows >= BATCH_ROWS or i == len(msgs) - 1:
                yield msgs[start : i + 1], part
                part, start, rows = [], i + 1, 0

    def _decode(self, msg: Msg) -> AnyMsg | None:
        try:
            return decode(msg.data)
        except BadMessage as e:
            self.stats.malformed += 1
            log.warning("bus: skipped a message on %s: %s", msg.subject, e)
            return None

    async def _apply_part(self, msgs: list[Msg], decoded: list[AnyMsg | None]) -> None:
        batch = [(msg.metadata.sequence.stream, m) for msg, m in zip(msgs, decoded)]
        started = time.perf_counter()
        answers, applied = await self._worker.call(apply_batch, batch, self._applied)
        s = self.stats
        s.apply_seconds += time.perf_counter() - started
        await msgs[-1].ack()  # AckPolicy.ALL: every message up to this one
        now = time.time()
        s.applied += applied
        s.duplicates += sum(m is not None for m in decoded) - applied
        s.observations += sum(len(m.observations) for m in decoded if isinstance(m, FacesMsg))
        s.batches += 1
        s.pending = msgs[-1].metadata.num_pending
        s.latencies.extend(now - msg.metadata.timestamp.timestamp() for msg in msgs)
        for worker, nodes in answers.items():
            await self._nc.publish(self._cfg.nodes_subject(worker), json.dumps(nodes).encode())
        self._on_events()
