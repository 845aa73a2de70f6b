"""A WHEP source pulling from a real WHEP server (aiortc playing a file): frames, audio, loss, reconnects."""

from __future__ import annotations

import asyncio
import secrets
import socket
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer

from streamer.config import CameraConfig, Config, SourceDefaults
from streamer.records import SAMPLE_RATE, Frame
from streamer.opening import open_camera
from streamer.sources import AudioBuffer, SourceState
from streamer.webrtc.peer import new_peer
from streamer.webrtc.whep import WhepSource, http_url

from .conftest import until


class WhepServer:
    """Plays `video` (looped, with its audio) to every viewer that posts an offer to /whep/<name>."""

    def __init__(self, video: Path, port: int) -> None:
        self.video, self.port = video, port
        self.sessions: dict[str, tuple[RTCPeerConnection, MediaPlayer]] = {}
        self.deleted = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.add_routes([web.post("/whep/{name}", self._post), web.delete("/whep/{name}/{session}", self._delete)])
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        """Go away: close every peer (as a crashed or restarted server would lose them) and the port."""
        for session in list(self.sessions):
            await self._end(session)
        assert self._runner is not None
        await self._runner.cleanup()

    async def _post(self, request: web.Request) -> web.Response:
        pc, player = new_peer(), MediaPlayer(str(self.video), loop=True)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=await request.text(), type="offer"))
        pc.addTrack(player.video)
        pc.addTrack(player.audio)
        await pc.setLocalDescription(await pc.createAnswer())
        session = secrets.token_hex(4)
        self.sessions[session] = (pc, player)
        return web.Response(
            status=201,
            text=pc.localDescription.sdp,
            content_type="application/sdp",
            headers={"Location": f"/whep/{request.match_info['name']}/{session}"},
        )

    async def _delete(self, request: web.Request) -> web.Response:
        if request.match_info["session"] not in self.sessions:
            raise web.HTTPNotFound()
        self.deleted += 1
        await self._end(request.match_info["session"])
        return web.Response()

    async def _end(self, session: str) -> None:
        pc, player = self.sessions.pop(session)
        player.video.stop()
        player.audio.stop()
        await pc.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def defaults() -> SourceDefaults:
    """Short timeouts and backoff so a lost server shows within seconds."""
    return SourceDefaults(
        open_timeout_seconds=3.0, read_timeout_seconds=1.0, backoff_initial_seconds=0.2, backoff_max_seconds=1.0
    )


def test_whep_urls_map_to_http() -> None:
    assert http_url("whep://cam.local:8889/live/whep") == "http://cam.local:8889/live/whep"
    assert http_url("WHEPS://cam.local/live") == "https://cam.local/live"
    with pytest.raises(ValueError):
        http_url("rtsp://cam.local/live")


@pytest.mark.timeout(60)
def test_pulls_frames_and_audio_and_reconnects_when_the_server_comes_back(tone_clip: Path, defaults: SourceDefaults) -> None:
    async def test() -> None:
        port = _free_port()
        server = WhepServer(tone_clip, port)
        await server.start()
        source = open_camera(CameraConfig(name="pull", url=f"whep://127.0.0.1:{port}/whep/cam"), Config(sources=defaults))
        assert isinstance(source, WhepSource) and source.is_live
        frames: list[Frame] = []

        async def consume() -> None:
            async for frame in source.frames():
                frames.append(frame)

        consumer = asyncio.create_task(consume())
        try:
            first = await until("10 frames", lambda: len(frames) >= 10, 10)
            print(f"10 sampled frames {first:.2f} s after the pull started")
            assert source.stats.state == SourceState.LIVE and source.stats.reconnects == 0
            assert frames[0].image.shape == (240, 320, 3) and frames[0].stream == "pull"
            assert np.diff([f.t for f in frames[:10]]) == pytest.approx([0.2] * 9, abs=0.05)
            await until("a second of audio", lambda: source.stats.audio_seconds >= 1.0, 5)
            _assert_tone(source.audio, 440)

            await server.stop()
            await until("reconnecting", lambda: source.stats.state == SourceState.RECONNECTING, 3)
            await until("two reconnects", lambda: source.stats.reconnects >= 2, 5)
            assert source.stats.last_error
            before = len(frames)

            await server.start()
            back = await until("live again", lambda: source.stats.state == SourceState.LIVE, 5)
            await until("more frames", lambda: len(frames) >= before + 5, 5)
            print(f"live again {back:.2f} s after the server came back")
            assert source.stats.last_error is None
            ts = [f.t for f in frames]
            assert np.all(np.diff(ts) > 0), "stream time never goes back across a reconnect"
            assert not consumer.done()
        finally:
            await source.close()
            await asyncio.wait_for(consumer, 5)
        assert source.stats.state == SourceState.STOPPED
        assert server.deleted == 1 and not server.sessions, "closing the source ends its session on the server"
        await server.stop()

    asyncio.run(asyncio.wait_for(test(), 50))


def _assert_tone(audio: AudioBuffer | None, hz: float) -> None:
    """What the buffer holds: gap-less 16 kHz mono float chunks, the last second of them carrying the tone."""
    assert audio is not None
    chunks = []
    while (chunk := audio.get(0)) is not None:
        chunks.append(chunk)
    assert np.array([b.t - a.t_end for a, b in zip(chunks, chunks[1:])]) == pytest.approx(0, abs=1e-6), "gap-less"
    samples = np.concatenate([c.samples for c in chunks])[-SAMPLE_RATE:]
    assert samples.dtype == np.float32 and samples.ndim == 1 and len(samples) == SAMPLE_RATE
    spectrum = np.abs(np.fft.rfft(samples))
    peak = np.argmax(spectrum) * SAMPLE_RATE / len(samples)
    assert peak == pytest.approx(hz, abs=5), "16 kHz mono: the tone must sit at its own frequency"
    assert np.abs(samples).max() > 0.03, "the tone is audible, not silence"
