"""SCRFD face detection: one BGR image in, FaceDetections out."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ..records import FaceDetections


class FaceDetector:
    def __init__(self, model: Any, det_size: int, min_face_px: int) -> None:
        self._model = model
        self._size = (det_size, det_size)
        self._min_face_px = min_face_px

    def detect(self, image: npt.NDArray[np.uint8]) -> FaceDetections:
        boxes, kps = self._model.detect(image, input_size=self._size)
        if boxes is None or len(boxes) == 0 or kps is None:
            return FaceDetections.empty()
        xyxy = boxes[:, :4].astype(np.float32)
        h, w = image.shape[:2]
        np.clip(xyxy[:, [0, 2]], 0, w, out=xyxy[:, [0, 2]])
        np.clip(xyxy[:, [1, 3]], 0, h, out=xyxy[:, [1, 3]])
        side = np.minimum(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1])
        keep = side >= self._min_face_px
        return FaceDetections(xyxy[keep], boxes[keep, 4].astype(np.float32), kps[keep].astype(np.float32))
