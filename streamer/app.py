"""Wire one process together: sources -> analyzers -> memory -> publisher, until the files end or a signal."""

from __future__ import annotations

import asyncio
import itertools
import logging
import signal
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from memory import Memory
from memory.records import NodeKind, NodeStatus

from .analyzer import AnalyzerStats, StreamAnalyzer, analysis_status, face_payload
from .config import Config
from .errors import PublishError, ShuttingDown
from .faces.models import ModelPack, load_pack
from .live_line import live_part
from .memory_port import MemoryPort, RemoteMemory
from .memory_worker import MemoryWorker
from .progress import Progress
from .publish import MemoryThreadFeed, Publisher
from .publish.feed import MemoryFeed
from .publish.payloads import source_status
from .opening import open_camera
from .shared_parts import SharedParts
from .sources import StreamSource

if TYPE_CHECKING:  # a run without a language model, a metrics port or voices never loads their code
    from prometheus_client.registry import Collector

    from .captions.worker import ClipMemoryWriter
    from .voice_analyzer import TranscriptWorker, VoiceAnalyzer, VoiceModelLoader, VoiceStats

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0


@dataclass
class RunSummary:
    wall_seconds: float = 0.0
    video_seconds: dict[str, float] = field(default_factory=dict)
    streams: dict[str, AnalyzerStats] = field(default_factory=dict)
    voices: dict[str, VoiceStats] = field(default_factory=dict)
    identities: int = 0
    embed_batches: int = 0


def _count_identities(memory: Memory) -> int:
    """Confirmed face identities (provisional ones may still expire)."""
    return memory.count(NodeKind.FACE, NodeStatus.CONFIRMED)


