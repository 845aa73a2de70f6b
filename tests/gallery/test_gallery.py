"""The gallery, static and live, rendered by headless Chromium: every card with its faces really
drawn, a page per person with timeline, clips and speech; after `forget`, nothing of the person."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from support.asked import ANNA_SAYS, Built
from support.chromium_tab import CARDS, IMAGES, chromium
from support.postgres import STORES

from memory import Memory, MemoryConfig
from memory.query import MemoryQuery
from streamer.api.server import ApiServer
from streamer.gallery.site import write_site

TOKEN = "gallery-secret"


def shot_dir(tmp_path: Path) -> Path:
    """Screenshots go to $GALLERY_SHOTS when set (to look at them), else to the test's folder."""
    folder = Path(os.environ.get("GALLERY_SHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def check_rendered(cards: list[dict[str, Any]], images: list[dict[str, Any]], people: set[str]) -> None:
    assert {c["title"] for c in cards} == people
    assert images, "no images on the page"
    for img in images:
        assert img["w"] > 0 and img["h"] > 0 and img["shown"] > 0, f"image {img['src']} did not render: {img}"


@pytest.mark.timeout(120)
def test_static_site_renders_every_face(built: Built, tmp_path: Path) -> None:
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "streamer", "gallery", "--db", str(built.db), "--out", str(site), "-q"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{site}: 3 people"
    shots = shot_dir(tmp_path)

    async def look() -> None:
        async with chromium(tmp_path / "profile") as tab:
            await tab.open((site / "index.html").as_uri())
            cards, images = await tab.js(CARDS), await tab.js(IMAGES)
            await tab.screenshot(shots / "gallery-index.png")
            check_rendered(cards, images, {"Anna", "Ben", f"<face_{built.cleo_face}>"})
            assert {c["tag"] for c in cards} == {f"<character_{built.character}>", "<character_2>", f"<face_{built.cleo_face}>"}
            # every card shows at least one of its faces (all three people were seen)
            per_card = await tab.js("[...document.querySelectorAll('.card')].map(c => [...c.querySelectorAll('img')].filter(i => i.naturalWidth > 0).length)")
            assert all(n >= 1 for n in per_card), per_card
            await tab.open((site / f"character_{built.character}.html").as_uri())
            await tab.screenshot(shots / "gallery-person.png")
            assert await tab.js("document.querySelectorAll('svg.timeline rect').length") >= 2
            said = await tab.js("document.querySelector('.said').innerText")
            assert all(s in said for s in ANNA_SAYS)
            assert "Ben" in await tab.js("[...document.querySelectorAll('.clip')].map(c => c.innerText).join(' ')")
            assert all(i["w"] > 0 for i in await tab.js(IMAGES))

    asyncio.run(look())
    assert (shots / "gallery-index.png").stat().st_size > 10_000


@pytest.mark.parametrize("original", STORES, indirect=True)
def test_static_site_after_forget(built: Built, tmp_path: Path) -> None:
    site = tmp_path / "site"
    assert write_site(built.db, site) == 3
    anna_crops = {p.name for p in (site / "crops").iterdir()}
    with Memory(MemoryConfig(db=str(built.db)), clock=built.clock) as memory:
        memory.forget(f"<character_{built.character}>")
    assert write_site(built.db, site) == 2  # written again into the same folder
    assert not (site / f"character_{built.character}.html").exists()
    assert len(list((site / "crops").iterdir())) < len(anna_crops)  # her crops went with her page
    for path in site.rglob("*"):
        if path.suffix == ".html":
            text = path.read_text()
            assert "Anna" not in text and not any(s in text for s in ANNA_SAYS), path


async def _until(what: str, check: Callable[[], Any]) -> None:
    for _ in range(100):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"waited for {what}")


@pytest.mark.timeout(120)
def test_live_gallery_with_token_and_forget_through_the_api(built: Built, tmp_path: Path) -> None:
    async def editor(fn: Callable[[Memory], Any]) -> Any:
        def run() -> Any:
            with Memory(MemoryConfig(db=str(built.db)), clock=built.clock) as memory:
                return fn(memory)

        return await asyncio.to_thread(run)

    async def test() -> None:
        query = MemoryQuery(built.db)
        server = ApiServer(query, "127.0.0.1", 0, TOKEN, editor)
        await server.start()
        base = f"http://127.0.0.1:{server.port}"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        try:
            async with aiohttp.ClientSession() as http:
                for headers in ({}, {"Authorization": "Bearer wrong"}):
                    async with http.get(f"{base}/gallery/", headers=headers) as r:
                        assert r.status == 401
                async with http.get(f"{base}/gallery/crops/1.jpg") as r:
                    assert r.status == 401
                async with http.get(f"{base}/gallery/", headers=auth) as r:
                    assert r.status == 200 and "Anna" in await r.text()
                async with http.get(f"{base}/gallery/face_99999.html", headers=auth) as r:
                    assert r.status == 404
            async with chromium(tmp_path / "profile") as tab:
                await tab.open(f"{base}/gallery/?token={TOKEN}")  # the cookie carries the token from here on
                check_rendered(await tab.js(CARDS), await tab.js(IMAGES), {"Anna", "Ben", f"<face_{built.cleo_face}>"})
                assert "token" not in await tab.js("location.href")
                await tab.screenshot(shot_dir(tmp_path) / "gallery-live.png")
                anna_img = await tab.js("document.querySelector('.card[data-tag^=\"<character_1\"] img').src")
                async with aiohttp.ClientSession() as http:
                    async with http.post(f"{base}/api/forget", json={"target": f"<character_{built.character}>"}) as r:
                        assert r.status == 401
                    async with http.post(f"{base}/api/forget", json={"target": "nobody"}, headers=auth) as r:
                        assert r.status == 400 and "node id or a tag" in (await r.json())["error"]
                    async with http.post(f"{base}/api/forget", json={"target": f"<character_{built.character}>"}, headers=auth) as r:
                        assert r.status == 200, await r.text()
                        assert sorted((await r.json())["nodes"]) == sorted([built.anna_face, built.anna_voice])
                    async with http.get(anna_img, headers=auth) as r:
                        assert r.status == 404
                    async with http.get(f"{base}/gallery/character_{built.character}.html", headers=auth) as r:
                        assert r.status == 404
                await tab.open(f"{base}/gallery/")
                check_rendered(await tab.js(CARDS), await tab.js(IMAGES), {"Ben", f"<face_{built.cleo_face}>"})
                assert "Anna" not in await tab.js("document.body.innerHTML")
        finally:
            await server.stop()
            query.close()

    asyncio.run(test())
