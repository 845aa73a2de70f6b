"""Headless Chromium spoken to over the DevTools protocol: open a page, run a script, take a screenshot."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--remote-debugging-port=0", "--window-size=1100,800",
]  # fmt: skip


def browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    if os.environ.get("CI"):  # .ci/run installs it: missing there is a broken set-up, not a reason to skip
        pytest.fail("no Chromium (looked for chromium, chromium-browser, google-chrome)")
    pytest.skip("no Chromium (looked for chromium, chromium-browser, google-chrome)")


class Tab:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self._ids)
        await self._ws.send_json({"id": msg_id, "method": method, "params": params})
        async for msg in self._ws:
            reply = json.loads(msg.data)
            if reply.get("id") == msg_id:
                assert "error" not in reply, reply["error"]
                return dict(reply["result"])
        raise AssertionError("the browser closed the DevTools connection")

    async def js(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    async def open(self, url: str) -> None:
        """Navigates and waits until the page and every image on it have loaded (or failed)."""
        await self.js("window.stale = true")  # gone once the new document replaced this one
        await self.call("Page.navigate", url=url)
        t0 = time.monotonic()
        while not await self.js("!window.stale && document.readyState === 'complete' && [...document.images].every(i => i.complete)"):
            assert time.monotonic() - t0 < 20, f"{url} did not load"
            await asyncio.sleep(0.1)

    async def screenshot(self, path: Path) -> None:
        shot = await self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))


@asynccontextmanager
async def chromium(profile: Path, extra_flags: tuple[str, ...] = ()) -> AsyncIterator[Tab]:
    proc = subprocess.Popen([browser(), *FLAGS, *extra_flags, f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        port_file = profile / "DevToolsActivePort"
        t0 = time.monotonic()
        while not (port_file.is_file() and len(port_file.read_text().split()) >= 2):
            assert time.monotonic() - t0 < 30, "Chromium did not open its DevTools port"
            await asyncio.sleep(0.1)
        port = port_file.read_text().split()[0]
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as r:
                tabs = [t for t in await r.json() if t["type"] == "page"]
            async with http.ws_connect(tabs[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                yield Tab(ws)
    finally:
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 10)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)


# what a test asks of a rendered gallery page: its cards and how each image really rendered
CARDS = "[...document.querySelectorAll('.card')].map(c => ({tag: c.dataset.tag, title: c.querySelector('h2').textContent}))"
IMAGES = "[...document.images].map(i => ({src: i.getAttribute('src'), w: i.naturalWidth, h: i.naturalHeight, shown: i.getBoundingClientRect().width}))"
