"""The memory service's side of the bus: the one identity authority, fed by a durable consumer.

The intake process (streamer.bus.intake) reads the bus; here its parts of messages are applied in
the stream's order on the memory thread, with the same steps `streamer run` uses
(streamer.memory_port), each part committed at once. Before each message's effects, its stream
sequence is noted in the store (Memory.set_bookmark), so every commit holds the note of exactly the
messages whose effects it holds; the intake acknowledges a part only after its commit. On restart
the consumer starts again right after the noted sequence, and a message already applied (a
worker's resend beyond the server's duplicate window) is recognised by its (source, n).
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from memory import Memory
from memory.tracks import MAX_PENDING_ROWS

from ..errors import ConfigError
from ..memory_port import faces_step, speaker_evidence_step, transcribed_step, turns_step
from ..memory_worker import MemoryWorker
from .connection import BusConfig
from .intake import Part
from .intake_process import IntakeProcess
from .messages import AnyMsg, EndMsg, FacesMsg, SyncMsg, TextsMsg, TurnsMsg, build

log = logging.getLogger(__name__)

BATCH_ROWS = MAX_PENDING_ROWS // 2  # rows per applied part: the memory never commits in the middle of a message
SEQ, APPLIED = "bus.seq", "bus.applied"
# upper bounds (s) of the stored -> committed latency histogram: a fixed few counts, however long the service runs
LATENCY_BOUNDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
RESTART_WAIT_SECONDS = 1.0  # before an intake process that died is started again


@dataclass
class ServiceStats:
    applied: int = 0  # messages whose effects are committed
    observations: int = 0
    duplicates: int = 0  # already applied: skipped
    malformed: int = 0  # not ours, or unreadable: logged and skipped
    batches: int = 0
    apply_seconds: float = 0.0
    pending: int = 0  # messages in the stream not yet delivered to the service (consumer lag)
    intake_restarts: int = 0  # the intake process died (or failed to start again) and was started again
    # from the bus storing a message to the memory committing its effects: counts per LATENCY_BOUNDS
    # bucket (the last one beyond them), and their sum
    latency_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS) + 1))
    latency_sum: float = 0.0

    def add_latencies(self, seconds: list[float]) -> None:
        for x in seconds:
            self.latency_counts[bisect.bisect_left(LATENCY_BOUNDS, x)] += 1
        self.latency_sum += sum(seconds)


def apply_part(
    memory: Memory, part: Part, applied: dict[str, int]
) -> tuple[dict[str, dict[int, int | None]], int, list[AnyMsg | None]]:
    """On the memory thread: an intake's part built into records, applied and committed (apply_batch)."""
    decoded = [None if m is None else build(m) for m in part.messages]
    answers, count = apply_batch(memory, list(zip(part.seqs, decoded)), applied)
    return answers, count, decoded


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


class BusConsumer:
    """Feeds the memory (owned by `worker`) from the bus until cancelled; `on_events` after each commit.
    The bus is read by the intake process (streamer.bus.intake), restarted if it dies."""

    def __init__(self, cfg: BusConfig, worker: MemoryWorker, on_events: Callable[[], None]) -> None:
        self._cfg = cfg
        self._worker = worker
        self._on_events = on_events
        self.stats = ServiceStats()
        self._applied: dict[str, int] = {}

    async def run(self) -> None:
        self._applied = json.loads(await self._worker.call(Memory.bookmark, APPLIED) or "{}")
        await self._worker.call(Memory.load_libraries)  # not in the middle of the first batches
        intake = await self._start_intake(first=True)
        try:
            while True:
                part = await intake.next()
                if isinstance(part, Part):
                    await self._apply_part(intake, part)
                    continue
                self.stats.intake_restarts += 1
                log.error("bus: the intake process %s; starting it again in %.0f s", part, RESTART_WAIT_SECONDS)
                await intake.stop()
                await asyncio.sleep(RESTART_WAIT_SECONDS)
                intake = await self._start_intake(first=False)
        finally:
            # what the memory thread has begun, it commits; the intake acknowledges what it was told is
            await intake.stop()

    async def _start_intake(self, first: bool) -> IntakeProcess:
        """An intake reading from right after what the store holds (a part applied by the memory
        thread meanwhile is committed: the thread takes one call at a time)."""
        seq = int(await self._worker.call(Memory.bookmark, SEQ) or 0)
        floor = await self._worker.call(Memory.new_track_id)
        while True:
            intake = IntakeProcess(self._cfg, BATCH_ROWS)
            reason = await intake.start(seq + 1, floor)
            if reason is None:
                return intake
            if first:  # the bus cannot be used at all: say so and stop
                raise ConfigError(f"bus: {reason}")
            self.stats.intake_restarts += 1
            log.error("bus: the intake process could not start (%s); trying again in %.0f s", reason, RESTART_WAIT_SECONDS)
            await asyncio.sleep(RESTART_WAIT_SECONDS)

    async def _apply_part(self, intake: IntakeProcess, part: Part) -> None:
        started = time.perf_counter()
        answers, applied, decoded = await self._worker.call(apply_part, part, self._applied)
        s = self.stats
        s.apply_seconds += time.perf_counter() - started
        now = time.time()
        s.applied += applied
        s.malformed += sum(m is None for m in decoded)
        s.duplicates += sum(m is not None for m in decoded) - applied
        s.observations += sum(len(m.observations) for m in decoded if isinstance(m, FacesMsg))
        s.batches += 1
        s.pending = part.pending
        s.add_latencies([now - t for t in part.stored])
        self._on_events()
        intake.committed(part.n, answers)  # the intake acknowledges and sends the nodes on
