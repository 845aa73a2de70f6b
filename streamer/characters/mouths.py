"""Where each tracked face's mouth was at the analysed frames: the face analysis, at 5 fps, leaves
its keypoints behind (`FaceTrail`), interpolated between analysed frames when a turn is scored
against the source's grey frames (`streamer.sources.grey_ring`). Written by the face analysis,
read by the voice thread and the reader (which keeps only the faces' region), so it locks.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..sources.grey_ring import RING_SECONDS, WHOLE_FRAME, Region

AHEAD_SECONDS = 0.5  # a live reader is about a detection ahead of the analysis; a file's, up to the queues


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

    def region(self, t: float) -> Region | None:
        """Where to keep the decoded frame at stream time `t` (source pixels): around the latest
        analysed frame's faces, with room to move until the next one; None when it had no face (the
        reader then keeps nothing). Whole while the analysis is more than AHEAD_SECONDS behind `t`:
        before its first frame, and while a file's reader decodes ahead (0.4-1.6 s), where a cut or
        a newcomer would otherwise lose the frames before the analysis sees them."""
        with self._cond:
            if not self._frames or t > self._until + AHEAD_SECONDS:
                return WHOLE_FRAME
            faces = self._frames[-1][1]
            if not faces:
                return None
            boxes = []
            for kps in faces.values():
                size = float(np.linalg.norm(kps[3:].mean(axis=0) - kps[:2].mean(axis=0)))  # eyes to mouth
                lo, hi = kps.min(axis=0) - 2.0 * size, kps.max(axis=0) + 2.0 * size
                boxes.append((lo, hi))
        lo = np.min([b[0] for b in boxes], axis=0)
        hi = np.max([b[1] for b in boxes], axis=0)
        return int(lo[0]), int(lo[1]), int(np.ceil(hi[0])), int(np.ceil(hi[1]))

    def sightings(self, t0: float, t1: float) -> dict[int, list[Sighting]]:
        """Per track, its sightings with t0 <= t <= t1, in time order."""
        out: dict[int, list[Sighting]] = {}
        with self._cond:
            for t, faces in self._frames:
                if t0 <= t <= t1:
                    for tid, kps in faces.items():
                        out.setdefault(tid, []).append(Sighting(t, kps))
        return out
