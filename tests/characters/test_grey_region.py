"""What the reader keeps of each decoded frame for who-speaks: the region around the faces the
analysis last saw, the whole frame where the analysis is far behind (before its first frame, and
while a file's reader decodes ahead of it), and the same grey pixels for the same source pixels
wherever that region starts (a file's reader runs ahead of its analysis by a varying amount, so the
region it is given varies from run to run)."""

from __future__ import annotations

import av
import cv2
import numpy as np
import numpy.typing as npt

from streamer.characters.mouths import AHEAD_SECONDS, FaceTrail
from streamer.demo.cast import Person
from streamer.sources.grey_ring import GreyFrame, GreyRing


def _frame(cast: list[Person], width: int = 1280, height: int = 720) -> av.VideoFrame:
    """A real photo at 720p, as a decoder hands it over (planar YUV 4:2:0)."""
    photo = cv2.resize(cast[0].image, (width, height), interpolation=cv2.INTER_CUBIC)
    return av.VideoFrame.from_ndarray(photo, format="bgr24").reformat(format="yuv420p")


def _kept(ring: GreyRing, frame: av.VideoFrame, t: float = 0.0) -> GreyFrame:
    ring.push_frame(t, frame)
    (grey,) = ring.take_until(np.inf)
    return grey


def _at(grey: GreyFrame, points: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    xy = np.floor(grey.to_image(points)).astype(int)
    return grey.image[xy[:, 1], xy[:, 0]]


def test_frames_the_analysis_has_not_neared_are_kept_whole(cast: list[Person]) -> None:
    """A talking head speaks from the first second, and a file's reader decodes up to ~1.6 s ahead of
    the analysis (a cut there moves the faces): those frames must be there when the turn is scored."""
    trail, ring = FaceTrail(), GreyRing()
    ring.region = trail.region
    frame = _frame(cast)
    grey = _kept(ring, frame)
    assert grey.origin == (0, 0) and grey.image.shape == (360, 640)
    kps = np.array([[[500, 300], [600, 300], [550, 350], [510, 400], [590, 400]]], np.float32)
    trail.record(1.0, np.array([7]), kps)
    near = _kept(ring, frame, 1.0 + AHEAD_SECONDS / 2)  # about the analysis' time: around its faces
    assert near.origin == (300, 100) and near.image.shape == (250, 250)  # two face sizes around, at half scale
    assert _kept(ring, frame, 1.0 + 2 * AHEAD_SECONDS).image.shape == (360, 640)
    trail.record(1.2, np.zeros(0, np.int64), np.zeros((0, 5, 2), np.float32))  # analysed: nobody there
    ring.push_frame(1.3, frame)
    assert ring.take_until(np.inf) == []


def test_the_same_source_pixels_give_the_same_grey_pixels_wherever_the_region_starts(cast: list[Person]) -> None:
    frame = _frame(cast)
    greys = []
    for x1, y1 in ((300, 200), (301, 201), (303, 200)):
        ring = GreyRing()
        ring.region = lambda t, x1=x1, y1=y1: (x1, y1, 901, 651)
        greys.append(_kept(ring, frame))
    assert all(g.scale == 0.5 for g in greys)
    xs, ys = np.meshgrid(np.arange(304, 896, 2), np.arange(202, 648, 2))
    points = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
    first = _at(greys[0], points)
    assert first.std() > 10  # a photo, not a flat picture
    for grey in greys[1:]:
        assert np.array_equal(_at(grey, points), first)
