"""Clips of real people, served by a real RTSP server in the tests of this folder (rendered once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamer.demo.cast import Person
from streamer.demo.compose import Appearance, render_video

CLIP_FPS = 10  # enough for 5 fps analysis, half the frames to render and serve
CLIP_SECONDS = 120  # longer than any test even on a loaded machine (the longest may wait ~115 s), so no stream ends and reconnects by itself


@pytest.fixture(scope="session")
def people_clip(cast: list[Person], media_dir: Path) -> Path:
    """Two people in view all along."""
    path = media_dir / "cameras_people.mp4"
    render_video(path, cast, [Appearance(0, 0, CLIP_SECONDS, 0.3), Appearance(1, 0, CLIP_SECONDS, 0.7)], fps=CLIP_FPS)
    return path


@pytest.fixture(scope="session")
def still_clip(cast: list[Person], media_dir: Path) -> Path:
    """Someone leaves at 3 s; an empty, perfectly still room until someone comes in at 12 s."""
    path = media_dir / "cameras_still.mp4"
    render_video(path, cast, [Appearance(2, 0, 3, 0.5), Appearance(3, 12, CLIP_SECONDS, 0.5)], fps=CLIP_FPS)
    return path
