"""Detect a frozen live feed: the picture has not changed for a while (M3-Agent's static-segment check)."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

THUMB_SIZE = (64, 48)  # compare tiny grey thumbnails: cheap, and blind to compression noise


def thumbnail(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    small = cv2.resize(image, THUMB_SIZE, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32)


class FrozenDetector:
    """Fed the sampled frames in order; says whether the picture has been still for `after_seconds`."""

    def __init__(self, after_seconds: float, max_diff: float) -> None:
        self.after_seconds = after_seconds
        self.max_diff = max_diff
        self._prev: npt.NDArray[np.float32] | None = None
        self._prev_t = 0.0
        self._still_since: float | None = None

    def reset(self) -> None:
        self._prev, self._still_since = None, None

    def update(self, image: npt.NDArray[np.uint8], t: float) -> bool:
        thumb = thumbnail(image)
        if self._prev is not None and float(np.abs(thumb - self._prev).mean()) < self.max_diff:
            if self._still_since is None:
                self._still_since = self._prev_t
        else:
            self._still_since = None
        self._prev, self._prev_t = thumb, t
        return self._still_since is not None and t - self._still_since >= self.after_seconds
