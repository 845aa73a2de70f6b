"""An App with live cameras running in the test's loop, and waiting on what it does."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from streamer.app import App
from streamer.config import Config, load_config
from streamer.faces.models import ModelPack

# Short timeouts and backoff so an outage and its end show within seconds.
LIVE_SETTINGS: dict[str, Any] = {
    "mqtt.enabled": False,
    "sources.open_timeout_seconds": 2,
    "sources.read_timeout_seconds": 2,
    "sources.backoff_initial_seconds": 0.2,
    "sources.backoff_max_seconds": 1,
}


def live_config(db: Path, cameras: list[dict[str, Any]] | None = None, **more: Any) -> Config:
    overrides = {**LIVE_SETTINGS, "memory.db": str(db), **more}
    if cameras is not None:
        overrides["cameras"] = cameras
    return load_config(overrides=overrides, environ={})


@asynccontextmanager
async def running(app: App, pack: ModelPack) -> AsyncIterator[App]:
    """`app` runs until the block ends; then it stops, and a failure of the run is raised."""
    run = asyncio.create_task(app.run(pack))
    try:
        await asyncio.wait_for(_ready(app, run), 30)
        yield app
    finally:
        app.stop()
        await asyncio.wait_for(run, 30)


async def _ready(app: App, run: asyncio.Task[Any]) -> None:
    waiter = asyncio.create_task(app.wait_ready())
    await asyncio.wait([waiter, run], return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if run.done():
        run.result()  # raises the run's failure


async def until(check: Callable[[], bool], timeout: float, what: str, detail: Callable[[], object] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} {detail()}")
        await asyncio.sleep(0.05)


def analysed(app: App, stream: str) -> int:
    return app.analyzers[stream].stats.frames


def state(app: App, stream: str) -> str:
    return str(app.stream_status(app.sources[stream])["state"])


async def scrape(port: int, path: str = "/metrics") -> str:
    def get() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.read().decode()

    return await asyncio.to_thread(get)
