"""The built-in push page in a real (headless) Chromium with its fake camera, driven over the DevTools protocol."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from support.chromium_tab import Tab, browser, chromium

from streamer.faces.models import ModelPack
from streamer.sources import SourceState

from .conftest import TOKEN, app_config, running_app, until

# a fake camera and microphone that need no permission prompt; QUIC off keeps WebRTC on plain UDP
MEDIA_FLAGS = ("--disable-quic", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream")


class PushPage:
    """The push page in one tab: just enough to type, click and read."""

    def __init__(self, tab: Tab) -> None:
        self.js = tab.js

    async def status(self) -> str:
        return str(await self.js("document.getElementById('status').textContent"))

    async def until_status(self, wanted: str, timeout: float) -> str:
        t0 = time.monotonic()
        while wanted not in (status := await self.status()):
            assert time.monotonic() - t0 < timeout, f"page status {status!r}, waited for {wanted!r}"
            await asyncio.sleep(0.1)
        return status

    async def push(self, stream: str, token: str) -> None:
        """What a person does: type the name and token, press Start."""
        await self.js(
            f"document.getElementById('stream').value = {json.dumps(stream)};"
            f"document.getElementById('token').value = {json.dumps(token)};"
            "document.getElementById('start').click()"
        )


@asynccontextmanager
async def push_page(url: str, profile: Path) -> AsyncIterator[PushPage]:
    async with chromium(profile, MEDIA_FLAGS) as tab:
        await tab.open(url)
        yield PushPage(tab)


@pytest.mark.timeout(90)
def test_the_page_pushes_the_browser_camera(pack: ModelPack, tmp_path: Path) -> None:
    browser()

    async def test() -> None:
        async with running_app(app_config(tmp_path / "m.db"), pack) as running:
            async with push_page(running.base + "/", tmp_path / "profile") as page:
                await page.push("laptop", "wrong")
                assert "401" in await page.until_status("error", 15)
                assert "laptop" not in running.app.sources

                await page.push("laptop", TOKEN)
                await page.until_status("pushing", 15)
                source = running.app.sources["laptop"]
                took = await until("10 analysed frames", lambda: running.app.analyzers["laptop"].stats.frames >= 10, 15)
                print(f"10 frames analysed {took:.1f} s after the page said pushing")
                assert source.stats.state in (SourceState.LIVE, SourceState.FROZEN)
                assert source.stats.fps_sampled == pytest.approx(5, abs=1.5)
                assert source.stats.audio_seconds > 0, "the fake microphone's audio arrives too"

                await page.js("document.getElementById('stop').click()")
                await page.until_status("stopped", 5)
                await until("the stream to end", lambda: "laptop" not in running.app.sources, 5)
                assert source.stats.state == SourceState.STOPPED
                assert not running.task.done()

    asyncio.run(asyncio.wait_for(test(), 80))
