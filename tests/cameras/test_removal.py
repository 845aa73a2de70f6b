"""A stream removed while the run goes on ends in the memory (its clip closes), also when it is the
last stream of a run without configured cameras, and when the run ends while the removal is under way."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from memory import Memory

from streamer.app import App
from streamer.config import CameraConfig
from streamer.errors import ShuttingDown
from streamer.faces.models import ModelPack
from streamer.opening import open_camera

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
