"""The one thread that owns the Memory (SQLite + FAISS are blocking and not shared across threads)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Concatenate, ParamSpec, TypeVar

from memory import Memory
from memory.records import FaceObservation, SpeakerEvidence, SpeechTurn, TrackEvidence

from .memory_port import faces_step, speaker_evidence_step, transcribed_step, turns_step

P = ParamSpec("P")
R = TypeVar("R")


class MemoryWorker:
    def __init__(self, memory: Memory) -> None:
        self.memory = memory
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memory")

    async def call(self, fn: Callable[Concatenate[Memory, P], R], *args: P.args, **kwargs: P.kwargs) -> R:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: fn(self.memory, *args, **kwargs))

    def call_blocking(self, fn: Callable[Concatenate[Memory, P], R], *args: P.args, **kwargs: P.kwargs) -> R:
        """The same from another worker thread (the voice path), which may wait."""
        return self.executor.submit(lambda: fn(self.memory, *args, **kwargs)).result()

    # --- the analyzers' memory port (streamer.memory_port.MemoryPort), served on this thread

    async def faces(
        self, observations: list[FaceObservation], evidence: list[TrackEvidence], track_ids: list[int]
    ) -> tuple[list[int | None], bool]:
        return await self.call(faces_step, observations, evidence, track_ids)

    def turns(self, turns: list[SpeechTurn], final: bool) -> tuple[list[int | None], bool]:
        return self.call_blocking(turns_step, turns, final)

    def speaker_evidence(self, ev: SpeakerEvidence) -> bool:
        return self.call_blocking(speaker_evidence_step, ev)

    def transcribed(self, texts: list[tuple[int, str | None]]) -> bool:
        return self.call_blocking(transcribed_step, texts)

    def close(self) -> None:
        """Blocking: finish queued calls, then flush and close the database."""
        self.executor.submit(self.memory.close).result()
        self.executor.shutdown(wait=True)
