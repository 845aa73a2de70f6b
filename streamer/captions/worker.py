"""The language-model path for clip memories: closed clips -> a bounded queue -> the model -> memory.

It follows the memory's committed events with its own cursor (as the MQTT feed does), so it sees
each `clip.closed` once the clip's graph memories are stored: whatever happens to the model, those
are already safe. Each closed clip takes its kept frames at once and waits in a bounded queue (the
oldest is dropped when it is full); one consumer asks the endpoint, with time-outs and retries, and
stores what comes back through the memory thread. Nothing here blocks the event loop, and a slow or
dead endpoint only costs its own queue: every drop and failure is counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Future
from dataclasses import dataclass

from memory import Memory
from memory.records import Provenance

from ..memory_worker import MemoryWorker
from ..records import Frame
from .client import ChatClient, EndpointError
from .config import MemoriesConfig
from .frames import ClipFrames
from .prompt import ClipContext, Turn, build_messages, parse_reply

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # events are committed about once a second (the app's tick)
EVENTS_PER_READ = 1000


@dataclass
class ClipMemoryStats:
    clips: int = 0  # closed clips seen
    done: int = 0  # clips the model answered
    memories: int = 0  # memories stored
    dropped: int = 0  # clips dropped: queue full, or still queued at the end of the run
    failed: int = 0  # clips whose every try failed
    empty: int = 0  # clips the model answered twice without a usable line
    text_only: bool = False


@dataclass
class _Job:
    stream: str
    index: int
    frames: list[Future[bytes]]


def clip_context(memory: Memory, stream: str, index: int, faces_per_clip: int) -> ClipContext | None:
    """Runs on the memory thread: the clip's people (tags, a crop each) and its speech turns."""
    clip = memory.clip_memories(stream, index)
    if clip is None:
        return None
    faces = []
    for node in clip["faces"][:faces_per_clip]:
        crops = memory.crops(node)
        faces.append((memory.tag(node), crops[0] if crops else None))
    start = clip["first_t"]
    turns = [Turn(t0 - start, t1 - start, None if n is None else memory.tag(n), text) for t0, t1, n, text in clip["turns"]]
    return ClipContext(stream, index, clip["start_wall"], clip["end_wall"], faces,
                       list(dict.fromkeys(memory.tag(v) for v in clip["voices"])), turns)  # fmt: skip


class ClipMemoryWriter:
    def __init__(self, cfg: MemoriesConfig, worker: MemoryWorker, interval_seconds: float) -> None:
        self.cfg = cfg
        self.stats = ClipMemoryStats()
        self.frames = ClipFrames(interval_seconds, cfg.frames_per_clip, cfg.frame_max_px)
        self._worker = worker
        self._client = ChatClient(cfg)
        self._queue: asyncio.Queue[_Job] = asyncio.Queue(cfg.queue_size)
        self._cursor = 0
        self._wake = asyncio.Event()
        self._reading = asyncio.Lock()  # the follower and close() must not read the same events twice
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def calls(self) -> ChatClient:
        return self._client

    def backlog(self) -> int:
        return self._queue.qsize()

    def offer(self, frame: Frame) -> None:
        """An analysed frame: kept if its clip still wants one (cheap otherwise)."""
        self.frames.offer(frame)

    async def start(self) -> None:
        """Follows events from now on: clips of earlier runs have no frames here."""
        self._cursor = await self._worker.call(Memory.last_event_seq)
        self._tasks = [asyncio.create_task(self._follow(), name="clip-memories-follow"),
                       asyncio.create_task(self._consume(), name="clip-memories-model")]  # fmt: skip
        log.info("clip memories from %s (model %s)", self._client.url, self.cfg.llm_model)

    async def close(self, drain_seconds: float) -> None:
        """Reads the last events (commit them first), gives queued clips up to `drain_seconds`, then stops;
        clips left in the queue are counted as dropped."""
        await self._read_events()
        try:
            await asyncio.wait_for(self._queue.join(), drain_seconds)
        except asyncio.TimeoutError:
            log.warning("clip memories: %d clips still waited for the model at the end", self._queue.qsize())
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.stats.dropped += self._queue.qsize()
        await self._client.close()
        self.frames.close()

    def status_line(self) -> str:
        s = self.stats
        return f"llm clips {s.done}/{s.clips} memories {s.memories} dropped {s.dropped} failed {s.failed} empty {s.empty}"

    # --- events -> queue ------------------------------------------------------------------------

    async def _follow(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            await self._read_events()

    def notify(self) -> None:
        """Events were committed: read them now rather than at the next poll."""
        self._wake.set()

    async def _read_events(self) -> None:
        async with self._reading:
            while True:
                events = await self._worker.call(Memory.events_after, self._cursor, EVENTS_PER_READ)
                for ev in events:
                    self._cursor = ev.seq
                    if ev.type == "clip.closed" and ev.stream is not None:
                        index = int(ev.data["clip"])
                        self._enqueue(_Job(ev.stream, index, self.frames.take(ev.stream, index)))
                if len(events) < EVENTS_PER_READ:
                    return

    def _enqueue(self, job: _Job) -> None:
        self.stats.clips += 1
        if self._queue.full():  # the newest clip matters most to a live feed
            old = self._queue.get_nowait()
            self._queue.task_done()
            self.stats.dropped += 1
            log.warning("clip memories: the model is behind; dropped clip %d of %s", old.index, old.stream)
        self._queue.put_nowait(job)

    # --- queue -> model -> memory ---------------------------------------------------------------

    async def _consume(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await self._write(job)
            except EndpointError as e:
                self.stats.failed += 1
                log.warning("clip memories: no answer for clip %d of %s: %s", job.index, job.stream, e)
            except asyncio.CancelledError:
                self.stats.dropped += 1  # cut off by the end of the run
                raise
            except Exception:  # one clip that cannot be written must not stop the clips after it
                self.stats.failed += 1
                log.exception("clip memories: clip %d of %s failed", job.index, job.stream)
            finally:
                self._queue.task_done()

    async def _write(self, job: _Job) -> None:
        ctx = await self._worker.call(clip_context, job.stream, job.index, self.cfg.faces_per_clip)
        if ctx is None:
            return
        frames = []
        for f in job.frames:
            try:
                frames.append(await asyncio.wrap_future(f))
            except ValueError:
                continue  # a frame that could not be encoded: the clip goes without it
        text = build_messages(ctx, [], images=False)
        pictures = frames or any(crop for _, crop in ctx.faces)
        reply, model, images = await self._client.complete(build_messages(ctx, frames, images=True) if pictures else text, text)
        self.stats.text_only = self._client.text_only
        memories = parse_reply(reply)
        if not memories.episodic and not memories.semantic:
            # small models now and then answer with nothing usable; asked again in words only, they mostly do
            log.info("clip memories: the model wrote nothing usable for clip %d of %s, asking again: %.200r", job.index, job.stream, reply)
            reply, model, images = await self._client.complete(text, text)
            memories = parse_reply(reply)
            if not memories.episodic and not memories.semantic:
                self.stats.empty += 1
                log.warning("clip memories: nothing usable for clip %d of %s twice: %.200r", job.index, job.stream, reply)
        source = Provenance(model, self._client.host, time.time(), images)
        stored = await self._worker.call(Memory.add_model_memories, job.stream, job.index, memories.episodic, memories.semantic, source)
        self.stats.done += 1
        self.stats.memories += len(stored)
        log.debug("clip memories: clip %d of %s: %d memories from %s", job.index, job.stream, len(stored), model)
