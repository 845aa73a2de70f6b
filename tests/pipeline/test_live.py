"""A live RTSP camera through the whole pipeline: killed and restarted, the streamer goes on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from memory import Memory
from streamer.app import App
from streamer.config import load_config
from streamer.demo.cast import Person
from streamer.demo.compose import Appearance, render_video
from streamer.faces.models import ModelPack
from streamer.sources import SourceState
from support.rtsp import RtspServer

pytestmark = pytest.mark.timeout(120)


async def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def test_camera_killed_and_restarted(cast: list[Person], media_dir: Path, pack: ModelPack, tmp_path: Path) -> None:
    video = media_dir / "live_one_person.mp4"
    render_video(video, cast, [Appearance(3, 0, 6, 0.5)])
    db = tmp_path / "memory.db"

    async def scenario() -> None:
        with RtspServer(file=video) as server:
            cfg = load_config(
                overrides={
                    "cameras": [{"name": "door", "url": server.url}],
                    "memory.db": str(db),
                    "mqtt.enabled": False,
                    "sources.open_timeout_seconds": 2,
                    "sources.read_timeout_seconds": 2,
                    "sources.backoff_initial_seconds": 0.2,
                    "sources.backoff_max_seconds": 1,
                },
                environ={},
            )
            app = App(cfg)
            run = asyncio.create_task(app.run(pack))
            await _until(lambda: "door" in app.analyzers and app.analyzers["door"].stats.faces_with_node > 3, 30, "an identity")
            server.kill()
            await _until(lambda: app.sources["door"].stats.state == SourceState.RECONNECTING, 10, "reconnecting")
            before = app.analyzers["door"].stats.faces
            await asyncio.sleep(1.0)
            assert not run.done()  # a camera that disappears is not the end of the process
            server.restart()
            await _until(lambda: app.analyzers["door"].stats.faces_with_node > before + 3, 30, "faces after the restart")
            assert app.sources["door"].stats.reconnects >= 1
            app.stop()
            await asyncio.wait_for(run, 20)

    asyncio.run(scenario())
    with Memory(load_config(overrides={"memory.db": str(db)}, environ={}).memory) as memory:
        faces = list(memory.export_faces())
        nodes = {f["node"] for f in faces} - {None}
        assert len(nodes) == 1  # the same person before and after the outage
        ts = [f["t"] for f in faces]
        assert ts == sorted(ts)  # stream time keeps going forward across the reconnect
