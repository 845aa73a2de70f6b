"""Detection runs ahead of the frames being stored: a file's frames up to 8 ahead, a camera's only
one beyond the frame being detected (the frames a camera drops when the analysis falls behind must
stay in its source, which keeps the newest). The results still come whole and in order."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import pytest

from memory import Memory

from streamer.analyzer import StreamAnalyzer
from streamer.config import load_config
from streamer.demo.cast import Person
from streamer.faces.detector import FaceDetector
from streamer.faces.embedder import FaceEmbedder
from streamer.faces.models import ModelPack
from streamer.memory_worker import MemoryWorker
from streamer.records import Frame

FRAMES = 20


@pytest.mark.parametrize(("live", "taken_while_stalled"), [(True, 3), (False, 9)])
def test_frames_taken_while_the_memory_is_stalled(
    cast: list[Person], pack: ModelPack, tmp_path: Path, live: bool, taken_while_stalled: int
) -> None:
    photo = cv2.copyMakeBorder(cast[0].image, 120, 120, 240, 240, cv2.BORDER_CONSTANT, value=(90, 90, 90))
    cfg = load_config(overrides={"memory.db": str(tmp_path / "memory.db"), "mqtt.enabled": False}, environ={})
    taken = 0

    async def frames() -> AsyncIterator[Frame]:
        nonlocal taken
        for k in range(FRAMES):
            taken += 1
            yield Frame("cam", k, 0.2 * k, time.time(), photo)

    async def scenario() -> list[float]:
        worker = MemoryWorker(Memory(cfg.memory))
        infer = ThreadPoolExecutor(max_workers=2)
        embedder = FaceEmbedder(pack.recognizer, infer, 32, 0.0)
        serving = asyncio.create_task(embedder.serve())
        analyzer = StreamAnalyzer(
            "cam", cfg, pack.gates, FaceDetector(pack.detector, cfg.models), embedder, worker, infer, itertools.count(1)
        )
        stalled = threading.Event()
        worker.executor.submit(stalled.wait)  # the memory thread is busy: no frame can be stored
        results = analyzer.results(frames(), live=live)
        first = asyncio.create_task(anext(results))
        try:
            deadline = time.monotonic() + 30
            while taken < taken_while_stalled and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.5)  # time enough to take more, if it would
            assert taken == taken_while_stalled and not first.done()
            stalled.set()
            return [(await first).frame.t] + [r.frame.t async for r in results]
        finally:
            stalled.set()
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)
            await asyncio.to_thread(worker.close)
            infer.shutdown()

    times = asyncio.run(scenario())
    assert times == [0.2 * k for k in range(FRAMES)] and taken == FRAMES


def test_inference_gone_ends_the_results(cast: list[Person], pack: ModelPack, tmp_path: Path) -> None:
    """An inference executor shut down under a stream (the process stopping) ends its results with
    the error, instead of leaving them waiting for detections that cannot come."""
    cfg = load_config(overrides={"memory.db": str(tmp_path / "memory.db"), "mqtt.enabled": False}, environ={})

    async def frames() -> AsyncIterator[Frame]:
        for k in range(FRAMES):
            yield Frame("cam", k, 0.2 * k, time.time(), cast[0].image)

    async def scenario() -> None:
        worker = MemoryWorker(Memory(cfg.memory))
        infer = ThreadPoolExecutor(max_workers=2)
        infer.shutdown()
        embedder = FaceEmbedder(pack.recognizer, infer, 32, 0.0)
        analyzer = StreamAnalyzer(
            "cam", cfg, pack.gates, FaceDetector(pack.detector, cfg.models), embedder, worker, infer, itertools.count(1)
        )
        try:
            with pytest.raises(RuntimeError, match="shutdown"):
                await asyncio.wait_for(anext(analyzer.results(frames(), live=False)), 30)
        finally:
            await asyncio.to_thread(worker.close)

    asyncio.run(scenario())
