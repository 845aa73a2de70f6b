"""ArcFace embeddings, microbatched across tracks and sources.

Every source hands its due faces to one FaceEmbedder; faces that arrive within `max_wait_ms` of each
other go through the network together (up to `batch_size`), so one model session serves many cameras.
A batch waits only while another caller (a source's task) that embedded lately could still join it:
with one source, or one source with faces due, waiting would only add latency.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

LATELY_SECONDS = 5.0  # a caller that embedded this recently may join a batch (tracks re-embed every 2 s)


@dataclass
class Embeddings:
    vectors: npt.NDArray[np.float32]  # (n, d) L2-normalised
    quality: npt.NDArray[np.float32]  # (n,) L2 norm of the raw embedding (M3-Agent's face quality)


def embed_now(recognizer: Any, aligned: npt.NDArray[np.uint8]) -> Embeddings:
    """Blocking: (n, 112, 112, 3) BGR aligned faces -> embeddings."""
    if len(aligned) == 0:
        return Embeddings(np.zeros((0, 512), np.float32), np.zeros(0, np.float32))
    raw = np.asarray(recognizer.get_feat(list(aligned)), dtype=np.float32)
    norm = np.linalg.norm(raw, axis=1)
    return Embeddings(raw / np.maximum(norm, 1e-12)[:, None], norm)


@dataclass
class _Request:
    faces: npt.NDArray[np.uint8]
    future: asyncio.Future[Embeddings]
    caller: asyncio.Task[Any] | None


@dataclass
class BatchStats:
    batches: int = 0
    faces: int = 0
    seconds: float = 0.0
    sizes: list[int] = field(default_factory=list)


class FaceEmbedder:
    """Async front of the recognizer. Call `embed` from any task; run `serve()` once as a task."""

    def __init__(self, recognizer: Any, executor: Executor, batch_size: int, max_wait_ms: float) -> None:
        self._rec = recognizer
        self._executor = executor
        self._batch_size = batch_size
        self._max_wait = max_wait_ms / 1000.0
        self._queue: asyncio.Queue[_Request] = asyncio.Queue()
        self._lately: dict[asyncio.Task[Any] | None, float] = {}  # caller -> loop time of its last request
        self.stats = BatchStats()

    async def embed(self, aligned: npt.NDArray[np.uint8]) -> Embeddings:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Embeddings] = loop.create_future()
        caller = asyncio.current_task()
        self._lately[caller] = loop.time()
        await self._queue.put(_Request(aligned, fut, caller))
        return await fut

    def _others_may_come(self, batch: list[_Request], now: float) -> bool:
        for caller, seen in list(self._lately.items()):
            if now - seen > LATELY_SECONDS or (caller is not None and caller.done()):
                del self._lately[caller]
        waiting = {r.caller for r in batch}
        return any(caller not in waiting for caller in self._lately)

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            count = len(batch[0].faces)
            deadline = loop.time() + self._max_wait
            while count < self._batch_size and self._others_may_come(batch, loop.time()):
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    req = await asyncio.wait_for(self._queue.get(), timeout)
                except asyncio.TimeoutError:
                    break
                batch.append(req)
                count += len(req.faces)
            await self._run(batch)

    async def _run(self, batch: list[_Request]) -> None:
        faces = np.concatenate([r.faces for r in batch])
        start = time.perf_counter()
        try:
            result = await asyncio.get_running_loop().run_in_executor(self._executor, embed_now, self._rec, faces)
        except Exception as e:  # a failed batch must fail its callers, not the server task
            for r in batch:
                if not r.future.done():
                    r.future.set_exception(e)
            return
        self.stats.batches += 1
        self.stats.faces += len(faces)
        self.stats.seconds += time.perf_counter() - start
        offset = 0
        for r in batch:
            n = len(r.faces)
            if not r.future.done():
                r.future.set_result(Embeddings(result.vectors[offset : offset + n], result.quality[offset : offset + n]))
            offset += n
