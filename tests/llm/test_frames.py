"""Frames kept per clip for the model: spread over the clip, small JPEGs, bounded per stream."""

from __future__ import annotations

import cv2
import numpy as np

from streamer.captions.frames import ClipFrames
from streamer.records import Frame


def _frame(t: float, stream: str = "door") -> Frame:
    image = np.full((720, 1280, 3), int(t * 10) % 256, np.uint8)
    return Frame(stream, int(t * 5), t, 1_700_000_000.0 + t, image)


def test_frames_spread_over_each_clip_as_small_jpegs() -> None:
    keeper = ClipFrames(interval=10.0, per_clip=4, max_px=320)
    for k in range(150):  # 30 s at 5 fps: three clips
        keeper.offer(_frame(k * 0.2))
    kept = keeper.take("door", 1)
    jpegs = [f.result() for f in kept]
    assert len(jpegs) == 4
    images = [cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR) for j in jpegs]
    assert all(im.shape == (180, 320, 3) for im in images)
    # the first frame of each quarter of clip 1 (10.0, 12.6, 15.0, 17.6 s): grey levels 100, 126, 150, 176
    assert [int(im.mean().round()) for im in images] == [100, 126, 150, 176]
    assert keeper.take("door", 1) == [] and len(keeper.take("door", 2)) == 4
    keeper.close()


def test_a_stream_holds_a_bounded_number_of_clips() -> None:
    keeper = ClipFrames(interval=1.0, per_clip=2, max_px=64, clips_held=3)
    for k in range(50):
        keeper.offer(_frame(k * 0.5, "hall"))
    assert [len(keeper.take("hall", i)) for i in range(25)] == [0] * 22 + [2, 2, 2]
    assert keeper.take("door", 0) == []
    keeper.close()
