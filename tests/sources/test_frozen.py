"""The frozen-feed detector on real decoded frames."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from streamer.sources.frozen import FrozenDetector
from streamer.sources.sampler import TimestampSampler


def frozen_flags(path: Path, after: float = 1.0, max_diff: float = 1.0) -> list[tuple[float, bool]]:
    sampler, detector = TimestampSampler(5), FrozenDetector(after, max_diff)
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and sampler.take(frame.time):
                out.append((frame.time, detector.update(frame.to_ndarray(format="bgr24"), frame.time)))
    return out


def test_still_stretch_is_frozen_after_the_delay(still_clip: Path) -> None:
    frozen = [t for t, f in frozen_flags(still_clip) if f]
    # still from 1.0 s (the last moving frame) to 4.0 s; frozen once still for 1 s
    assert frozen[0] == pytest.approx(2.0, abs=0.05) and frozen[-1] < 4.0
    assert len(frozen) == 10  # 2.0, 2.2, ... 3.8


def test_moving_picture_never_freezes(clip: Path) -> None:
    assert not any(f for _, f in frozen_flags(clip))


def test_still_stretch_shorter_than_the_delay_is_not_frozen(still_clip: Path) -> None:
    flags = frozen_flags(still_clip, after=3.5)
    assert not any(f for _, f in flags)  # the still stretch is 3 s: never frozen at 3.5 s
