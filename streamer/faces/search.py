"""Where to look for faces in a sampled frame: the whole frame, crops around the tracked faces, or nowhere.

A face that is tracked does not need a search of the whole frame: the detector looks at a square
around each face seen in the last frame (a few ms at 160 px). The whole frame is searched
- at full size at least every `full_detect_every_seconds` (new small or still faces), or every
  `full_detect_still_every_seconds` while nothing changed away from the tracked people since the last
  full-size search (a newcomer, however small or slow, changes something where they come in),
- at once on a scene cut, when the frame changed where no tracked face is (a grey-thumbnail
  difference masked by the crops and the bodies below them: someone may have come in), or when a
  crop lost its face,
- and always when crops would cost more than a search (many faces).
A frame in which nothing changed since the last detection (a photo, a still scene, with or
without people) costs no detection at all: its faces are kept, and the periodic full search is
skipped too while nothing changed since the last one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..config import ModelConfig
from ..records import FaceDetections
from .detector import FaceDetector, crop_regions, input_size
from .tracker import SceneCutDetector


@dataclass
class SearchStats:
    """How each analysed frame was searched, for the benchmark."""

    full: int = 0  # whole frame at full size
    coarse: int = 0  # whole frame at the coarse size
    crops: int = 0  # frames done with crops alone
    crop_runs: int = 0  # detector runs on crops (including those whose frame was searched after all)
    still: int = 0  # frames unchanged since the last detection: its faces kept
    skipped: int = 0  # frames with no face tracked and little changed


class FaceSearch:
    """One stream's detection; not thread-safe (a stream analyses one frame at a time)."""

    def __init__(self, detector: FaceDetector, cfg: ModelConfig, scene_cut_threshold: float) -> None:
        self._detector = detector
        self._cfg = cfg
        self._cuts = SceneCutDetector(scene_cut_threshold)
        self._last_full = -np.inf  # time of the last full-size search, or of one found needless
        self._full_at = -np.inf  # time of the last full-size search
        self._full_thumb: npt.NDArray[np.float32] | None = None  # thumbnail at the last full-size search
        self._kept: tuple[npt.NDArray[np.float32], FaceDetections] | None = None  # thumbnail and faces of the last detection
        self.stats = SearchStats()

    def find(
        self,
        image: npt.NDArray[np.uint8],
        t: float,
        tracked: npt.NDArray[np.float32],
        thumbnail: npt.NDArray[np.float32] | None = None,
    ) -> tuple[FaceDetections, bool]:
        """The faces of a frame, and whether it follows a scene cut. `tracked`: (k, 4) boxes of the
        faces seen in the previous analysed frame; `thumbnail`: the frame's scene thumbnail, if made."""
        cut = self._cuts(image, thumbnail)
        faces = self._find(image, t, tracked, cut)
        if faces is None:  # nothing changed: the last detection's faces, as new records
            self.stats.still += 1
            assert self._kept is not None
            return self._kept[1][np.arange(len(self._kept[1]))], cut
        assert self._cuts.thumbnail is not None
        self._kept = (self._cuts.thumbnail, faces[np.arange(len(faces))])
        return faces, cut

    def _find(
        self, image: npt.NDArray[np.uint8], t: float, tracked: npt.NDArray[np.float32], cut: bool
    ) -> FaceDetections | None:
        cfg = self._cfg
        full_due = t - self._last_full >= cfg.full_detect_every_seconds or t < self._last_full
        if full_due and not cut and cfg.crop_det_size and self._still_since(self._full_thumb) and self._kept_still():
            self._last_full = t  # a full search would find what the last one found
            return None
        regions = crop_regions(tracked, image.shape, cfg.crop_scale)
        people = np.concatenate([regions, _bodies(tracked, image.shape)])
        if (
            full_due
            and not cut
            and cfg.crop_det_size
            and len(regions)
            and t - self._full_at < cfg.full_detect_still_every_seconds
            and self._still_outside(people, image.shape)
        ):
            self._last_full = t  # only the tracked people moved since the last full search: their crops will do
            full_due = False
        if cut or full_due or not cfg.crop_det_size:
            return self._search(image, t, tracked, full_due)
        if self._kept_still():
            return None
        if self._cuts.changed_outside(people, image.shape) > cfg.search_change_fraction:
            return self._search(image, t, tracked, False)
        if not len(regions):
            self.stats.skipped += 1
            return FaceDetections.empty()
        # Crops while they cost less than the whole-frame search that would run instead.
        whole = cfg.coarse_det_size if self._coarse_fits(image, tracked) else cfg.det_size
        if len(regions) * cfg.crop_det_size**2 <= np.prod(input_size(image.shape, whole)):
            faces, found = self._detector.detect_crops(image, regions)
            self.stats.crop_runs += len(regions)
            if found.all():
                self.stats.crops += 1
                return faces
        return self._search(image, t, tracked, False)

    def _still_since(self, thumbnail: npt.NDArray[np.float32] | None) -> bool:
        return thumbnail is not None and self._cuts.still_since(thumbnail)

    def _still_outside(self, people: npt.NDArray[np.float32], shape: tuple[int, ...]) -> bool:
        """Nothing changed away from the tracked people since the last full-size search: a newcomer,
        however small or slow, would have changed something there."""
        return self._full_thumb is not None and self._cuts.changed_outside(people, shape, since=self._full_thumb) == 0.0

    def _kept_still(self) -> bool:
        return self._kept is not None and self._still_since(self._kept[0])

    def _search(self, image: npt.NDArray[np.uint8], t: float, tracked: npt.NDArray[np.float32], full: bool) -> FaceDetections:
        """The whole frame: at the coarse size (about a third of the cost) while faces are tracked and
        all of them are big enough to be found at that size; at full size when a full pass is due, or
        when nobody is tracked (how big a newcomer is, nothing tells)."""
        full = full or not self._coarse_fits(image, tracked)
        if full:
            self._last_full, self._full_at, self._full_thumb = t, t, self._cuts.thumbnail
            self.stats.full += 1
            return self._detector.detect(image)
        self.stats.coarse += 1
        return self._detector.detect(image, coarse=True)

    def _coarse_fits(self, image: npt.NDArray[np.uint8], tracked: npt.NDArray[np.float32]) -> bool:
        """Whether a coarse pass would still find every tracked face (none tracked: no telling)."""
        cfg = self._cfg
        if not cfg.coarse_det_size or not len(tracked):
            return False
        smallest = float(np.minimum(tracked[:, 2] - tracked[:, 0], tracked[:, 3] - tracked[:, 1]).min())
        return smallest * cfg.coarse_det_size / max(image.shape[:2]) >= cfg.coarse_min_face_px


def _bodies(xyxy: npt.NDArray[np.float32], shape: tuple[int, ...]) -> npt.NDArray[np.float32]:
    """Where the bodies of the tracked faces probably are: three faces wide, down to the frame's
    bottom. Their moving shoulders and hands are no sign of a new face."""
    w = xyxy[:, 2] - xyxy[:, 0]
    cx = (xyxy[:, 0] + xyxy[:, 2]) / 2
    bottom = np.full(len(xyxy), shape[0], np.float32)
    return np.stack([cx - 1.5 * w, xyxy[:, 1], cx + 1.5 * w, bottom], axis=1).reshape(-1, 4)
