"""Five-point face alignment to ArcFace's 112x112 template, and face crops for galleries."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

# insightface's arcface_dst: where eyes, nose tip and mouth corners sit in a 112x112 aligned face.
ARCFACE_DST = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)


def similarity_transform(src: npt.NDArray[np.float32], dst: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Least-squares similarity (Umeyama) mapping src points onto dst, as a 2x3 matrix."""
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1
    rot = u @ np.diag(d) @ vt
    var = (src_c**2).sum() / len(src)
    scale = (s * d).sum() / var if var > 0 else 1.0
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = dst_mean - scale * rot @ src_mean
    return m


def align_faces(image: npt.NDArray[np.uint8], kps: npt.NDArray[np.float32], size: int = 112) -> npt.NDArray[np.uint8]:
    """(n, 5, 2) keypoints -> (n, size, size, 3) aligned BGR crops."""
    dst = ARCFACE_DST * (size / 112.0)
    out = np.empty((len(kps), size, size, 3), np.uint8)
    for i, pts in enumerate(kps):
        out[i] = cv2.warpAffine(image, similarity_transform(pts, dst), (size, size), borderValue=0)
    return out


def appearance_signatures(image: npt.NDArray[np.uint8], kps: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """(n, 5, 2) keypoints -> (n, 624) zero-mean unit grey thumbnails of the aligned faces.

    Their dot product is a normalised correlation: about 0.85 for one face in consecutive sampled
    frames of real footage, at most about 0.67 between two different people. Cheap enough for every
    face of every frame, unlike an embedding.
    """
    if len(kps) == 0:
        return np.zeros((0, 26 * 24), np.float32)
    grey = np.stack([cv2.cvtColor(t, cv2.COLOR_BGR2GRAY) for t in align_faces(image, kps, size=32)]).astype(np.float32)
    flat = grey[:, 4:30, 4:28].reshape(len(grey), -1)  # the face itself, not the border
    flat -= flat.mean(axis=1, keepdims=True)
    return flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-6)


def crop_jpeg(image: npt.NDArray[np.uint8], xyxy: npt.NDArray[np.float32], margin: float = 0.25) -> bytes:
    """The face box grown by `margin` on each side, as JPEG."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = xyxy
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    a, b = int(max(0, x1 - mx)), int(max(0, y1 - my))
    c, d = int(min(w, x2 + mx)), int(min(h, y2 + my))
    ok, buf = cv2.imencode(".jpg", image[b:d, a:c], [cv2.IMWRITE_JPEG_QUALITY, 90])
    return buf.tobytes() if ok else b""
