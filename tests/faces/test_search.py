"""Detection on crops around tracked faces, and when the whole frame is searched: real models, real people."""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np

from streamer.config import ModelConfig, TrackerConfig
from streamer.demo.cast import Person, shipped_photos
from streamer.demo.compose import Appearance, render_video, sampled_frames
from streamer.faces.align import align_faces
from streamer.faces.detector import FaceDetector, crop_regions
from streamer.faces.embedder import embed_now
from streamer.faces.models import ModelPack
from streamer.faces.search import FaceSearch
from streamer.faces.tracker import FaceTracker, SceneCutDetector, iou_matrix


def test_crops_find_the_faces_a_full_search_finds(pack: ModelPack, detector: FaceDetector) -> None:
    t1 = cv2.imread(str(shipped_photos()[0]))
    wide = cv2.copyMakeBorder(t1, 0, 0, 0, t1.shape[1], cv2.BORDER_CONSTANT)  # an empty right half
    full = detector.detect(wide)
    assert len(full) == 6
    empty = full.xyxy[:1] + np.array([t1.shape[1], 0, t1.shape[1], 0], np.float32)  # a box where nobody is
    regions = crop_regions(np.concatenate([full.xyxy, empty]), wide.shape, 2.0)
    assert (regions[:, 2] - regions[:, 0] == regions[:, 3] - regions[:, 1]).all()  # squares...
    assert (regions >= 0).all() and (regions[:, [2, 3]] <= [wide.shape[1], wide.shape[0]]).all()  # ...inside the frame
    faces, found = detector.detect_crops(wide, regions)
    assert found.tolist() == [True] * 6 + [False]
    assert len(faces) == 6  # neighbours seen by several crops are reported once
    iou = iou_matrix(full.xyxy, faces.xyxy)
    assert iou.max(axis=1).min() > 0.7
    # Keypoints from a crop (more pixels per face than a 640 px search of this wide frame) align the
    # face as a search at twice the size does: the same embedding.
    sharp = FaceDetector(pack.detector, ModelConfig(det_size=1280)).detect(wide)
    nearest = iou_matrix(sharp.xyxy, faces.xyxy).argmax(axis=1)
    ours = embed_now(pack.recognizer, align_faces(wide, faces.kps[nearest])).vectors
    ref = embed_now(pack.recognizer, align_faces(wide, sharp.kps)).vectors
    assert (ours * ref).sum(1).min() > 0.9


def test_changed_outside_ignores_motion_inside_the_given_regions(cast: list[Person]) -> None:
    cuts = SceneCutDetector(30.0)
    frame = np.full((360, 640, 3), 90, np.uint8)
    cuts(frame)
    moved = frame.copy()
    sprite = cast[0].image
    moved[: sprite.shape[0], : sprite.shape[1]] = sprite
    assert cuts(moved) is False
    assert cuts.changed_outside(np.zeros((0, 4), np.float32), frame.shape) > 0.05
    box = np.array([[0, 0, sprite.shape[1], sprite.shape[0]]], np.float32)
    assert cuts.changed_outside(box, frame.shape) == 0.0


