"""Choose a source for a camera's URL: a media file or a live feed."""

from __future__ import annotations

from pathlib import Path

import av

from ..config import CameraConfig, SourceDefaults
from ..errors import SourceError
from ..source_urls import is_live_url, parse_device
from .av_reader import media_noun, probe_file
from .base import AUDIO_BUFFER_SECONDS, Source, StateCallback


def open_source(
    cam: CameraConfig,
    defaults: SourceDefaults,
    *,
    realtime: bool = False,
    on_state: StateCallback | None = None,
    audio: bool = False,
    audio_buffer_seconds: float = AUDIO_BUFFER_SECONDS,
) -> Source:
    """A Source for `cam`. A file is probed here (milliseconds) so a bad one fails now, with its
    duration known; a live source is not touched until its frames() is iterated. `alsa:default`,
    `pulse:default` and the like capture a microphone. (WebRTC pulls are opened a layer up, in
    streamer.opening, so this package never imports the WebRTC one.)

    realtime=True paces a file by its timestamps, like a camera, instead of as fast as it is consumed.
    audio=True decodes the source's audio too, into `source.audio` (at most `audio_buffer_seconds`
    held); a file or stream with audio and no video is then a source as well.
    """
    url = cam.url
    fps = cam.fps or defaults.fps
    if is_live_url(url):
        check_device(url)
        return Source(
            cam.name,
            url,
            live=True,
            fps=fps,
            defaults=defaults,
            on_state=on_state,
            audio=audio,
            audio_buffer_seconds=audio_buffer_seconds,
        )
    if "://" in url:
        raise SourceError(
            f"unsupported source {url!r}: expected a video file, rtsp://, rtsps://, http(s):// or /dev/videoN"
        )
    path = Path(url)
    if not path.exists():
        raise SourceError(f"{media_noun(audio)} not found: {url}")
    if not path.is_file():
        raise SourceError(f"not a {media_noun(audio)}: {url}")
    return Source(
        cam.name,
        url,
        live=False,
        fps=fps,
        defaults=defaults,
        realtime=realtime,
        duration=probe_file(url, audio=audio),
        on_state=on_state,
        audio=audio,
        audio_buffer_seconds=audio_buffer_seconds,
    )


def check_device(url: str) -> None:
    """A capture device URL must name a device, in a capture format this FFmpeg has."""
    try:
        device = parse_device(url)
    except ValueError as e:
        raise SourceError(str(e)) from None
    if device is None:
        return
    try:
        av.ContainerFormat(device.format)
    except ValueError:
        raise SourceError(f"cannot capture {url}: this FFmpeg build has no {device.format!r} input") from None
