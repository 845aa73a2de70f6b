"""A stream's kept BGR converter gives the very pixels of PyAV's own to_ndarray, frame after frame,
whatever the decoded pixel format and size (a camera may change its size on a reconnect)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from streamer.sources.bgr import BgrConverter

from .conftest import ffmpeg, moving


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuvj422p", "yuv444p", "rgb24"])
def test_the_kept_converter_gives_what_to_ndarray_gives(media: Path, pix_fmt: str) -> None:
    small, large = media / f"bgr-{pix_fmt}-small.mkv", media / f"bgr-{pix_fmt}-large.mkv"
    codec = ["-c:v", "ffv1"] if pix_fmt == "rgb24" else ["-c:v", "libx264", "-preset", "veryfast"]
    ffmpeg(*moving(0.4), "-vf", "scale=318:178", "-pix_fmt", pix_fmt, *codec, str(small))
    ffmpeg(*moving(0.4), "-vf", "scale=640:360", "-pix_fmt", pix_fmt, *codec, str(large))
    to_bgr = BgrConverter()
    seen = 0
    for path in (small, large, small):
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                assert frame.format.name == {"rgb24": "bgr0"}.get(pix_fmt, pix_fmt)  # FFV1 keeps RGB as bgr0
                image = to_bgr(frame)
                assert image.shape == (frame.height, frame.width, 3) and image.dtype == np.uint8
                assert np.array_equal(image, frame.to_ndarray(format="bgr24"))
                seen += 1
    assert seen == 30
