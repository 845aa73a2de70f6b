"""The camera list follows its config file while the App runs; a broken file changes nothing."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
import yaml

from streamer.app import App
from streamer.config import load_config
from streamer.faces.models import ModelPack
from streamer.reload import CameraReloader
from support.rtsp import RtspServer

from .live import LIVE_SETTINGS, analysed, running, until

pytestmark = pytest.mark.timeout(90, func_only=True)  # the session's clips and models are made under the global timeout

POLL_SECONDS = 0.2


def write_cameras(path: Path, cameras: dict[str, str], **fps: float) -> None:
    cams = [{"name": n, "url": u, **({"fps": fps[n]} if n in fps else {})} for n, u in cameras.items()]
    path.write_text(yaml.safe_dump({"cameras": cams}))


def test_cameras_follow_the_file(
    people_clip: Path, pack: ModelPack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="streamer.reload")
    config = tmp_path / "cameras.yaml"
    overrides = {**LIVE_SETTINGS, "memory.db": str(tmp_path / "memory.db")}

    async def scenario() -> None:
        with RtspServer(file=people_clip) as a, RtspServer(file=people_clip) as b, RtspServer(file=people_clip) as c:
            write_cameras(config, {"a": a.url, "b": b.url})
            app = App(load_config(config, overrides, environ={}), keep_running=True)
            reloader = CameraReloader(app, config, overrides, poll_seconds=POLL_SECONDS)
            watching = asyncio.create_task(reloader.run())
            try:
                async with running(app, pack):
                    await until(lambda: analysed(app, "a") >= 5 and analysed(app, "b") >= 5, 40, "a and b analysing")
                    kept = app.sources["a"]
                    kept_reconnects = kept.stats.reconnects  # a slow first open may already have retried once

                    write_cameras(config, {"a": a.url, "c": c.url})  # b out, c in
                    await until(lambda: set(app.sources) == {"a", "c"}, 10, "b removed, c added", lambda: set(app.sources))
                    at_swap = analysed(app, "a")
                    await until(lambda: analysed(app, "c") >= 5, 30, "c analysing")
                    assert app.sources["a"] is kept and analysed(app, "a") > at_swap  # untouched, still going
                    assert kept.stats.reconnects == kept_reconnects  # the swap never touched a

                    started = app.sources["c"]
                    write_cameras(config, {"a": a.url, "c": c.url}, c=2)  # a changed camera restarts
                    await until(lambda: app.sources.get("c", started) is not started, 10, "c restarted")
                    assert app.sources["a"] is kept

                    config.write_text("cameras:\n  - {name: 'not a name', url: x}\n")
                    await until(lambda: "reload ignored" in caplog.text, 10, "the broken file reported")
                    [line] = [r for r in caplog.records if "reload ignored" in r.getMessage()]
                    assert "cameras.0.name" in line.getMessage()
                    before = {n: analysed(app, n) for n in ("a", "c")}
                    await until(lambda: all(analysed(app, n) > before[n] for n in before), 20, "a and c going on")
                    assert set(app.sources) == {"a", "c"} and app.sources["a"] is kept
            finally:
                watching.cancel()
                await asyncio.gather(watching, return_exceptions=True)

    asyncio.run(scenario())
