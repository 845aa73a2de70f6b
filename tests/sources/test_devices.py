"""Microphones and webcams named by URL.

No sound (or video) devices exist on the machines these tests run on, so capture itself is not
tested: the URL parsing is, and so is a missing device being retried like an absent camera.
"""

from __future__ import annotations

import asyncio

import pytest

from streamer.config import CameraConfig, SourceDefaults
from streamer.errors import SourceError
from streamer.sources import Source, SourceState, open_source
from streamer.source_urls import Device, is_live_url, never_ends, parse_device

from .watch import Watcher


@pytest.mark.parametrize(
    ("url", "device"),
    [
        ("alsa:default", Device("alsa", "default")),
        ("alsa:hw:1,0", Device("alsa", "hw:1,0")),
        ("ALSA:plughw:CARD=USB,DEV=0", Device("alsa", "plughw:CARD=USB,DEV=0")),
        ("pulse:default", Device("pulse", "default")),
        ("oss:/dev/dsp", Device("oss", "/dev/dsp")),
        ("avfoundation::0", Device("avfoundation", ":0")),
        ("dshow:audio=Microphone (USB Audio)", Device("dshow", "audio=Microphone (USB Audio)")),
        ("/dev/video0", Device("v4l2", "/dev/video0")),
        ("meeting.wav", None),
        ("clips/alsa.mp4", None),
        ("C:\\clips\\a.mp4", None),
        ("rtsp://cam.local/live", None),
        ("/dev/video", None),
    ],
)
def test_parse_device(url: str, device: Device | None) -> None:
    assert parse_device(url) == device
    assert is_live_url(url) == (device is not None or url.startswith("rtsp://"))


@pytest.mark.parametrize(
    ("url", "ends"),
    [
        ("meeting.wav", True),
        ("clips/alsa.mp4", True),
        ("C:\\clips\\a.mp4", True),
        ("rtsp://cam.local/live", False),
        ("whep://cam.local/live", False),  # a WebRTC pull, opened outside FFmpeg
        ("srt://cam.local:9000", False),
        ("/dev/video0", False),
        ("pulse:default", False),
    ],
)
def test_only_a_file_ends_by_itself(url: str, ends: bool) -> None:
    assert never_ends(url) is not ends


def test_a_capture_format_needs_a_device() -> None:
    with pytest.raises(ValueError, match=r"^'pulse:' names no device: write pulse:DEVICE$"):
        parse_device("pulse:")
    with pytest.raises(SourceError, match=r"^'alsa:' names no device: write alsa:DEVICE$"):
        open_source(CameraConfig(name="mic", url="alsa:"), SourceDefaults())


def test_a_capture_format_this_ffmpeg_lacks_is_refused_at_once() -> None:
    """dshow exists only in Windows builds of FFmpeg."""
    with pytest.raises(SourceError, match=r"^cannot capture dshow:audio=Mic: this FFmpeg build has no 'dshow' input$"):
        open_source(CameraConfig(name="mic", url="dshow:audio=Mic"), SourceDefaults())


@pytest.mark.timeout(30)
def test_an_absent_microphone_is_retried_like_a_camera(live_defaults: SourceDefaults) -> None:
    async def test() -> None:
        src = open_source(CameraConfig(name="cam", url="alsa:hw:9,9"), live_defaults, audio=True)
        assert isinstance(src, Source) and src.is_live and src.audio is not None and src.audio.drop_oldest
        async with Watcher(src) as w:
            await w.until("two reconnects", lambda: src.stats.reconnects >= 2, 10)
            assert src.stats.state == SourceState.RECONNECTING and src.stats.last_error
        assert src.stats.state == SourceState.STOPPED and src.audio.done

    asyncio.run(asyncio.wait_for(test(), 20))
