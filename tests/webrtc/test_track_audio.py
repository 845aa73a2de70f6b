"""WebRTC audio into a TrackSource's AudioBuffer, from a real aiortc peer on loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from aiortc import RTCSessionDescription
from aiortc.contrib.media import MediaPlayer

from streamer.config import SourceDefaults
from streamer.records import Frame
from streamer.sources import SourceState
from streamer.sources.state import AudioState
from streamer.webrtc.peer import new_peer
from streamer.webrtc.push import PushSource
from sources.listen import Listener, assert_well_formed, onset, peak_hz, samples

from .conftest import ffmpeg, gathered_offer

# RTP gives audio and video unrelated clocks; they meet by arrival time, so they agree within the
# latency difference of the two paths (video is encoded and packetised in bigger pieces).
ARRIVAL_SLACK_SECONDS = 0.15


@pytest.fixture(scope="module")
def flash_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2.5 s: black, white from 1.0 s; silent, a 440 Hz tone from 1.0 s."""
    path = tmp_path_factory.mktemp("webrtc_audio") / "flash.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "color=c=black:s=320x240:r=25:d=2.5,drawbox=c=white:t=fill:enable='gte(t,1)'",
        "-f", "lavfi", "-i", "aevalsrc='if(gte(t,1),0.5*sin(2*PI*440*t),0)':s=48000:d=2.5",
        "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-bf", "0", "-pix_fmt", "yuv420p",
        "-c:a", "aac", str(path),
    )  # fmt: skip
    return path


async def push(source: PushSource, clip: Path) -> tuple[list[Frame], MediaPlayer]:
    """Play `clip` from one peer into `source` through another; returns the frames once the clip has ended."""
    player, sender, receiver = MediaPlayer(str(clip)), new_peer(), new_peer()
    for track in (player.video, player.audio):
        sender.addTransceiver(track, direction="sendonly")
    source.attach(receiver)
    await receiver.setRemoteDescription(RTCSessionDescription(sdp=await gathered_offer(sender), type="offer"))
    await receiver.setLocalDescription(await receiver.createAnswer())
    await sender.setRemoteDescription(receiver.localDescription)
    try:
        return [f async for f in source.frames()], player  # a push ends when its peer's video ends
    finally:
        await sender.close()


@pytest.mark.timeout(40)
def test_audio_arrives_as_chunks_on_the_stream_clock(flash_clip: Path) -> None:
    async def test() -> None:
        source = PushSource("cam", fps=25, defaults=SourceDefaults())
        listener = Listener(source.audio)
        frames, _ = await push(source, flash_clip)
        chunks = listener.join()
        assert source.stats.state == SourceState.ENDED and source.audio is not None and source.audio.done
        assert source.stats.audio_state == AudioState.OK
        assert source.stats.audio_seconds == pytest.approx(sum(c.seconds for c in chunks))
        assert source.stats.audio_seconds == pytest.approx(2.5, abs=0.3)
        assert_well_formed(chunks)
        assert peak_hz(samples(chunks)[-16_000:]) == pytest.approx(440, abs=5)
        flash = next(f.t for f in frames if f.image.mean() > 128)
        print(f"flash at {flash:.3f} s, tone at {onset(chunks):.3f} s of stream time")
        assert onset(chunks) == pytest.approx(flash, abs=ARRIVAL_SLACK_SECONDS)

    asyncio.run(asyncio.wait_for(test(), 30))


@pytest.mark.timeout(40)
def test_without_audio_the_track_is_read_and_dropped(flash_clip: Path) -> None:
    async def test() -> None:
        source = PushSource("cam", fps=5, defaults=SourceDefaults(), audio=False)
        frames, _ = await push(source, flash_clip)
        assert source.audio is None and len(frames) >= 10
        assert source.stats.audio_state == AudioState.NONE and source.stats.audio_seconds == 0
        assert np.diff([f.t for f in frames]).min() > 0

    asyncio.run(asyncio.wait_for(test(), 30))
