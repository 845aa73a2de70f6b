"""Clips made with ffmpeg once per session, and short timeouts for live tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from streamer.config import SourceDefaults

H264 = ["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p", "-g", "25", "-bf", "0"]
SIZE = "320x240"


def ffmpeg(*args: str) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is needed to make test clips")
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, timeout=60)


def moving(seconds: float, fps: int = 25) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc2=size={SIZE}:rate={fps}:duration={seconds}"]


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def clip(media: Path) -> Path:
    """3 s, 25 fps, H.264 in MP4."""
    path = media / "clip.mp4"
    ffmpeg(*moving(3), *H264, str(path))
    return path


@pytest.fixture(scope="session")
def still_clip(media: Path) -> Path:
    """1 s moving, 3 s of one still picture, 2 s moving again."""
    path = media / "still.mp4"
    ffmpeg(
        *moving(1),
        *moving(2),
        "-filter_complex",
        "[0]tpad=stop_mode=clone:stop_duration=3[a];[a][1]concat=n=2:v=1[v]",
        "-map",
        "[v]",
        *H264,
        str(path),
    )
    return path


@pytest.fixture(scope="session")
def av_clip(media: Path) -> Path:
    """3 s, 25 fps H.264 with a 440 Hz tone in 44.1 kHz AAC: a camera with a microphone."""
    path = media / "av.mp4"
    tone = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=3"]
    ffmpeg(*moving(3), *tone, *H264, "-c:a", "aac", str(path))
    return path


@pytest.fixture(scope="session")
def sync_clip(media: Path) -> Path:
    """4 s: black, then white from 2.0 s. Its audio track starts 0.05 s after the video (the stream's
    own start time; less than the video decoder's frame delay, so the audio is decoded first) and is
    silent until a tone begins at 2.0 s of the file's time."""
    path = media / "sync.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", f"color=c=black:s={SIZE}:r=25:d=4,drawbox=c=white:t=fill:enable='gte(t,2)'",
        "-itsoffset", "0.05", "-f", "lavfi", "-i", "aevalsrc='if(gte(t,1.95),0.5*sin(2*PI*440*t),0)':s=44100:d=3.95",
        *H264, "-c:a", "aac", str(path),
    )  # fmt: skip
    return path


@pytest.fixture
def live_defaults() -> SourceDefaults:
    """Short timeouts and backoff so live failures show within seconds."""
    return SourceDefaults(
        open_timeout_seconds=1.0,
        read_timeout_seconds=1.0,
        backoff_initial_seconds=0.2,
        backoff_max_seconds=1.0,
        frozen_after_seconds=1.0,
    )
