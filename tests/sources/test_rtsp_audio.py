"""Audio from live RTSP streams (a real gst-rtsp-server): with video on one clock across reconnects, and alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from streamer.config import CameraConfig, SourceDefaults
from streamer.records import Frame
from streamer.sources import Source, SourceState, open_source
from streamer.sources.state import AudioState
from support.rtsp import RtspServer, serve_with_audio

from .listen import Listener, assert_contiguous, assert_well_formed, onset, peak_hz, samples
from .watch import Watcher

OPEN_SECONDS = 15


def serve_audio_only(path: Path) -> str:
    return f'( filesrc location="{path}" ! qtdemux name=d d.audio_0 ! queue ! aacparse ! rtpmp4gpay name=pay0 pt=97 )'


def live(url: str, defaults: SourceDefaults, fps: float | None = None) -> Source:
    src = open_source(CameraConfig(name="cam", url=url, fps=fps), defaults, audio=True)
    assert isinstance(src, Source) and src.audio is not None and src.audio.drop_oldest
    return src


def plays(frames: list[Frame]) -> list[list[Frame]]:
    """The frames of each connection: a reconnect shows as a gap in stream time."""
    cuts = [0] + [i + 1 for i, (a, b) in enumerate(zip(frames, frames[1:])) if b.t - a.t > 0.5] + [len(frames)]
    return [frames[a:b] for a, b in zip(cuts, cuts[1:])]


@pytest.mark.timeout(60)
def test_camera_audio_shares_the_video_clock_across_a_reconnect(sync_clip: Path, live_defaults: SourceDefaults) -> None:
    """The server plays the clip once per connection (4 s), then the stream ends and the source
    reconnects. On both plays the flash and the tone agree, and both kinds of time go on forward.

    Until the first RTCP sender report, FFmpeg times each RTP stream from its own first packet;
    the report then aligns them, which shows as a small forward jump in the first fraction of a
    second. Before that nothing can be lined up, so contiguity is checked after it.

    Every frame must reach the test (the first white one is the flash, the first of a play its start),
    while a live source keeps only the newest few when its reader runs ahead: right after each open
    the frames read while opening come in a burst (~1 s of them), and under load the loop takes them
    only after it (21 dropped, the flash or a play's start among them). Here it holds them all."""

    async def test() -> None:
        with RtspServer(launch=serve_with_audio(sync_clip)) as server:
            every_frame = live_defaults.model_copy(update={"queue_size": 250})  # two plays: at most 200 frames
            src = live(server.url, every_frame, fps=25)
            listener = Listener(src.audio)
            async with Watcher(src) as w:
                await w.until("the first play", lambda: src.stats.reconnects >= 1, OPEN_SECONDS)
                await w.until("the second flash", lambda: flashes(w.frames) == 2, OPEN_SECONDS)
                await asyncio.sleep(0.5)
            chunks = listener.stop()
        assert src.stats.audio_state == AudioState.OK and src.stats.audio_decode_errors == 0
        assert src.stats.audio_dropped_seconds == 0 and src.stats.dropped == 0
        assert_well_formed(chunks)
        assert np.all(np.diff([f.t for f in w.frames]) > 0)
        for play in plays(w.frames)[:2]:
            start, end = play[0].t, play[-1].t
            heard = [c for c in chunks if start - 0.5 < c.t < end]
            assert_contiguous([c for c in heard if c.t > start + 0.5])
            flash = white(play)
            assert flash is not None and flash == pytest.approx(start + 2, abs=0.2)
            assert onset(heard) == pytest.approx(flash, abs=0.01)

    asyncio.run(asyncio.wait_for(test(), 50))


def white(frames: list[Frame]) -> float | None:
    return next((f.t for f in frames if f.image.mean() > 128), None)


def flashes(frames: list[Frame]) -> int:
    return sum(white(play) is not None for play in plays(frames))


@pytest.mark.timeout(40)
def test_audio_only_stream(av_clip: Path, live_defaults: SourceDefaults) -> None:
    async def test() -> None:
        with RtspServer(launch=serve_audio_only(av_clip)) as server:
            src = live(server.url, live_defaults)
            listener = Listener(src.audio)
            async with Watcher(src) as w:
                await w.until_state(SourceState.LIVE, OPEN_SECONDS)
                await w.until("2 s of audio", lambda: listener.seconds >= 2, 10)
            chunks = listener.stop()
        assert w.frames == [] and src.stats.frames_decoded == 0
        assert_well_formed(chunks)
        assert_contiguous(chunks[:40])
        assert chunks[0].t == 0.0
        assert peak_hz(samples(chunks)[:32_000]) == pytest.approx(440, abs=2)

    asyncio.run(asyncio.wait_for(test(), 30))
