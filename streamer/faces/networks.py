"""SCRFD (faces with 5 keypoints) and ArcFace (512-d identity) run directly on onnxruntime.

insightface wraps the same networks, but importing it takes ~0.3 s (its app and add-ons pull in
scipy) at every start of the command; the pre- and post-processing below is all this project uses,
with the same conventions (input scaling, anchor layout, SCRFD's suppression), so results are equal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

SCRFD_NMS_IOU = 0.4
SCRFD_MEAN, SCRFD_STD = 127.5, 128.0
LANDMARK_SIDE = 192  # insightface's 106-point landmark networks: square inputs like a recognizer's, not one


class Scrfd:
    """SCRFD with keypoints: 3 strides x 2 anchors (9 outputs) or 5 strides x 1 anchor (15 outputs)."""

    taskname = "detection"

    def __init__(self, session: Any, model_file: Path, det_thresh: float) -> None:
        self.session = session
        self.model_file = str(model_file)
        self.det_thresh = det_thresh
        outputs = session.get_outputs()
        self._input = session.get_inputs()[0].name
        self._outputs = [o.name for o in outputs]
        self._batched = len(outputs[0].shape) == 3
        self._strides, self._anchors = ((8, 16, 32), 2) if len(outputs) == 9 else ((8, 16, 32, 64, 128), 1)
        self._centres: dict[tuple[int, int, int], npt.NDArray[np.float32]] = {}

    @staticmethod
    def fits(session: Any) -> bool:
        return len(session.get_outputs()) in (9, 15)

    def detect(
        self, image: npt.NDArray[np.uint8], input_size: tuple[int, int]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """(n, 5) boxes with scores and (n, 5, 2) keypoints, in image pixels, best first. The image is
        scaled to fit `input_size` (width, height) at its own aspect, top-left, the rest black."""
        width, height = input_size
        ratio = image.shape[0] / image.shape[1]
        if ratio > height / width:
            new_h, new_w = height, int(height / ratio)
        else:
            new_w, new_h = width, int(width * ratio)
        scale = new_h / image.shape[0]
        canvas = np.zeros((height, width, 3), np.uint8)
        canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h))
        blob = cv2.dnn.blobFromImage(canvas, 1.0 / SCRFD_STD, (width, height), (SCRFD_MEAN,) * 3, swapRB=True)
        outs = self.session.run(self._outputs, {self._input: blob})
        if self._batched:
            outs = [o[0] for o in outs]
        n = len(self._strides)
        scores, boxes, kps = [], [], []
        for i, stride in enumerate(self._strides):
            score = outs[i].reshape(-1)
            keep = score >= self.det_thresh
            centres = self._anchor_centres(height // stride, width // stride, stride)[keep]
            dist = outs[i + n][keep] * stride
            scores.append(score[keep])
            boxes.append(np.concatenate([centres - dist[:, :2], centres + dist[:, 2:]], axis=1))
            kps.append(centres[:, None, :] + outs[i + 2 * n][keep].reshape(-1, 5, 2) * stride)
        score = np.concatenate(scores)
        order = np.argsort(-score, kind="stable")
        det = np.hstack([np.concatenate(boxes) / scale, score[:, None]]).astype(np.float32)[order]
        points = (np.concatenate(kps) / scale).astype(np.float32)[order]
        keep_idx = _suppress(det)
        return det[keep_idx], points[keep_idx]

    def _anchor_centres(self, rows: int, cols: int, stride: int) -> npt.NDArray[np.float32]:
        key = (rows, cols, stride)
        if key not in self._centres:
            ys, xs = np.mgrid[:rows, :cols]
            centres = np.stack([xs, ys], axis=-1).reshape(-1, 2).astype(np.float32) * stride
            self._centres[key] = np.repeat(centres, self._anchors, axis=0)
        return self._centres[key]


def _suppress(det: npt.NDArray[np.float32]) -> list[int]:
    """Greedy non-maximum suppression of score-ordered boxes, SCRFD's way (pixel-inclusive areas)."""
    x1, y1, x2, y2 = det[:, 0], det[:, 1], det[:, 2], det[:, 3]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.arange(len(det))
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        order = rest[inter / (areas[i] + areas[rest] - inter) <= SCRFD_NMS_IOU]
    return keep


class ArcFace:
    """An ArcFace recognizer: aligned BGR faces in, raw (unnormalised) embeddings out."""

    taskname = "recognition"

    def __init__(self, session: Any, model_file: Path, mean: float, std: float) -> None:
        self.session = session
        self.model_file = str(model_file)
        self._mean, self._std = mean, std
        inp = session.get_inputs()[0]
        self._input = inp.name
        self._size = (int(inp.shape[3]), int(inp.shape[2]))
        self._output = session.get_outputs()[0].name

    @staticmethod
    def fits(session: Any) -> bool:
        inputs = session.get_inputs()
        shape = inputs[0].shape
        side = shape[2]
        square = isinstance(side, int) and side == shape[3]
        return len(inputs) == 1 and square and side >= 112 and side % 16 == 0 and side != LANDMARK_SIDE

    def get_feat(self, faces: list[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
        blob = cv2.dnn.blobFromImages(faces, 1.0 / self._std, self._size, (self._mean,) * 3, swapRB=True)
        return self.session.run([self._output], {self._input: blob})[0]


def arcface_normalisation(model_file: Path) -> tuple[float, float]:
    """(mean, std) of a recognizer's input: networks converted from MXNet scale inside the graph
    (a Sub and a Mul among the first nodes) and take raw pixels; the others take (x - 127.5) / 127.5."""
    import onnx  # only for packs other than the bundled one, whose setting is known

    names = [node.name for node in onnx.load(str(model_file)).graph.node[:8]]
    sub = any(n.startswith(("Sub", "_minus")) for n in names)
    mul = any(n.startswith(("Mul", "_mul")) for n in names)
    return (0.0, 1.0) if sub and mul else (127.5, 127.5)
