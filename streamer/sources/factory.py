"""Choose a source for a camera's URL: a video file or a live feed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import CameraConfig, SourceDefaults
from ..errors import SourceError
from .av_reader import NETWORK_PREFIXES, probe_file
from .base import Source, StateCallback

if TYPE_CHECKING:
    from ..webrtc.whep import WhepSource

WEBCAM = re.compile(r"^/dev/video\d+$")


def is_live_url(url: str) -> bool:
    return url.lower().startswith(NETWORK_PREFIXES) or bool(WEBCAM.match(url))


def open_source(
    cam: CameraConfig, defaults: SourceDefaults, *, realtime: bool = False, on_state: StateCallback | None = None
) -> Source | WhepSource:
    """A Source for `cam`. A file is probed here (milliseconds) so a bad one fails now, with its
    duration known; a live source is not touched until its frames() is iterated. whep:// and
    wheps:// pull over WebRTC (a WhepSource).

    realtime=True paces a file by its timestamps, like a camera, instead of as fast as it is consumed.
    """
    url = cam.url
    fps = cam.fps or defaults.fps
    if url.lower().startswith(("whep://", "wheps://")):
        from ..webrtc.whep import WhepSource  # aiortc loads only for those who pull over WebRTC

        return WhepSource(cam.name, url, fps=fps, defaults=defaults)
    if is_live_url(url):
        return Source(cam.name, url, live=True, fps=fps, defaults=defaults, on_state=on_state)
    if "://" in url:
        raise SourceError(
            f"unsupported source {url!r}: expected a video file, rtsp://, rtsps://, http(s):// or /dev/videoN"
        )
    path = Path(url)
    if not path.exists():
        raise SourceError(f"video file not found: {url}")
    if not path.is_file():
        raise SourceError(f"not a video file: {url}")
    return Source(
        cam.name, url, live=False, fps=fps, defaults=defaults, realtime=realtime, duration=probe_file(url), on_state=on_state
    )
