"""Open a configured camera with the app's settings: WebRTC pulls (whep://, wheps://) through
streamer.webrtc, everything PyAV reads through streamer.sources. It sits above both packages so
that neither imports the other."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import CameraConfig, Config
from .sources import Source, open_source

if TYPE_CHECKING:
    from .webrtc.whep import WhepSource


def open_camera(cam: CameraConfig, cfg: Config, *, realtime: bool = False) -> Source | WhepSource:
    """A source for `cam`, decoding its audio too when voices are on."""
    audio, held = cfg.voices.enabled, cfg.voices.buffer_seconds
    if cam.url.lower().startswith(("whep://", "wheps://")):
        from .webrtc.whep import WhepSource  # aiortc loads only for those who pull over WebRTC

        return WhepSource(
            cam.name, cam.url, fps=cam.fps or cfg.sources.fps, defaults=cfg.sources, audio=audio, audio_buffer_seconds=held
        )
    return open_source(cam, cfg.sources, realtime=realtime, audio=audio, audio_buffer_seconds=held)
