"""A stream removed while the run goes on ends in the memory (its clip closes), also when it is the
last stream of a run without configured cameras, and when the run ends while the removal is under way.
At the run's end its streams end together, not one after another."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from memory import Memory

from streamer.app import App
from streamer.config import CameraConfig
from streamer.errors import ShuttingDown
from streamer.faces.models import ModelPack
from streamer.opening import open_camera
from streamer.records import Frame
from streamer.sources.state import SourceStats

from .live import live_config, running, until


def _add(app: App, clip: Path) -> None:
    app.add_source(open_camera(CameraConfig(name="door", url=str(clip)), app.cfg))


def test_the_last_stream_of_a_run_without_cameras_removed(people_clip: Path, pack: ModelPack, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(App(live_config(tmp_path / "memory.db", [])), pack) as app:
            _add(app, people_clip)
            await until(lambda: app.analyzers["door"].stats.faces > 0, 60, "a face stored")
            await app.remove_source("door")
            assert "door" not in app.sources
            assert len(await app.worker.call(Memory.clips, "door")) == 1  # its end reached the memory
            _add(app, people_clip)  # the run goes on without streams, until stopped
            await until(lambda: app.analyzers["door"].stats.faces > 0, 60, "a face stored again")

    asyncio.run(scenario())


def test_a_removal_under_way_as_the_run_ends(people_clip: Path, pack: ModelPack, tmp_path: Path) -> None:
    cfg = live_config(tmp_path / "memory.db", [])

    async def scenario() -> None:
        async with running(App(cfg), pack) as app:
            _add(app, people_clip)
            await until(lambda: app.analyzers["door"].stats.faces > 0, 60, "a face stored")
            removal = asyncio.create_task(app.remove_source("door"))
            await asyncio.sleep(0)  # under way as the block's end stops the run
        await removal

    asyncio.run(scenario())
    with Memory(cfg.memory) as memory:
        assert len(memory.clips("door")) == 1


def test_a_stream_offered_to_an_ending_run_is_refused(people_clip: Path, pack: ModelPack, tmp_path: Path) -> None:
    cfg = live_config(tmp_path / "memory.db", [])

    async def scenario() -> None:
        async with running(App(cfg), pack) as app:
            app.stop()
            source = open_camera(CameraConfig(name="door", url=str(people_clip)), app.cfg)
            try:
                with pytest.raises(ShuttingDown, match="the run is ending"):
                    app.add_source(source)
            finally:
                await source.close()
            assert "door" not in app.sources

    asyncio.run(scenario())
    with Memory(cfg.memory) as memory:
        assert memory.clips("door") == []


class SlowToClose:
    """A live source with no frames whose close takes as long as a camera's reader does to give up
    a blocking read: it ends once every source of the run has begun closing, or gives up waiting."""

    is_live = True
    duration = None
    audio = None

    def __init__(self, name: str, closing: list[str], everyone: int) -> None:
        self.name = name
        self.stats = SourceStats()
        self.closing = closing
        self.everyone = everyone
        self.waited_alone = False

    async def frames(self) -> AsyncIterator[Frame]:
        await asyncio.Event().wait()
        yield  # an async generator that never yields a frame

    async def close(self) -> None:
        self.closing.append(self.name)
        try:
            await asyncio.wait_for(self._all_closing(), 10)
        except TimeoutError:
            self.waited_alone = True

    async def _all_closing(self) -> None:
        while len(self.closing) < self.everyone:
            await asyncio.sleep(0.01)


def test_the_streams_end_together_when_the_run_ends(pack: ModelPack, tmp_path: Path) -> None:
    cfg = live_config(tmp_path / "memory.db", [])
    closing: list[str] = []
    sources = [SlowToClose(name, closing, 3) for name in ("door", "hall", "yard")]

    async def scenario() -> None:
        async with running(App(cfg), pack) as app:
            for source in sources:
                app.add_source(source)

    asyncio.run(scenario())
    assert sorted(closing) == ["door", "hall", "yard"]
    assert not any(s.waited_alone for s in sources), "a stream began to end only after another had ended"
