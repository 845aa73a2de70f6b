"""Wire one process together: sources -> analyzers -> memory -> publisher, until the files end or a signal."""

from __future__ import annotations

import asyncio
import itertools
import logging
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from memory import Memory
from memory.records import NodeKind, NodeStatus

from .analyzer import AnalyzerStats, StreamAnalyzer, face_payload
from .config import Config
from .faces.detector import FaceDetector
from .faces.embedder import FaceEmbedder
from .faces.models import ModelPack, load_pack
from .memory_worker import MemoryWorker
from .progress import Progress
from .publish import MemoryThreadFeed, Publisher
from .publish.payloads import source_status
from .sources import Source, open_source

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0


@dataclass
class RunSummary:
    wall_seconds: float = 0.0
    video_seconds: dict[str, float] = field(default_factory=dict)
    streams: dict[str, AnalyzerStats] = field(default_factory=dict)
    identities: int = 0
    embed_batches: int = 0


def _count_identities(memory: Memory) -> int:
    """Confirmed face identities (provisional ones may still expire)."""
    return sum(n.status == NodeStatus.CONFIRMED for n in memory.nodes(NodeKind.FACE))


class App:
    """One run of the streamer. `sources` and `analyzers` are live views for status and tests."""

    def __init__(self, cfg: Config, *, realtime: bool = False, progress: Progress | None = None) -> None:
        self.cfg = cfg
        self.realtime = realtime
        self.progress = progress or Progress(enabled=False)
        self.summary = RunSummary()
        self.sources: list[Source] = []
        self.analyzers: dict[str, StreamAnalyzer] = {}
        self.identities = 0
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    def _gates(self, pack: ModelPack) -> tuple[float, float]:
        g = self.cfg.gates
        return (
            g.min_det_score if g.min_det_score is not None else pack.gates[0],
            g.min_quality if g.min_quality is not None else pack.gates[1],
        )

    async def run(self, pack: ModelPack | None = None) -> RunSummary:
        cfg = self.cfg
        start = time.perf_counter()
        # Sources first: a missing or broken file is reported before anything is loaded or stored.
        self.sources = [open_source(cam, cfg.sources, realtime=self.realtime) for cam in cfg.cameras if cam.enabled]
        pack = pack or await asyncio.to_thread(load_pack, cfg.models)
        gates = self._gates(pack)
        log.info("quality gates: detection >= %.2f, embedding norm >= %.1f", *gates)
        worker = MemoryWorker(await asyncio.to_thread(Memory, cfg.memory))
        publisher = Publisher(cfg.mqtt, MemoryThreadFeed(worker.memory, worker.executor, crops=cfg.mqtt.publish_crops))
        infer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        # With one source nobody else can fill a batch, so waiting for one would only add latency.
        wait_ms = cfg.embedder.max_wait_ms if len(self.sources) > 1 else 0.0
        embedder = FaceEmbedder(pack.recognizer, infer, cfg.embedder.batch_size, wait_ms)
        detector = FaceDetector(pack.detector, cfg.models)
        track_ids = itertools.count(await worker.call(Memory.new_track_id))
        self.analyzers = {
            s.name: StreamAnalyzer(s.name, cfg, gates, detector, embedder, worker, infer, track_ids) for s in self.sources
        }
        background = [asyncio.create_task(embedder.serve(), name="embedder")]
        stream_tasks: list[asyncio.Task[None]] = []
        try:
            await publisher.start()
            background.append(asyncio.create_task(self._ticker(worker, publisher), name="ticker"))
            stream_tasks = [
                asyncio.create_task(self._run_source(s, self.analyzers[s.name], publisher), name=f"source-{s.name}")
                for s in self.sources
            ]
            await self._until_done(stream_tasks)
        finally:
            await self._shutdown(stream_tasks, background, worker, publisher)
            infer.shutdown(wait=False)
            self.progress.close()
        self.summary.wall_seconds = time.perf_counter() - start
        self.summary.streams = {name: a.stats for name, a in self.analyzers.items()}
        self.summary.identities = self.identities
        self.summary.embed_batches = embedder.stats.batches
        # A file that broke mid-way re-raises here, after everything was saved.
        for task in stream_tasks:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return self.summary

    async def _until_done(self, stream_tasks: list[asyncio.Task[None]]) -> None:
        stop_wait = asyncio.create_task(self._stop.wait())
        try:
            pending = set(stream_tasks)
            while pending and not self._stop.is_set():
                done, pending = await asyncio.wait(pending | {stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                pending.discard(stop_wait)
                if any(not t.cancelled() and t.exception() is not None for t in done if t is not stop_wait):
                    break
        finally:
            stop_wait.cancel()

    async def _shutdown(
        self,
        stream_tasks: list[asyncio.Task[None]],
        background: list[asyncio.Task[None]],
        worker: MemoryWorker,
        publisher: Publisher,
    ) -> None:
        for task in stream_tasks:
            task.cancel()
        await asyncio.gather(*stream_tasks, return_exceptions=True)
        for s in self.sources:
            await s.close()
            still = not s.is_live and self.analyzers[s.name].stats.frames == 1
            await worker.call(Memory.end_stream, s.name, still)
            publisher.publish_stream_status(s.name, source_status(s.stats))
        self.identities = await worker.call(_count_identities)
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await worker.call(Memory.flush)
        publisher.notify()
        await publisher.stop()
        await asyncio.to_thread(worker.close)

    async def _run_source(self, source: Source, analyzer: StreamAnalyzer, publisher: Publisher) -> None:
        if not source.is_live:
            self.progress.add_file(source.name, source.duration)
        async for frame in source.frames():
            try:
                result = await analyzer.process(frame)
            except Exception:  # one bad frame must not end a camera that runs for days
                if not source.is_live:
                    raise
                log.exception("%s: analysis of the frame at %.2f s failed; going on", source.name, frame.t)
                continue
            self.summary.video_seconds[source.name] = frame.t
            if len(result.faces):
                publisher.publish_faces(source.name, face_payload(result), frame.wall_time)
                publisher.notify()
            if not source.is_live:
                self.progress.file_at(source.name, frame.t, analyzer.stats.faces, self.identities)
        if not source.is_live:
            self.progress.file_done(source.name)

    async def _ticker(self, worker: MemoryWorker, publisher: Publisher) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            await worker.call(Memory.tick)
            publisher.notify()
            self.identities = await worker.call(_count_identities)
            for s in self.sources:
                publisher.publish_stream_status(s.name, source_status(s.stats))
            self.progress.live_line([self._live_part(s) for s in self.sources if s.is_live])

    def _live_part(self, source: Source) -> str:
        st = source.stats
        return (
            f"{source.name}: {st.state.value} {st.fps_in:.1f}/{st.fps_sampled:.1f} fps "
            f"faces {self.analyzers[source.name].stats.faces} ids {self.identities} "
            f"drops {st.dropped} reconnects {st.reconnects}"
        )


def install_signal_handlers(app: App) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, app.stop)