def test_tracked_faces_use_crops_and_newcomers_are_found_within_half_a_second(
    pack: ModelPack, cast: list[Person], media_dir: Path
) -> None:
    video = media_dir / "search.mp4"
    script = [Appearance(0, 0, 6, 0.25), Appearance(1, 2.1, 6, 0.75, scale=0.8), Appearance(2, 7, 9, 0.5)]
    render_video(video, cast, script)  # nobody in view from 6 s to 7 s
    cfg = ModelConfig()
    search = FaceSearch(FaceDetector(pack.detector, cfg), cfg, 30.0)
    reference = FaceDetector(pack.detector, cfg)
    ids = itertools.count()
    tracker = FaceTracker(TrackerConfig(), lambda: next(ids))
    first_ours: dict[int, float] = {}
    first_ref: dict[int, float] = {}
    frames = sampled_frames(video, 5.0)
    for t, image in frames:
        faces, cut = search.find(image, t, tracker.visible())
        tracker.update(faces, t, cut)
        for seen, found in ((first_ours, faces), (first_ref, reference.detect(image))):
            for box in found.xyxy:
                for k, a in enumerate(script):  # whose face is it: the one in view nearest to it
                    if a.start <= t < a.end and abs((box[0] + box[2]) / 2 / image.shape[1] - a.x) < 0.1:
                        seen.setdefault(k, t)
    assert set(first_ref) == {0, 1, 2}
    assert set(first_ours) == set(first_ref)
    assert max(first_ours[k] - first_ref[k] for k in first_ref) <= 0.5 + 1e-6
    stats = search.stats
    assert stats.crops > stats.coarse  # between the periodic searches a face that stays costs a crop...
    assert stats.coarse + stats.full < len(frames) / 2  # ...and people coming or going a search
    assert stats.still >= 1  # an empty, still scene costs nothing between periodic searches


def test_a_still_frame_keeps_the_last_detection(pack: ModelPack, cast: list[Person]) -> None:
    frame = np.full((360, 640, 3), 90, np.uint8)
    sprite = cast[0].image
    frame[: sprite.shape[0], : sprite.shape[1]] = sprite
    cfg = ModelConfig()
    search = FaceSearch(FaceDetector(pack.detector, cfg), cfg, 30.0)
    first, _ = search.find(frame, 0.0, np.zeros((0, 4), np.float32))
    first.track_id[:] = 7  # the tracker writes into the records it gets
    again, _ = search.find(frame.copy(), 0.2, first.xyxy)
    assert len(first) == 1 and search.stats.still == 1 and search.stats.full == 1
    assert np.array_equal(again.xyxy, first.xyxy) and np.array_equal(again.kps, first.kps)
    assert again.track_id.tolist() == [-1]  # a fresh record, not the one the tracker changed
    search.find(frame.copy(), 1.2, again.xyxy)  # a full search is due, but would find the same
    assert search.stats.still == 2 and search.stats.full == 1
    frame[300:, 500:] = 255  # something changed, away from the face: a search, not the kept faces
    search.find(frame, 1.4, again.xyxy)
    assert search.stats.still == 2 and search.stats.coarse == 1


def test_periodic_full_searches_wait_while_only_the_tracked_people_move(pack: ModelPack, cast: list[Person]) -> None:
    """A person swaying in front of a still background: crops follow them, and the full-size search
    every second is put off (up to full_detect_still_every_seconds) until something changes elsewhere."""
    cfg = ModelConfig(search_change_fraction=0.5)  # a newcomer found by the periodic search alone
    search = FaceSearch(FaceDetector(pack.detector, cfg), cfg, 30.0)
    ids = itertools.count()
    tracker = FaceTracker(TrackerConfig(), lambda: next(ids))
    background = np.full((360, 640, 3), 90, np.uint8)
    person, newcomer = cast[0].image, cast[1].image
    fulls, found_at = [], None
    for k in range(26):
        t = 0.2 * k
        frame = background.copy()
        x = 40 + 4 * (k % 2)  # never the same frame twice
        frame[: person.shape[0], x : x + person.shape[1]] = person
        if t >= 3.4 - 1e-6:  # someone stands still at the other side from 3.4 s
            frame[: newcomer.shape[0], 600 - newcomer.shape[1] : 600] = newcomer
        faces, cut = search.find(frame, t, tracker.visible())
        tracker.update(faces, t, cut)
        fulls.append(search.stats.full)
        if found_at is None and len(faces) == 2:
            found_at = t
    assert fulls[14] == 1  # up to 2.8 s: the first search only, then crops
    assert fulls[15] == 2  # at 3 s one is no longer put off
    assert found_at is not None and found_at <= 4.0 + 1e-6  # a newcomer within the usual second
