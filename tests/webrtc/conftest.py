"""Real WebRTC peers on loopback: an App with its WHIP server, and aiortc clients that push files."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import aioice.ice
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer

from streamer.app import App
from streamer.config import Config, load_config
from streamer.faces.models import ModelPack
from streamer.webrtc.peer import new_peer
from streamer.whip_server import WhipServer

TOKEN = "s3cret-token"


@pytest.fixture(autouse=True)
def loopback_candidates(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """aioice leaves 127.0.0.1 out of its host candidates; without it, loopback peers never connect."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])
    yield


def app_config(db: Path, **overrides: object) -> Config:
    return load_config(
        overrides={
            "memory.db": str(db),
            "mqtt.enabled": False,
            "webrtc.whip_enabled": True,
            "webrtc.whip_port": 0,
            "webrtc.whip_token": TOKEN,
            **overrides,
        },
        environ={},
    )


@dataclass
class Running:
    app: App
    server: WhipServer
    task: asyncio.Task[object]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"


@asynccontextmanager
async def running_app(cfg: Config, pack: ModelPack) -> AsyncIterator[Running]:
    """An App that keeps running with no sources, and its WHIP server."""
    app = App(cfg, keep_running=True)
    task = asyncio.create_task(app.run(pack))
    await asyncio.wait_for(app.wait_ready(), 60)
    server = WhipServer(app)
    await server.start()
    try:
        yield Running(app, server, task)
    finally:
        await server.stop()
        app.stop()
        await asyncio.wait_for(task, 30)


async def until(what: str, check: Callable[[], bool], timeout: float) -> float:
    """Wait until check() holds; returns the seconds it took."""
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"{what} not within {timeout}s")
        await asyncio.sleep(0.02)
    return time.monotonic() - t0


async def gathered_offer(pc: RTCPeerConnection) -> str:
    await pc.setLocalDescription(await pc.createOffer())  # aiortc waits for every candidate
    return pc.localDescription.sdp


@dataclass
class Push:
    pc: RTCPeerConnection
    player: MediaPlayer
    location: str

    async def delete(self, base: str, token: str = TOKEN) -> int:
        async with aiohttp.ClientSession() as http:
            async with http.delete(base + self.location, headers={"Authorization": f"Bearer {token}"}) as r:
                return r.status

    async def close(self) -> None:
        for track in (self.player.video, self.player.audio):
            if track is not None:
                track.stop()
        await self.pc.close()


async def push_file(base: str, stream: str, video: Path, token: str = TOKEN) -> Push:
    """Push `video` (and its audio) the way a WHIP client does; fails the test unless 201."""
    player = MediaPlayer(str(video))
    pc = new_peer()
    for track in (player.video, player.audio):
        if track is not None:
            pc.addTransceiver(track, direction="sendonly")
    offer = await gathered_offer(pc)
    async with aiohttp.ClientSession() as http:
        headers = {"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"}
        async with http.post(f"{base}/whip/{stream}", data=offer, headers=headers) as r:
            body = await r.text()
            if r.status != 201:
                await Push(pc, player, "").close()
                raise AssertionError(f"push refused: {r.status} {body}")
            assert r.content_type == "application/sdp"
            location = r.headers["Location"]
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
    return Push(pc, player, location)


def ffmpeg(*args: str) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is needed to make test clips")
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, timeout=60)


@pytest.fixture(scope="session")
def tone_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 s of moving test pattern with a 440 Hz tone in 48 kHz stereo, like a camera with a microphone."""
    path = tmp_path_factory.mktemp("webrtc") / "tone.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=4",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=4",
        "-ac", "2", "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-bf", "0", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-shortest", str(path),
    )  # fmt: skip
    return path
