"""Live RTSP cameras against a real RTSP server: frames, kills, hangs, absence, slow consumers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator

import numpy as np
import pytest

from streamer.config import CameraConfig, SourceDefaults
from streamer.sources import Source, SourceState, open_source
from support.ports import free_port
from support.rtsp import RtspServer

from .watch import Watcher

OPEN_SECONDS = 15  # a first open of the test pattern takes about 2 s


@pytest.fixture
def camera() -> Iterator[RtspServer]:
    with RtspServer(pattern="ball") as server:
        yield server


def live(url: str, defaults: SourceDefaults) -> Source:
    return open_source(CameraConfig(name="cam", url=url), defaults)


def run(test: Callable[[], Awaitable[None]], seconds: float) -> None:
    asyncio.run(asyncio.wait_for(test(), seconds))


@pytest.mark.timeout(40)
def test_frames_arrive_live_at_the_sampled_rate(camera: RtspServer, live_defaults: SourceDefaults) -> None:
    async def test() -> None:
        src = live(camera.url, live_defaults)
        assert src.is_live
        async with Watcher(src) as w:
            await w.until_frames(15, OPEN_SECONDS)
            assert w.states[0] == SourceState.LIVE and src.stats.state == SourceState.LIVE
            ts = [f.t for f in w.frames]
            assert np.diff(ts) == pytest.approx([0.2] * (len(ts) - 1), abs=0.041)
            assert [f.index for f in w.frames[:3]] == [0, 5, 10]
            assert w.frames[0].image.shape == (240, 320, 3)
            assert src.stats.fps_in == pytest.approx(25, rel=0.5) and src.stats.fps_sampled == pytest.approx(5, rel=0.5)
            assert src.stats.reconnects == 0 and src.stats.last_error is None
            assert await w.close() < 1.0
        assert src.stats.state == SourceState.STOPPED and w.states[-1] == SourceState.STOPPED

    run(test, 30)


@pytest.mark.timeout(60)
def test_killed_server_reconnects_with_monotonic_time(camera: RtspServer, live_defaults: SourceDefaults) -> None:
    async def test() -> None:
        src = live(camera.url, live_defaults)
        async with Watcher(src) as w:
            await w.until_frames(5, OPEN_SECONDS)
            camera.kill()
            killed_at, before = time.monotonic(), len(w.frames)
            await w.until_state(SourceState.RECONNECTING, 3 * live_defaults.read_timeout_seconds)
            await asyncio.sleep(1.5)  # down a while: reconnects are refused
            assert src.stats.reconnects >= 1 and src.stats.state == SourceState.RECONNECTING
            assert src.stats.last_error
            camera.start()
            await w.until_state(SourceState.LIVE, OPEN_SECONDS)
            await w.until_frames(before + 5, 5)
            down = time.monotonic() - killed_at
        ts = [f.t for f in w.frames]
        assert np.all(np.diff(ts) > 0)
        assert max(np.diff(ts)) >= 0.5 * down  # the outage shows as a gap in stream time, not a jump back
        assert w.states[:3] == [SourceState.LIVE, SourceState.RECONNECTING, SourceState.LIVE]

    run(test, 50)


@pytest.mark.timeout(60)
def test_hung_server_is_left_within_the_timeouts_and_recovers(camera: RtspServer, live_defaults: SourceDefaults) -> None:
    async def test() -> None:
        src = live(camera.url, live_defaults)
        async with Watcher(src) as w:
            await w.until_frames(5, OPEN_SECONDS)
            camera.freeze()
            # PyAV's read timeout fires after about twice the read timeout
            left = await w.until(
                "leaving live", lambda: src.stats.state != SourceState.LIVE, 3 * live_defaults.read_timeout_seconds + 1
            )
            assert src.stats.state == SourceState.RECONNECTING
            await asyncio.sleep(2)  # reconnects to a hung server time out too
            assert src.stats.state == SourceState.RECONNECTING and src.stats.reconnects >= 1
            camera.thaw()
            back = await w.until_state(SourceState.LIVE, OPEN_SECONDS)
            before = len(w.frames)
            await w.until_frames(before + 5, 5)
            print(f"left live {left:.1f}s after the hang, live again {back:.1f}s after it ended")

    run(test, 50)


@pytest.mark.timeout(40)
def test_close_during_a_hung_read_returns_at_once(camera: RtspServer, live_defaults: SourceDefaults) -> None:
    async def test() -> None:
        src = live(camera.url, live_defaults)
        async with Watcher(src) as w:
            await w.until_frames(5, OPEN_SECONDS)
            camera.freeze()
            await asyncio.sleep(0.3)  # the reader is now blocked in a read
            assert await w.close() < 1.0
        assert src.stats.state == SourceState.STOPPED
        # the thread itself leaves once its read times out
        t0 = time.monotonic()
        while any(t.name == "source-cam" for t in threading.enumerate()):
            assert time.monotonic() - t0 < 3 * live_defaults.read_timeout_seconds, "reader thread still running"
            await asyncio.sleep(0.05)

    run(test, 30)


@pytest.mark.timeout(30)
def test_absent_server_is_retried_with_backoff_until_closed(live_defaults: SourceDefaults) -> None:
    async def test() -> None:
        src = live(f"rtsp://127.0.0.1:{free_port()}/cam", live_defaults)
        async with Watcher(src) as w:
            await w.until("three reconnects", lambda: src.stats.reconnects >= 3, 5)
            await asyncio.sleep(2)
            # backoff 0.2, 0.4, 0.8, then 1.0 s: a handful of tries, not a busy loop
            assert 4 <= src.stats.reconnects <= 8
            assert src.stats.state == SourceState.RECONNECTING and w.frames == []
            assert "refused" in (src.stats.last_error or "").lower()
            assert await w.close() < 1.0
        assert src.stats.state == SourceState.STOPPED

    run(test, 20)


@pytest.mark.timeout(40)
def test_slow_consumer_drops_oldest(camera: RtspServer, live_defaults: SourceDefaults) -> None:
    async def test() -> None:
        src = live(camera.url, live_defaults.model_copy(update={"queue_size": 2}))
        got = []
        async for frame in src.frames():
            got.append(frame)
            if len(got) == 4:
                break
            await asyncio.sleep(1.0)  # 5 frames a second arrive; the consumer takes one
        await src.close()
        assert src.stats.dropped >= 5
        assert np.diff([f.t for f in got[1:]]).min() >= 0.6  # it sees recent frames, not a backlog

    run(test, 30)


@pytest.mark.timeout(40)
def test_still_picture_is_frozen_then_live(still_clip: object, live_defaults: SourceDefaults) -> None:
    async def test() -> None:
        with RtspServer(file=str(still_clip)) as server:
            src = live(server.url, live_defaults)
            async with Watcher(src) as w:
                await w.until_state(SourceState.FROZEN, OPEN_SECONDS)
                frozen_at = w.frames[-1].t
                await w.until_state(SourceState.LIVE, 5)
                live_at = w.frames[-1].t
        assert w.states[:3] == [SourceState.LIVE, SourceState.FROZEN, SourceState.LIVE]
        assert 1.9 <= frozen_at <= 2.7  # still from 1 s, frozen after 1 s more
        assert 3.9 <= live_at <= 4.5  # moving again at 4 s

    run(test, 30)
