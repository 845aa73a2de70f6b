"""What a camera's URL names: a network stream, a capture device (webcams `/dev/videoN`, microphones
`alsa:default`, `pulse:default`, ...) or a file. Standard library only: a live `streamer run` asks
this before it restarts itself, ahead of every heavy import."""

from __future__ import annotations

import re
from dataclasses import dataclass

WEBCAM = re.compile(r"^/dev/video\d+$")
# FFmpeg's capture formats for microphones, written `FORMAT:DEVICE`: Linux (alsa, pulse, oss), macOS
# (avfoundation, device ":N" for audio device N) and Windows (dshow, device "audio=NAME").
MICROPHONE_FORMATS = ("alsa", "pulse", "oss", "avfoundation", "dshow")
NETWORK_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://", "udp://", "tcp://", "srt://")


@dataclass(frozen=True)
class Device:
    format: str  # the FFmpeg input format that opens it
    name: str  # the device as that format names it


def names_device(url: str) -> bool:
    """Whether `url` is written as a capture device (it may still lack the device's name)."""
    prefix, colon, _ = url.partition(":")
    return bool(WEBCAM.match(url)) or (bool(colon) and prefix.lower() in MICROPHONE_FORMATS)


def is_live_url(url: str) -> bool:
    """Whether FFmpeg opens `url` as a live feed (a network stream or a capture device), not a file."""
    return url.lower().startswith(NETWORK_PREFIXES) or names_device(url)


def never_ends(url: str) -> bool:
    """Whether a camera at `url` runs until it is stopped: anything with a scheme (a stream, a WebRTC
    pull such as whep://) or a capture device. Only a file ends by itself."""
    return "://" in url or names_device(url)


def parse_device(url: str) -> Device | None:
    """The capture device `url` names, or None when it names none (a file or a network URL).

    `alsa:hw:1,0` -> Device("alsa", "hw:1,0"); `avfoundation::0` -> Device("avfoundation", ":0").
    Raises ValueError for a capture format with no device after it (`alsa:`).
    """
    if WEBCAM.match(url):
        return Device("v4l2", url)
    prefix, colon, name = url.partition(":")
    if not colon or prefix.lower() not in MICROPHONE_FORMATS:
        return None
    if not name:
        raise ValueError(f"{url!r} names no device: write {prefix}:DEVICE")
    return Device(prefix.lower(), name)
