"""SCRFD face detection: one BGR image in, FaceDetections out, at a full or a coarse size."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ..config import ModelConfig
from ..records import FaceDetections


def input_size(shape: tuple[int, ...], long_side: int) -> tuple[int, int]:
    """(width, height) for the detector: the frame's aspect, sides rounded up to multiples of 32.

    insightface pads every frame into a square by default; for 16:9 video that is 44% padding
    the network still has to run over.
    """
    h, w = shape[:2]
    short = int(np.ceil(long_side * min(h, w) / max(h, w) / 32) * 32)
    return (long_side, short) if w >= h else (short, long_side)


class FaceDetector:
    def __init__(self, model: Any, cfg: ModelConfig) -> None:
        self._model = model
        self.full_size = cfg.det_size
        self.coarse_size = cfg.coarse_det_size
        self._min_face_px = cfg.min_face_px

    def detect(self, image: npt.NDArray[np.uint8], coarse: bool = False) -> FaceDetections:
        long_side = self.coarse_size if coarse and self.coarse_size else self.full_size
        boxes, kps = self._model.detect(image, input_size=input_size(image.shape, long_side))
        if boxes is None or len(boxes) == 0 or kps is None:
            return FaceDetections.empty()
        xyxy = boxes[:, :4].astype(np.float32)
        h, w = image.shape[:2]
        np.clip(xyxy[:, [0, 2]], 0, w, out=xyxy[:, [0, 2]])
        np.clip(xyxy[:, [1, 3]], 0, h, out=xyxy[:, [1, 3]])
        side = np.minimum(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1])
        keep = side >= self._min_face_px
        return FaceDetections(xyxy[keep], boxes[keep, 4].astype(np.float32), kps[keep].astype(np.float32))


class DetectionSchedule:
    """Decides per frame between a full pass and a cheaper coarse one.

    A coarse pass sees big faces as well as a full one does (talking heads, people near the camera)
    and costs about a third; small faces need the full size. So: full at least every
    `full_every` seconds and whenever a tracked face is too small for the coarse size.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        self._cfg = cfg
        self._last_full = -np.inf

    def coarse(self, t: float, frame_shape: tuple[int, ...], smallest_face_px: float | None) -> bool:
        cfg = self._cfg
        if not cfg.coarse_det_size or t - self._last_full >= cfg.full_detect_every_seconds or t < self._last_full:
            self._last_full = t
            return False
        if smallest_face_px is not None:
            scale = cfg.coarse_det_size / max(frame_shape[:2])
            if smallest_face_px * scale < cfg.coarse_min_face_px:
                self._last_full = t
                return False
        return True
