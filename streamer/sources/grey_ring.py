"""Every decoded frame of a source, small and grey, until the speaker-sync scorer takes it (5 fps is
too slow to see syllables, 4-5 a second, so the reader keeps frames at the source rate); the scorer
takes each frame once the face analysis has passed it. Written by the reader thread, taken by the
voice thread."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import av
import cv2
import numpy as np
import numpy.typing as npt

RING_SECONDS = 40.0  # a turn is scored once its VAD segment closes (at most 30 s) and its faces are analysed
GREY_WIDTH = 640  # mouths of 100 px faces in 720p stay ~25 px wide: enough for lip motion
MAX_FPS = 120.0  # caps the ring's length when a stream's timestamps misbehave
# Formats whose first plane is the luma: reading it and shrinking with OpenCV costs ~0.13 ms a 720p
# frame, against ~1.9 ms for libswscale's conversion to grey.
LUMA_FIRST = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21", "gray"}


Region = tuple[int, int, int, int]  # x1, y1, x2, y2 in source pixels
WHOLE_FRAME: Region = (0, 0, 1 << 30, 1 << 30)


@dataclass(frozen=True)
class GreyFrame:
    t: float  # stream time, seconds (the clock of Frame.t and AudioChunk.t)
    image: npt.NDArray[np.uint8]  # (h, w) grey: the region around the faces, at most GREY_WIDTH per source width
    scale: float  # grey pixels per source pixel
    origin: tuple[int, int] = (0, 0)  # source pixel at the image's top-left corner

    def to_image(self, points: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Source pixel coordinates -> this image's pixel coordinates."""
        return (points - np.asarray(self.origin, np.float32)) * self.scale


class GreyRing:
    """Decoded frames, small and grey, for at most `seconds` (when nobody takes them); the reader
    pushes, the voice path takes.

    Only the part of a frame around the faces is kept (`region`, from the face analysis): a frame
    with no face costs nothing, and a few faces in a wide view a fraction of the frame."""

    def __init__(self, seconds: float = RING_SECONDS, width: int = GREY_WIDTH) -> None:
        self.seconds = seconds
        self.width = width
        self._frames: deque[GreyFrame] = deque(maxlen=int(seconds * MAX_FPS))
        self._lock = threading.Lock()
        self.region: Callable[[float], Region | None] = lambda t: WHOLE_FRAME  # for the frame at t; until told

    def size_for(self, width: int, height: int) -> tuple[int, int]:
        """(w, h) to store a width x height frame at: never enlarged, even sizes for the scaler."""
        if width <= self.width:
            return width, height
        return self.width, max(2, int(round(height * self.width / width / 2)) * 2)

    def push_frame(self, t: float, frame: av.VideoFrame) -> None:
        """A decoded frame, its faces' region stored small and grey (called by the reader for every frame)."""
        region = self.region(t)
        if region is None:
            return
        w, _ = self.size_for(frame.width, frame.height)
        scale = w / frame.width
        # The region's edges on the shrink's pixel grid: the same source pixels make the same grey
        # pixels wherever the faces' region (from the latest analysed frame) happens to start.
        k = max(1, round(1 / scale))
        x1, y1 = max(0, region[0] - region[0] % k), max(0, region[1] - region[1] % k)
        x2, y2 = min(frame.width, region[2] + -region[2] % k), min(frame.height, region[3] + -region[3] % k)
        if x2 - x1 < 8 or y2 - y1 < 8:
            return
        if frame.format.name in LUMA_FIRST:
            plane = frame.planes[0]
            luma = np.frombuffer(plane, np.uint8, count=frame.height * plane.line_size).reshape(frame.height, -1)
            crop = luma[y1:y2, x1:x2]
        else:
            crop = frame.to_ndarray(format="gray")[y1:y2, x1:x2]
        size = (max(1, round((x2 - x1) * scale)), max(1, round((y2 - y1) * scale)))
        image = crop.copy() if scale == 1.0 else cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        self.push(t, image, scale, (x1, y1))

    def push(self, t: float, image: npt.NDArray[np.uint8], scale: float, origin: tuple[int, int] = (0, 0)) -> None:
        with self._lock:
            if self._frames and t <= self._frames[-1].t - self.seconds:
                self._frames.clear()  # the clock went back (a reconnect): the old frames are another timeline
            self._frames.append(GreyFrame(t, image, scale, origin))
            while self._frames and t - self._frames[0].t > self.seconds:
                self._frames.popleft()

    def take_until(self, t: float) -> list[GreyFrame]:
        """Removes and returns the frames up to stream time `t`, in the order they came."""
        out = []
        with self._lock:
            while self._frames and self._frames[0].t <= t:
                out.append(self._frames.popleft())
        return out