class App:
    """One run of the streamer. Sources can be added and removed while it runs (`add_source`,
    `remove_source`); `sources` and `analyzers` are live views for status and tests.

    Without `keep_running` the run ends when every source has ended (files); live sources never end
    by themselves, so a run with one lasts until `stop()` (a signal), and so does a run without
    configured cameras, whose streams all come through `add_source`.

    With `remote` (`streamer worker`) the memory lives in another process: the analyzers talk to
    it, track ids come from it, and the MQTT feed carries this process's streams only (`remote_feed`)."""

    def __init__(
        self,
        cfg: Config,
        *,
        realtime: bool = False,
        progress: Progress | None = None,
        keep_running: bool = False,
        remote: RemoteMemory | None = None,
        remote_feed: MemoryFeed | None = None,
    ) -> None:
        self.cfg = cfg
        self.remote = remote
        self._remote_feed = remote_feed
        self.realtime = realtime
        self.keep_running = keep_running
        self.progress = progress or Progress(enabled=False)
        self.summary = RunSummary()
        self.sources: dict[str, StreamSource] = {}
        self.analyzers: dict[str, StreamAnalyzer] = {}
        self.voices: dict[str, VoiceAnalyzer] = {}
        self.transcripts: TranscriptWorker | None = None
        self.clip_memories: ClipMemoryWriter | None = None  # the optional language model's clip memories
        self.collectors: list[Collector] = []  # Prometheus collectors served beside the app's own metrics
        self.identities = 0
        self._stop = asyncio.Event()
        self._changed = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._ends: set[asyncio.Task[None]] = set()  # streams being ended (see _ending)
        self._failures: list[BaseException] = []
        self._ready = asyncio.Event()
        self._file_turns = asyncio.Semaphore(cfg.sources.files_at_once)

    def stop(self) -> None:
        self._stop.set()

    @property
    def worker(self) -> MemoryWorker:
        """The thread that owns the Memory (once ready): edits from outside the pipeline go through it."""
        return self._worker

    async def wait_ready(self) -> None:
        """Until models, memory and publisher are up and sources can be added."""
        await self._ready.wait()

    async def run(self, pack: ModelPack | None = None) -> RunSummary:
        cfg = self.cfg
        start = time.perf_counter()
        # Sources first: a missing or broken file is reported before anything is loaded or stored.
        initial = [open_camera(cam, cfg, realtime=self.realtime) for cam in cfg.cameras if cam.enabled]
        pack = pack or await asyncio.to_thread(load_pack, cfg.models)
        voice_models: VoiceModelLoader | None = None
        if cfg.voices.enabled:  # loaded when a stream has sound (VoiceModelLoader)
            from .voice_analyzer import VoiceModelLoader  # noqa: PLC0415

            voice_models = await asyncio.to_thread(VoiceModelLoader, cfg.voices, cfg.asr)
        if self.remote is None:
            self._worker = worker = MemoryWorker(await asyncio.to_thread(Memory, cfg.memory))
            port: MemoryPort = worker
            feed: MemoryFeed = MemoryThreadFeed(worker.memory, worker.executor, crops=cfg.mqtt.publish_crops)
            track_ids: Iterator[int] = itertools.count(await worker.call(Memory.new_track_id))
        else:
            port = self.remote.port
            assert self._remote_feed is not None, "a remote memory comes with its feed"
            feed = self._remote_feed
            track_ids = await self.remote.track_ids()
        self._publisher = publisher = Publisher(cfg.mqtt, feed)
        loop = asyncio.get_running_loop()
        self._parts = parts = SharedParts.build(
            cfg, pack, port, track_ids, voice_models, lambda: loop.call_soon_threadsafe(self._notify),
            # With one source nobody else can fill a batch, so waiting for one would only add latency.
            many=len(initial) > 1 or self.keep_running,
        )  # fmt: skip
        self.transcripts, embedder, infer = parts.transcripts, parts.embedder, parts.infer
        background = [asyncio.create_task(embedder.serve(), name="embedder")]
        try:
            self._publisher = publisher = await self._start_publisher(publisher)
            if cfg.metrics.port is not None:
                from .metrics import StoreCollector, serve_metrics  # noqa: PLC0415

                if self.remote is None and (link := worker.memory.store_link()) is not None:
                    self.collectors.append(StoreCollector(link))
                metrics = await serve_metrics(self, embedder.stats, cfg.metrics.host, cfg.metrics.port)
                background.append(asyncio.create_task(metrics.serve_forever(), name="metrics"))
            background.append(asyncio.create_task(self._ticker(), name="ticker"))
            if cfg.memories.llm_url is not None and self.remote is None:
                from .captions.worker import ClipMemoryWriter  # noqa: PLC0415

                self.clip_memories = ClipMemoryWriter(cfg.memories, worker, cfg.memory.interval_seconds)
                await self.clip_memories.start()
            self.progress.expect_files(sum(not s.is_live for s in initial))
            for source in initial:  # even if stopped already: the shutdown closes them as it closes any
                self._start(source)
            self._ready.set()
            await self._until_done(until_stopped=self.keep_running or not initial)
        finally:
            await self._shutdown(background)
            infer.shutdown(wait=False)
            self.progress.close()
        self.summary.wall_seconds = time.perf_counter() - start
        self.summary.identities = self.identities
        self.summary.embed_batches = embedder.stats.batches
        if self._failures:  # a file that broke mid-way re-raises here, after everything was saved
            raise self._failures[0]
        return self.summary

    async def _start_publisher(self, publisher: Publisher) -> Publisher:
        """A broker the user named must work; the embedded one is a convenience, so when its port is
        taken (say by another streamer on this machine) the analysis goes on without the feed."""
        try:
            await publisher.start()
        except PublishError as e:
            if self.cfg.mqtt.url is not None:
                raise
            log.warning("%s; going on without the MQTT feed", e)
            publisher = Publisher(self.cfg.mqtt.model_copy(update={"enabled": False}), publisher.feed)
            await publisher.start()
        return publisher

    def add_source(self, source: StreamSource) -> None:
        """Starts a stream's analysis; the caller closes the source if this raises."""
        if self._stop.is_set():
            raise ShuttingDown(f"stream {source.name!r} not started: the run is ending")
        self._start(source)

    def _start(self, source: StreamSource) -> None:
        if source.name in self._tasks:
            raise ValueError(f"a stream named {source.name!r} is already running")
        analyzer, voice = self._parts.for_stream(source)
        self.sources[source.name] = source
        self.analyzers[source.name] = analyzer
        self.summary.streams[source.name] = analyzer.stats
        if voice is not None:
            self.voices[source.name] = voice
            self.summary.voices[source.name] = voice.stats
            voice.start()
        self._tasks[source.name] = asyncio.create_task(self._run_source(source, analyzer), name=f"source-{source.name}")
        self._changed.set()

    async def remove_source(self, name: str) -> None:
        """Stop one stream (its clip closes, its people leave) while the others go on."""
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()
        await self._ending(self._remove(name, task))

    async def _remove(self, name: str, task: asyncio.Task[None] | None) -> None:
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        source = self.sources.pop(name, None)
        if source is not None:
            await self._end_stream(source)
        self._changed.set()

    async def _ending(self, end: Coroutine[Any, Any, None]) -> None:
        """Ends a stream in a task of its own that the run's end waits for: a stream removed or ended
        just as the run ends must still reach the memory before it closes."""
        task = asyncio.create_task(end)
        self._ends.add(task)
        task.add_done_callback(self._ends.discard)
        await asyncio.shield(task)

    def _notify(self) -> None:
        self._publisher.notify()

    def notify(self) -> None:
        """Memory events were committed by a caller outside the pipeline (the bus): publish them now."""
        self._publisher.notify()

    async def _end_stream(self, source: StreamSource, finished: bool = False) -> None:
        """The stream is over: its remaining audio is analysed first when it ended by itself (`finished`)."""
        voice = self.voices.pop(source.name, None)
        if voice is not None:
            await asyncio.to_thread(voice.finish if finished else voice.stop)
        await source.close()
        still = not source.is_live and self.analyzers[source.name].stats.frames == 1
        if self.remote is None:
            await self._worker.call(Memory.end_stream, source.name, still)
        else:
            await self.remote.end_stream(source.name, still)
        self._publisher.publish_stream_status(source.name, self.stream_status(source))
        self._publisher.notify()

    def stream_status(self, source: StreamSource) -> dict[str, Any]:
        """A stream's health: its source's state and counters, and how its analysis goes."""
        status = {**source_status(source.stats), **analysis_status(self.analyzers[source.name].stats)}
        voice = self.voices.get(source.name)
        if voice is not None:
            from .voice_analyzer import voice_status  # noqa: PLC0415

            status |= voice_status(voice.stats, self.transcripts)
        return status

    async def _until_done(self, until_stopped: bool) -> None:
        while not self._stop.is_set() and not self._failures:
            if not self._tasks and not until_stopped:
                return
            self._changed.clear()
            waiters = [asyncio.create_task(self._stop.wait()), asyncio.create_task(self._changed.wait())]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()

    async def _shutdown(self, background: list[asyncio.Task[None]]) -> None:
        # together: a camera's reader may take its read timeout to give up, and each end waits for it
        await asyncio.gather(*(self.remove_source(name) for name in list(self._tasks)))
        # streams removed or ended by themselves just before (their callers see their failures)
        await asyncio.gather(*self._ends, return_exceptions=True)
        if self.transcripts is not None:
            # files keep every transcript; a live run stopped by a signal gives them a few seconds
            await asyncio.to_thread(self.transcripts.drain, 3600.0 if not self.keep_running else 10.0)
            await asyncio.to_thread(self.transcripts.close)
        if self.clip_memories is not None:  # the last clips' events must be committed for it to see them
            await self._worker.call(Memory.flush)
            drain = self.cfg.memories.drain_seconds
            await self.clip_memories.close(drain if not self.keep_running else min(drain, 10.0))
        if self.remote is None:
            self.identities = await self._worker.call(_count_identities)
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        if self.remote is None:
            await self._worker.call(Memory.flush)
        else:  # until the memory's side has taken everything this process sent
            await self.remote.close()
        self._publisher.notify()
        await self._publisher.stop()
        if self.remote is None:
            await asyncio.to_thread(self._worker.close)

    async def _run_source(self, source: StreamSource, analyzer: StreamAnalyzer) -> None:
        try:
            await self._analyse(source, analyzer)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a file that cannot be read: report it once the run is saved
            self._failures.append(e)
        # Ended by itself (a file, a finished push): close its clip and let the run go on.
        self._tasks.pop(source.name, None)
        self.sources.pop(source.name, None)
        await self._ending(self._end_stream(source, finished=True))
        self._changed.set()

    async def _analyse(self, source: StreamSource, analyzer: StreamAnalyzer) -> None:
        if source.is_live:
            await self._analyse_frames(source, analyzer)
            return
        # A folder of a thousand photos should not open a thousand decoders at once.
        async with self._file_turns:
            self.progress.add_file(source.name, source.duration)
            await self._analyse_frames(source, analyzer)

    async def _analyse_frames(self, source: StreamSource, analyzer: StreamAnalyzer) -> None:
        try:
            async for result in analyzer.results(source.frames(), live=source.is_live):
                frame = result.frame
                self.summary.video_seconds[source.name] = frame.t
                if self.clip_memories is not None:
                    self.clip_memories.offer(frame)
                if len(result.faces):
                    self._publisher.publish_faces(source.name, face_payload(result), frame.wall_time)
                if result.new_events:
                    self._publisher.notify()
                if not source.is_live:
                    self.progress.file_at(source.name, frame.t, analyzer.stats.faces, self.identities)
        finally:
            if analyzer.trail is not None:  # the voice path stops waiting for faces of its last turns
                analyzer.trail.close()
        voice = self.voices.get(source.name)
        if not source.is_live and voice is not None:
            # an audio-only file has no frames to move its bar: the voice path's progress does
            while voice.running:
                self.progress.file_at(source.name, voice.stats.audio_seconds, analyzer.stats.faces, self.identities)
                await asyncio.sleep(0.25)
        if not source.is_live:
            self.progress.file_done(source.name)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            if self.remote is None:
                await self._memory_tick()
            for s in list(self.sources.values()):
                self._publisher.publish_stream_status(s.name, self.stream_status(s))
            parts = []
            for s in (s for s in self.sources.values() if s.is_live):
                voice = self.voices.get(s.name)
                parts.append(live_part(s, self.analyzers[s.name].stats, self.identities, None if voice is None else voice.stats))
            self.progress.live_line(parts + [self.clip_memories.status_line()] if parts and self.clip_memories else parts)

    async def _memory_tick(self) -> None:
        await self._worker.call(Memory.tick)
        if await self._worker.call(Memory.flush_events):
            self._publisher.notify()
            if self.clip_memories is not None:
                self.clip_memories.notify()
        self.identities = await self._worker.call(_count_identities)


def install_signal_handlers(app: App) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, app.stop)
