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
from .sources import Source, SourceState, open_source

log = logging.getLogger(__name__)


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
    def __init__(self, cfg: Config, *, realtime: bool = False, progress: Progress | None = None) -> None:
        self.cfg = cfg
        self.realtime = realtime
        self.progress = progress or Progress(enabled=False)
        self.summary = RunSummary()
        self._stop = asyncio.Event()
        self._identities = 0

    def stop(self) -> None:
        self._stop.set()

    async def run(self, pack: ModelPack | None = None) -> RunSummary:
        cfg = self.cfg
        start = time.perf_counter()
        sources = [open_source(cam, cfg.sources, realtime=self.realtime) for cam in cfg.cameras if cam.enabled]
        pack = pack or await asyncio.to_thread(load_pack, cfg.models)
        gates = (
            cfg.gates.min_det_score if cfg.gates.min_det_score is not None else pack.gates[0],
            cfg.gates.min_quality if cfg.gates.min_quality is not None else pack.gates[1],
        )
        log.info("quality gates: detection >= %.2f, embedding norm >= %.1f", *gates)
        memory = await asyncio.to_thread(Memory, cfg.memory)
        worker = MemoryWorker(memory)
        infer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        # With one source nobody else can fill a batch, so waiting for one would only add latency.
        wait_ms = cfg.embedder.max_wait_ms if len(sources) > 1 else 0.0
        embedder = FaceEmbedder(pack.recognizer, infer, cfg.embedder.batch_size, wait_ms)
        detector = FaceDetector(pack.detector, cfg.models)
        track_ids = itertools.count(await worker.call(Memory.new_track_id))
        analyzers = {
            s.name: StreamAnalyzer(s.name, cfg, gates, detector, embedder, worker, infer, track_ids) for s in sources
        }
        background = [asyncio.create_task(embedder.serve(), name="embedder"), asyncio.create_task(self._ticker(worker, sources, analyzers), name="ticker")]
        stream_tasks = [asyncio.create_task(self._run_source(s, analyzers[s.name], worker), name=f"source-{s.name}") for s in sources]
        stop_wait = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait([stop_wait, asyncio.gather(*stream_tasks)], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in [*stream_tasks, stop_wait]:
                task.cancel()
            await asyncio.gather(*stream_tasks, stop_wait, return_exceptions=True)
            for s in sources:
                await s.close()
                await worker.call(Memory.end_stream, s.name)
            self._identities = await worker.call(_count_identities)
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await asyncio.to_thread(worker.close)
            infer.shutdown(wait=False)
            self.progress.close()
        self.summary.wall_seconds = time.perf_counter() - start
        self.summary.streams = {name: a.stats for name, a in analyzers.items()}
        self.summary.identities = self._identities
        self.summary.embed_batches = embedder.stats.batches
        # Stream tasks re-raise here (e.g. a file that cannot be decoded) after everything is saved.
        for task in stream_tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return self.summary

    async def _run_source(self, source: Source, analyzer: StreamAnalyzer, worker: MemoryWorker) -> None:
        if not source.is_live:
            self.progress.add_file(source.name, source.duration)
        async for frame in source.frames():
            result = await analyzer.process(frame)
            self.summary.video_seconds[source.name] = frame.t
            if not source.is_live:
                self.progress.file_at(source.name, frame.t, analyzer.stats.faces, self._identities)
            del result  # the MQTT feed publishes face_payload(result) here
        if not source.is_live:
            self.progress.file_done(source.name)

    async def _ticker(self, worker: MemoryWorker, sources: list[Source], analyzers: dict[str, StreamAnalyzer]) -> None:
        while True:
            await asyncio.sleep(1.0)
            await worker.call(Memory.tick)
            self._identities = await worker.call(_count_identities)
            self.progress.live_line([_live_part(s, analyzers[s.name].stats, self._identities) for s in sources if s.is_live])


def _live_part(source: Source, stats: AnalyzerStats, identities: int) -> str:
    st = source.stats
    return (
        f"{source.name}: {st.state.value} {st.fps_in:.1f}/{st.fps_sampled:.1f} fps "
        f"faces {stats.faces} ids {identities} drops {st.dropped} reconnects {st.reconnects}"
    )


def install_signal_handlers(app: App) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, app.stop)
