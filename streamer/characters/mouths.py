"""What the synchrony scorer reads back after a speech turn: every decoded frame, small and grey, and
where each tracked face's mouth was at the analysed frames.

5 fps is too slow to see syllables (4-5 a second), so the reader keeps every frame at the source
rate for a while (`GreyRing`); the face analysis, at 5 fps, leaves its keypoints behind
(`FaceTrail`), interpolated between analysed frames when a turn is scored. Both are written by one
thread and read by the voice thread, so both lock; both forget what is older than their horizon.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import av
import cv2
import numpy as np
import numpy.typing as npt

RING_SECONDS = 20.0  # a turn is scored a moment after it ends; VAD segments rarely run longer
GREY_WIDTH = 640  # mouths of 100 px faces in 720p stay ~25 px wide: enough for lip motion
MAX_FPS = 120.0  # caps the ring's length when a stream's timestamps misbehave
# Formats whose first plane is the luma: reading it and shrinking with OpenCV costs ~0.13 ms a 720p
# frame, against ~1.9 ms for libswscale's conversion to grey.
LUMA_FIRST = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21", "gray"}


@dataclass(frozen=True)
class GreyFrame:
    t: float  # stream time, seconds (the clock of Frame.t and AudioChunk.t)
    image: npt.NDArray[np.uint8]  # (h, w) grey, at most GREY_WIDTH wide
    scale: float  # grey pixels per source pixel


class GreyRing:
    """The last `seconds` of decoded frames, small and grey; the reader pushes, the voice path reads."""

    def __init__(self, seconds: float = RING_SECONDS, width: int = GREY_WIDTH) -> None:
        self.seconds = seconds
        self.width = width
        self._frames: deque[GreyFrame] = deque(maxlen=int(seconds * MAX_FPS))
        self._lock = threading.Lock()

    def size_for(self, width: int, height: int) -> tuple[int, int]:
        """(w, h) to store a width x height frame at: never enlarged, even sizes for the scaler."""
        if width <= self.width:
            return width, height
        return self.width, max(2, int(round(height * self.width / width / 2)) * 2)

    def push_frame(self, t: float, frame: av.VideoFrame) -> None:
        """A decoded frame, stored small and grey (called by the reader for every frame)."""
        w, h = self.size_for(frame.width, frame.height)
        if frame.format.name in LUMA_FIRST:
            plane = frame.planes[0]
            luma = np.frombuffer(plane, np.uint8, count=frame.height * plane.line_size).reshape(frame.height, -1)[:, : frame.width]
            image = luma.copy() if w == frame.width else cv2.resize(luma, (w, h), interpolation=cv2.INTER_AREA)
        else:
            image = frame.reformat(width=w, height=h, format="gray").to_ndarray()
        self.push(t, image, w / frame.width)

    def push(self, t: float, image: npt.NDArray[np.uint8], scale: float) -> None:
        with self._lock:
            if self._frames and t <= self._frames[-1].t - self.seconds:
                self._frames.clear()  # the clock went back (a reconnect): the old frames are another timeline
            self._frames.append(GreyFrame(t, image, scale))
            while self._frames and t - self._frames[0].t > self.seconds:
                self._frames.popleft()

    def window(self, t0: float, t1: float) -> list[GreyFrame]:
        """Frames with t0 <= t <= t1, in time order."""
        with self._lock:
            return [f for f in self._frames if t0 <= f.t <= t1]

    def oldest(self) -> float | None:
        with self._lock:
            return self._frames[0].t if self._frames else None


@dataclass(frozen=True)
class Sighting:
    t: float
    kps: npt.NDArray[np.float32]  # (5, 2) source pixels: eyes, nose, mouth corners (SCRFD's order)


class FaceTrail:
    """Keypoints of every tracked face at every analysed frame, for `seconds`; `analysed_until` says
    how far the analysis has got, so a turn is scored only once its faces are all known."""

    def __init__(self, seconds: float = RING_SECONDS) -> None:
        self.seconds = seconds
        self._frames: deque[tuple[float, dict[int, npt.NDArray[np.float32]]]] = deque()
        self._cond = threading.Condition()
        self._until = -np.inf
        self._closed = False

    def record(self, t: float, track_ids: npt.NDArray[np.int64], kps: npt.NDArray[np.float32]) -> None:
        """One analysed frame (with or without faces)."""
        faces = {int(tid): kps[i].astype(np.float32, copy=True) for i, tid in enumerate(track_ids)}
        with self._cond:
            if t < self._until - self.seconds:
                self._frames.clear()
            self._frames.append((t, faces))
            while self._frames and t - self._frames[0][0] > self.seconds:
                self._frames.popleft()
            self._until = max(self._until, t) if t >= self._until - self.seconds else t
            self._cond.notify_all()

    def close(self) -> None:
        """No more frames will come (the stream's video ended)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def analysed_until(self) -> float:
        with self._cond:
            return self._until

    def wait_until(self, t: float, timeout: float) -> bool:
        """Blocking: until the analysis has passed `t` (True) or the trail closed or `timeout` passed."""
        with self._cond:
            self._cond.wait_for(lambda: self._until >= t or self._closed, timeout)
            return self._until >= t

    def sightings(self, t0: float, t1: float) -> dict[int, list[Sighting]]:
        """Per track, its sightings with t0 <= t <= t1, in time order."""
        out: dict[int, list[Sighting]] = {}
        with self._cond:
            for t, faces in self._frames:
                if t0 <= t <= t1:
                    for tid, kps in faces.items():
                        out.setdefault(tid, []).append(Sighting(t, kps))
        return out
