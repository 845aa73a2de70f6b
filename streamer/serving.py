"""A server that lives beside a run of the app (WHIP pushes, the memory API): up once the app is
ready, down when it stops, and the app stopped if the server side ends first."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .app import App, RunSummary


async def run_serving(
    app: App, run: Awaitable[RunSummary], start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]]
) -> RunSummary:
    """Runs `run` (a run of `app`), with `start()` once the app is ready and `stop()` when it ends."""
    task = asyncio.ensure_future(run)
    ready = asyncio.create_task(app.wait_ready(), name="app-ready")
    await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    if not ready.done():  # the app failed before it was up
        ready.cancel()
        return await task
    try:
        await start()
        return await asyncio.shield(task)
    finally:
        await stop()
        if not task.done():
            app.stop()
            await asyncio.gather(task, return_exceptions=True)
