"""A camera's frame leaves the analyzer as soon as its faces are stored, not when the next frame arrives
(it comes 200 ms later at 5 fps: waiting for it delayed every newcomer's node.created by a frame)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from streamer.app import App
from streamer.demo.cast import Person
from streamer.faces.models import ModelPack
from streamer.records import Frame
from streamer.sources.state import SourceStats

from .live import live_config, running, until


class HandFed:
    """A live source whose next frame comes only when the test gives it: the camera stands still between."""

    is_live = True
    duration = None
    audio = None

    def __init__(self, name: str, image: npt.NDArray[np.uint8]) -> None:
        self.name = name
        self.stats = SourceStats()
        self.image = image
        self.wanted = asyncio.Event()
        self.given = 0

    async def frames(self) -> AsyncIterator[Frame]:
        while True:
            await self.wanted.wait()
            self.wanted.clear()
            self.given += 1
            yield Frame(self.name, self.given, 0.2 * self.given, time.time(), self.image)

    async def close(self) -> None:
        pass


def test_a_frame_is_handed_on_without_waiting_for_the_next(cast: list[Person], pack: ModelPack, tmp_path: Path) -> None:
    photo = cv2.copyMakeBorder(cast[0].image, 120, 120, 240, 240, cv2.BORDER_CONSTANT, value=(90, 90, 90))

    async def scenario() -> None:
        async with running(App(live_config(tmp_path / "memory.db", [])), pack) as app:
            source = HandFed("hand", photo)
            app.add_source(source)
            for k in (1, 2, 3):  # the first frame, then frames of a track already known
                source.wanted.set()
                await until(lambda: app.summary.video_seconds.get("hand") == 0.2 * k, 30, f"frame {k} handed on, no frame after it")
                assert source.given == k
            stats = app.analyzers["hand"].stats
            assert stats.faces == stats.faces_with_node == 3 and len(stats.nodes) == 1  # one person, known from the first frame

    asyncio.run(scenario())
