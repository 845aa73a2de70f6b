"""Link faces across sampled frames of one stream, and decide which faces need a new embedding.

Position alone is not identity: after a hard cut a different person often sits where the last one
was (interviews, talking heads). So a scene cut ends every track, and a new embedding that disagrees
with its track's mean breaks the track (`confirm_embedding`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..config import TrackerConfig
from ..records import FaceDetections
from ..scene import THUMB_SIZE, scene_thumbnail


CHANGE_LEVEL = 12.0  # grey levels (0-255): above video noise at thumbnail size, below any real motion
# Appearance correlation at or above which a face is the same picture as at its last embedding (a
# still frame, a photo): another embedding would repeat the last. Real footage of one face in
# consecutive frames stays under it (0.97 at the 99th percentile on real talking heads and street video).
SAME_PICTURE = 0.99


@dataclass
class Track:
    id: int
    xyxy: npt.NDArray[np.float32]
    first_t: float
    last_t: float
    best_size_score: float = 0.0  # det score x box area of the best embedded face
    last_embed_t: float = -np.inf
    emb_sum: npt.NDArray[np.float32] | None = None  # sum of unit embeddings: its direction is the track's mean
    n_emb: int = 0
    quality: float | None = None  # of the latest embedding
    node: int | None = None
    hits: int = 0
    signature: npt.NDArray[np.float32] | None = None  # appearance at the last sighting
    embedded_signature: npt.NDArray[np.float32] | None = None  # appearance at the last embedding

    def mean_similarity(self, emb: npt.NDArray[np.float32]) -> float:
        if self.emb_sum is None:
            return 1.0
        return float(emb @ self.emb_sum / self.n_emb)


def iou_matrix(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-6)


class SceneCutDetector:
    """A hard cut shows as a large mean change of a small grey thumbnail between sampled frames.

    The same difference, masked by the tracked faces, tells whether anything moved where no track is
    (`changed_outside`): where a new face could have come in. `thumbnail` is kept for comparisons
    over more than one frame (`still_since`).
    """

    def __init__(self, threshold: float) -> None:
        self._threshold = threshold
        self._prev: npt.NDArray[np.float32] | None = None
        self.thumbnail: npt.NDArray[np.float32] | None = None  # of the latest frame
        self._diff: npt.NDArray[np.float32] | None = None  # |current - previous| thumbnail

    def __call__(self, image: npt.NDArray[np.uint8], thumbnail: npt.NDArray[np.float32] | None = None) -> bool:
        """Whether `image` follows a cut; `thumbnail`: its scene thumbnail, when made already."""
        cur = scene_thumbnail(image) if thumbnail is None else thumbnail
        self._diff = None if self._prev is None else np.abs(cur - self._prev)
        cut = self._diff is not None and float(self._diff.mean()) > self._threshold
        self._prev = self.thumbnail = cur
        return cut

    def still_since(self, earlier: npt.NDArray[np.float32]) -> bool:
        """No part of the latest frame changed by more than CHANGE_LEVEL since an earlier thumbnail."""
        assert self.thumbnail is not None
        return bool(np.abs(self.thumbnail - earlier).max() <= CHANGE_LEVEL)

    def changed_outside(
        self, regions: npt.NDArray[np.float32], shape: tuple[int, ...], since: npt.NDArray[np.float32] | None = None
    ) -> float:
        """Fraction of the last frame's thumbnail outside `regions` (x1, y1, x2, y2 in frame pixels)
        whose grey level changed by more than CHANGE_LEVEL since the previous frame (or the
        thumbnail `since`); 1.0 when there is no previous frame."""
        diff = self._diff if since is None else np.abs(self.thumbnail - since)
        if diff is None:
            return 1.0
        changed = diff > CHANGE_LEVEL
        tw, th = THUMB_SIZE
        sx, sy = tw / shape[1], th / shape[0]
        outside = np.ones_like(changed)
        for x1, y1, x2, y2 in regions:
            outside[int(max(0, y1) * sy) : int(np.ceil(y2 * sy)), int(max(0, x1) * sx) : int(np.ceil(x2 * sx))] = False
        return float((changed & outside).sum() / max(1, outside.sum()))


class FaceTracker:
    def __init__(self, cfg: TrackerConfig, new_id: Callable[[], int]) -> None:
        self._cfg = cfg
        self._new_id = new_id
        self.tracks: dict[int, Track] = {}
        self.ended: list[Track] = []  # tracks that ended since the caller last drained this
        self.last_t = -np.inf  # time of the latest frame

    def _start(self, xyxy: npt.NDArray[np.float32], t: float) -> Track:
        track = Track(self._new_id(), xyxy.copy(), t, t)
        self.tracks[track.id] = track
        return track

    def _end(self, track_id: int) -> None:
        self.ended.append(self.tracks.pop(track_id))

    def update(
        self,
        faces: FaceDetections,
        t: float,
        scene_cut: bool = False,
        signatures: npt.NDArray[np.float32] | None = None,
    ) -> npt.NDArray[np.int64]:
        """Set faces.track_id; return the indices of faces due for an embedding.

        `signatures` (see align.appearance_signatures) lets a sudden change of appearance inside a
        track, a possible swap of people, make the face due at once rather than at the next re-embed.
        """
        self.last_t = t
        if scene_cut:
            for tid in list(self.tracks):
                self._end(tid)
        for tid, tr in list(self.tracks.items()):
            if t - tr.last_t > self._cfg.max_gap_seconds:
                self._end(tid)
        ids = list(self.tracks)
        assigned = np.full(len(faces), -1, np.int64)
        if ids and len(faces):
            iou = iou_matrix(faces.xyxy, np.stack([self.tracks[i].xyxy for i in ids]))
            # Greedy by overlap: enough for the few faces of one frame.
            for flat in np.argsort(-iou, axis=None):
                f, k = divmod(int(flat), len(ids))
                if iou[f, k] < self._cfg.min_iou:
                    break
                if assigned[f] == -1 and ids[k] not in assigned:
                    assigned[f] = ids[k]
        if signatures is not None:
            self._link_by_appearance(faces, signatures, assigned)
        due = []
        for i in range(len(faces)):
            track = self.tracks[assigned[i]] if assigned[i] != -1 else self._start(faces.xyxy[i], t)
            assigned[i] = track.id
            track.xyxy = faces.xyxy[i].copy()
            track.last_t = t
            track.hits += 1
            box = faces.xyxy[i]
            size_score = float(faces.det_score[i] * (box[2] - box[0]) * (box[3] - box[1]))
            changed, same_picture = False, False
            if signatures is not None:
                if track.signature is not None:
                    changed = float(signatures[i] @ track.signature) < self._cfg.min_appearance_similarity
                if track.embedded_signature is not None:
                    same_picture = float(signatures[i] @ track.embedded_signature) >= SAME_PICTURE
                track.signature = signatures[i]
            if (
                track.n_emb == 0
                or changed
                or size_score > track.best_size_score * self._cfg.quality_gain
                or (t - track.last_embed_t >= self._cfg.reembed_every_seconds and not same_picture)
            ):
                due.append(i)
        faces.track_id = assigned
        return np.array(due, np.int64)

    def _link_by_appearance(
        self, faces: FaceDetections, signatures: npt.NDArray[np.float32], assigned: npt.NDArray[np.int64]
    ) -> None:
        """Continue tracks that overlap no face with a face nearby that looks the same.

        A face moving fast (someone walking in or out of view) can travel most of its width
        between two sampled frames: no overlap left, yet the same face. Left unlinked, it would
        start a new track and cost an embedding; its look and a short distance say it is the same.
        """
        free = [tid for tid, tr in self.tracks.items() if tid not in assigned and tr.signature is not None]
        pairs = []
        for f in np.flatnonzero(assigned == -1):
            box = faces.xyxy[f]
            for tid in free:
                tr = self.tracks[tid]
                width = max(box[2] - box[0], tr.xyxy[2] - tr.xyxy[0])
                dist = np.hypot(*((box[:2] + box[2:]) - (tr.xyxy[:2] + tr.xyxy[2:])) / 2)
                similarity = float(signatures[f] @ tr.signature)
                if dist <= self._cfg.link_max_distance * width and similarity >= self._cfg.min_appearance_similarity:
                    pairs.append((similarity, int(f), tid))
        for _, f, tid in sorted(pairs, reverse=True):  # the most alike first
            if assigned[f] == -1 and tid not in assigned:
                assigned[f] = tid

    def confirm_embedding(
        self, index_track: int, emb: npt.NDArray[np.float32], quality: float, size_score: float, t: float
    ) -> Track:
        """Add a fresh embedding to its track, or break the track when the face is someone else's."""
        track = self.tracks[index_track]
        signature = track.signature
        if track.n_emb and track.mean_similarity(emb) < self._cfg.min_self_similarity:
            self._end(track.id)
            track = self._start(track.xyxy, t)
            track.signature = signature
        track.embedded_signature = signature
        track.emb_sum = emb.copy() if track.emb_sum is None else track.emb_sum + emb
        track.n_emb += 1
        track.quality = quality
        track.last_embed_t = t
        track.best_size_score = max(track.best_size_score, size_score)
        return track

    def visible(self) -> npt.NDArray[np.float32]:
        """(k, 4) boxes of the tracks seen in the latest frame."""
        boxes = [t.xyxy for t in self.tracks.values() if t.last_t == self.last_t]
        return np.stack(boxes) if boxes else np.zeros((0, 4), np.float32)

    def drain_ended(self) -> list[Track]:
        ended, self.ended = self.ended, []
        return ended
