"""SCRFD face detection: one BGR image in, FaceDetections out, over the whole frame (at a full or a
coarse size) or over crops around known faces."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ..config import ModelConfig
from ..records import FaceDetections
from .tracker import iou_matrix

DUPLICATE_IOU = 0.4  # one face found in two overlapping crops
EDGE_PX = 2  # a box this close to a crop's edge is cut by it


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
        self.crop_size = cfg.crop_det_size
        self._min_face_px = cfg.min_face_px

    def detect(self, image: npt.NDArray[np.uint8], coarse: bool = False) -> FaceDetections:
        long_side = self.coarse_size if coarse and self.coarse_size else self.full_size
        boxes, kps = self._model.detect(image, input_size=input_size(image.shape, long_side))
        if boxes is None or len(boxes) == 0 or kps is None:
            return FaceDetections.empty()
        return self._faces(boxes, kps, image.shape)

    def detect_crops(
        self, image: npt.NDArray[np.uint8], regions: npt.NDArray[np.int64]
    ) -> tuple[FaceDetections, npt.NDArray[np.bool_]]:
        """The faces inside each (x1, y1, x2, y2) region, in frame coordinates, and per region
        whether it held one. A face cut by a region's edge (not the frame's) is left out: it is
        either a neighbour that its own region sees whole, or a face leaving its region."""
        h, w = image.shape[:2]
        found = np.zeros(len(regions), np.bool_)
        all_boxes, all_kps = [], []
        for i, (x1, y1, x2, y2) in enumerate(regions):
            boxes, kps = self._model.detect(image[y1:y2, x1:x2], input_size=(self.crop_size, self.crop_size))
            if boxes is None or len(boxes) == 0 or kps is None:
                continue
            boxes[:, [0, 2]] += x1
            boxes[:, [1, 3]] += y1
            kps += np.array([x1, y1], np.float32)
            inside = np.ones(len(boxes), np.bool_)
            for axis, lo, hi, limit in ((0, x1, x2, w), (1, y1, y2, h)):
                inside &= (boxes[:, axis] > lo + EDGE_PX) | (lo == 0)
                inside &= (boxes[:, axis + 2] < hi - EDGE_PX) | (hi == limit)
            if inside.any():
                found[i] = True
                all_boxes.append(boxes[inside])
                all_kps.append(kps[inside])
        if not all_boxes:
            return FaceDetections.empty(), found
        faces = self._faces(np.concatenate(all_boxes), np.concatenate(all_kps), image.shape)
        return faces[_distinct(faces)], found

    def _faces(self, boxes: npt.NDArray[np.float32], kps: npt.NDArray[np.float32], shape: tuple[int, ...]) -> FaceDetections:
        xyxy = boxes[:, :4].astype(np.float32)
        h, w = shape[:2]
        np.clip(xyxy[:, [0, 2]], 0, w, out=xyxy[:, [0, 2]])
        np.clip(xyxy[:, [1, 3]], 0, h, out=xyxy[:, [1, 3]])
        side = np.minimum(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1])
        keep = side >= self._min_face_px
        return FaceDetections(xyxy[keep], boxes[keep, 4].astype(np.float32), kps[keep].astype(np.float32))


def _distinct(faces: FaceDetections) -> npt.NDArray[np.int64]:
    """Indices of the faces left after dropping lower-scored duplicates (greedy non-maximum suppression)."""
    order = np.argsort(-faces.det_score)
    iou = iou_matrix(faces.xyxy, faces.xyxy)
    kept: list[int] = []
    for i in order:
        if all(iou[i, k] < DUPLICATE_IOU for k in kept):
            kept.append(int(i))
    return np.array(sorted(kept), np.int64)


def crop_regions(xyxy: npt.NDArray[np.float32], shape: tuple[int, ...], scale: float) -> npt.NDArray[np.int64]:
    """(k, 4) squares `scale` times each box's longer side around its centre, moved inside the frame
    where they fit (a face near the edge keeps its margin on the inner side)."""
    h, w = shape[:2]
    side = np.minimum(scale * np.maximum(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]), min(h, w)).round()
    cx, cy = (xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2
    x1 = np.clip(cx - side / 2, 0, w - side).round()
    y1 = np.clip(cy - side / 2, 0, h - side).round()
    return np.stack([x1, y1, x1 + side, y1 + side], axis=1).astype(np.int64).reshape(-1, 4)
