"""Detector, alignment, microbatched embedder and tracker, on the real bundled models and real photos."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NoReturn

import cv2
import numpy as np
import pytest

from streamer.config import ModelConfig, TrackerConfig
from streamer.demo.cast import Person, shipped_photos
from streamer.errors import ModelError
from streamer.faces import align, bundled
from streamer.faces.align import StillSignatures, align_faces, appearance_signatures
from streamer.faces.detector import FaceDetector
from streamer.faces.embedder import FaceEmbedder, embed_now
from streamer.faces.models import ModelPack, bundled_model_dir, load_pack
from streamer.faces.tracker import FaceTracker, SceneCutDetector
from streamer.records import FaceDetections
from streamer.scene import subsample


@pytest.fixture(scope="module")
def t1() -> np.ndarray:
    return cv2.imread(str(shipped_photos()[0]))


def test_detector_finds_the_six_people_with_keypoints_inside_boxes(detector: FaceDetector, t1: np.ndarray) -> None:
    faces = detector.detect(t1)
    assert len(faces) == 6
    assert (faces.det_score > 0.8).all()
    inside_x = (faces.kps[:, :, 0] >= faces.xyxy[:, None, 0]) & (faces.kps[:, :, 0] <= faces.xyxy[:, None, 2])
    inside_y = (faces.kps[:, :, 1] >= faces.xyxy[:, None, 1]) & (faces.kps[:, :, 1] <= faces.xyxy[:, None, 3])
    assert (inside_x & inside_y).all()
    assert faces.face_type == ["ortho"] * 6


def test_alignment_matches_insightface_reference(pack: ModelPack, detector: FaceDetector, t1: np.ndarray) -> None:
    from insightface.utils import face_align

    faces = detector.detect(t1)
    ours = embed_now(pack.recognizer, align_faces(t1, faces.kps))
    ref = embed_now(pack.recognizer, np.stack([face_align.norm_crop(t1, k) for k in faces.kps]))
    assert (ours.vectors * ref.vectors).sum(1).min() > 0.999
    assert np.allclose(np.linalg.norm(ours.vectors, axis=1), 1, atol=1e-5)
    assert (ours.quality > 10).all()


def test_our_networks_give_what_insightface_gives(pack: ModelPack, t1: np.ndarray) -> None:
    from insightface.model_zoo import get_model

    cpu = ["CPUExecutionProvider"]
    det = get_model(str(bundled_model_dir() / "scrfd_500m_bnkps.onnx"), providers=cpu)
    det.prepare(0, det_thresh=0.5)
    rec = get_model(str(bundled_model_dir() / "w600k_mbf.onnx"), providers=cpu)
    for size in ((640, 448), (320, 224), (160, 160), (640, 640)):
        boxes, kps = pack.detector.detect(t1, input_size=size)
        ref_boxes, ref_kps = det.detect(t1, input_size=size)
        assert boxes.shape == ref_boxes.shape and len(boxes) > 0
        assert np.allclose(boxes, ref_boxes, atol=1e-3) and np.allclose(kps, ref_kps, atol=1e-3)
    faces = list(align_faces(t1, kps))
    assert np.allclose(pack.recognizer.get_feat(faces), rec.get_feat(faces), atol=1e-4)


def test_six_people_are_six_identities(pack: ModelPack, detector: FaceDetector, t1: np.ndarray) -> None:
    faces = detector.detect(t1)
    e = embed_now(pack.recognizer, align_faces(t1, faces.kps)).vectors
    sim = e @ e.T
    np.fill_diagonal(sim, -1)
    assert sim.max() < 0.3  # M3-Agent's matching threshold separates them
    flipped = embed_now(pack.recognizer, align_faces(t1[:, ::-1].copy(), detector.detect(t1[:, ::-1].copy()).kps)).vectors
    assert (flipped @ e.T).max(1).min() > 0.6  # and a mirrored photo still matches its person


def test_microbatcher_groups_concurrent_callers_and_keeps_rows_apart(pack: ModelPack, detector: FaceDetector, t1: np.ndarray) -> None:
    faces = detector.detect(t1)
    aligned = align_faces(t1, faces.kps)
    expected = embed_now(pack.recognizer, aligned).vectors

    async def go() -> tuple[list[np.ndarray], int]:
        with ThreadPoolExecutor(1) as ex:
            emb = FaceEmbedder(pack.recognizer, ex, batch_size=32, max_wait_ms=50)
            server = asyncio.create_task(emb.serve())
            results = await asyncio.gather(*(emb.embed(aligned[i : i + 1]) for i in range(6)))
            server.cancel()
            return [r.vectors[0] for r in results], emb.stats.batches

    vectors, batches = asyncio.run(go())
    assert batches < 6
    for i, v in enumerate(vectors):
        assert float(v @ expected[i]) > 0.999


def test_microbatcher_does_not_wait_when_nobody_else_can_join(pack: ModelPack, detector: FaceDetector, t1: np.ndarray) -> None:
    aligned = align_faces(t1, detector.detect(t1).kps)

    async def go() -> int:
        with ThreadPoolExecutor(1) as ex:
            emb = FaceEmbedder(pack.recognizer, ex, batch_size=32, max_wait_ms=600_000)  # ten minutes
            server = asyncio.create_task(emb.serve())
            for i in range(3):  # one caller, frame after frame: each batch runs at once
                await asyncio.wait_for(emb.embed(aligned[i : i + 2]), timeout=60)
            server.cancel()
            return emb.stats.batches

    assert asyncio.run(go()) == 3


def test_bundled_files_are_hashed_ahead_and_an_altered_one_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run starts the hash check beside its imports (check_soon); loading the models waits for
    its verdict, the same as hashing then."""
    hashed: list[Path] = []
    check_now = bundled._check_now
    monkeypatch.setattr(bundled, "_check_now", lambda root: hashed.append(root) or check_now(root))
    monkeypatch.setattr(bundled, "_early", None)
    bundled.check_soon()
    bundled.check(bundled.bundled_model_dir())  # the installed files pass
    assert hashed == [bundled.bundled_model_dir()]  # once, by the thread: check() took its verdict
    altered = tmp_path / "model"
    altered.mkdir()
    for name in bundled.BUNDLED_FILES:
        (altered / name).write_bytes(b"not the model")
    monkeypatch.setattr(bundled, "_early", None)
    monkeypatch.setattr(bundled, "bundled_model_dir", lambda: altered)
    bundled.check_soon()
    with pytest.raises(ModelError, match=r"^bundled model scrfd_500m_bnkps.onnx is missing or altered: reinstall"):
        bundled.check(altered)


def test_model_dir_loads_a_pack_and_rejects_incomplete_ones(tmp_path: Path) -> None:
    pack_dir = tmp_path / "buffalo_s"
    pack_dir.mkdir()
    for name in ("scrfd_500m_bnkps.onnx", "w600k_mbf.onnx"):
        (pack_dir / name).symlink_to(bundled_model_dir() / name)
    pack = load_pack(ModelConfig(model_dir=str(pack_dir), providers="cpu"))
    assert pack.name == "buffalo_s" and pack.gates == (0.6, 15.0)
    (pack_dir / "w600k_mbf.onnx").unlink()
    with pytest.raises(ModelError, match="no recognition model"):
        load_pack(ModelConfig(model_dir=str(pack_dir), providers="cpu"))
    with pytest.raises(ModelError, match="model folder not found"):
        load_pack(ModelConfig(model_dir=str(tmp_path / "nope"), providers="cpu"))
    (pack_dir / "w600k_mbf.onnx").write_text("not a model")
    with pytest.raises(ModelError, match="cannot load face model w600k_mbf.onnx"):
        load_pack(ModelConfig(model_dir=str(pack_dir), providers="cpu"))


def _one_face(x: float) -> FaceDetections:
    return FaceDetections(
        np.array([[x, 50, x + 60, 130]], np.float32), np.array([0.9], np.float32), np.zeros((1, 5, 2), np.float32)
    )


def test_tracker_follows_a_moving_face_and_embeds_only_when_due() -> None:
    ids = iter(range(100, 200))
    tracker = FaceTracker(TrackerConfig(reembed_every_seconds=1.0), lambda: next(ids))
    dues, tracks = [], []
    for k in range(8):
        faces = _one_face(100 + 5 * k)
        due = tracker.update(faces, t=0.2 * k)
        for i in due:
            tracker.confirm_embedding(int(faces.track_id[i]), np.eye(512, dtype=np.float32)[0], 20.0, 0.9 * 60 * 80, 0.2 * k)
        dues.append(len(due))
        tracks.append(int(faces.track_id[0]))
    assert set(tracks) == {100}
    assert dues[0] == 1 and sum(dues) == 2  # new track, then once more after a second


def test_tracker_ends_tracks_at_a_cut_and_when_the_face_changes() -> None:
    ids = iter(range(1, 100))
    tracker = FaceTracker(TrackerConfig(), lambda: next(ids))
    a, b = np.eye(512, dtype=np.float32)[:2]
    faces = _one_face(100)
    tracker.update(faces, 0.0)
    first = tracker.confirm_embedding(int(faces.track_id[0]), a, 20.0, 100.0, 0.0).id
    faces = _one_face(102)
    tracker.update(faces, 0.2, scene_cut=True)
    assert int(faces.track_id[0]) != first  # same place, but after a cut it is a new track
    second = tracker.confirm_embedding(int(faces.track_id[0]), a, 20.0, 100.0, 0.2).id
    faces = _one_face(104)
    tracker.update(faces, 0.4)
    assert int(faces.track_id[0]) == second
    third = tracker.confirm_embedding(second, b, 20.0, 100.0, 0.4)  # someone else in the same box
    assert third.id != second and third.n_emb == 1
    assert {t.id for t in tracker.drain_ended()} == {first, second}


def _pasted(people: list[tuple[Person, int]]) -> np.ndarray:
    frame = np.full((360, 640, 3), 90, np.uint8)
    for person, x in people:
        h, w = person.image.shape[:2]
        frame[:h, x : x + w] = person.image
    return frame


def test_tracker_follows_a_face_that_moves_its_width_between_frames(detector: FaceDetector, cast: list[Person]) -> None:
    """Someone walking into view: no overlap left between sampled frames, but the same face nearby."""
    ids = iter(range(1, 100))
    tracker = FaceTracker(TrackerConfig(), lambda: next(ids))
    tracks = []
    step = cast[0].image.shape[1] // 2  # the face box is narrower than the cut-out: it moves about its width
    for k, people in enumerate([[(cast[0], 10)], [(cast[0], 10 + step)], [(cast[0], 10 + 2 * step)]]):
        image = _pasted(people)
        faces = detector.detect(image)
        assert len(faces) == 1
        tracker.update(faces, 0.2 * k, signatures=appearance_signatures(image, faces.kps))
        tracks.append(int(faces.track_id[0]))
    assert len(set(tracks)) == 1
    # Someone else at the same distance is not them.
    image = _pasted([(cast[4], 10 + 3 * step)])
    faces = detector.detect(image)
    tracker.update(faces, 0.6, signatures=appearance_signatures(image, faces.kps))
    assert int(faces.track_id[0]) not in tracks


def test_a_still_picture_is_not_embedded_again_until_it_changes(detector: FaceDetector, cast: list[Person]) -> None:
    ids = iter(range(1, 100))
    tracker = FaceTracker(TrackerConfig(reembed_every_seconds=1.0), lambda: next(ids))
    still, moved = _pasted([(cast[0], 100)]), _pasted([(cast[0], 103)])
    moved = cv2.GaussianBlur(moved, (3, 3), 0)  # a real camera's next frame: shifted, a little softer
    dues = []
    for k, image in enumerate([still] * 10 + [moved]):
        faces = detector.detect(image)
        due = tracker.update(faces, 0.2 * k, signatures=appearance_signatures(image, faces.kps))
        for i in due:
            x1, y1, x2, y2 = faces.xyxy[i]
            size_score = float(faces.det_score[i] * (x2 - x1) * (y2 - y1))
            tracker.confirm_embedding(int(faces.track_id[i]), np.eye(512, dtype=np.float32)[0], 20.0, size_score, 0.2 * k)
        dues.append(len(due))
    assert dues[0] == 1 and sum(dues[1:10]) == 0  # two seconds of the same picture: one embedding
    assert dues[10] == 1  # the face moved: due again, its last embedding being over a second old


def test_still_signatures_are_those_of_each_frame_bit_for_bit(
    detector: FaceDetector, cast: list[Person], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A still frame's kept faces reuse the last signatures only where the pixels the alignment reads
    are the very same; any other change gives the frame's own, and the result is always the frame's."""
    frame = _pasted([(cast[0], 100), (cast[1], 640 - cast[1].image.shape[1])])  # one face at the right edge
    kps = detector.detect(frame).kps
    assert len(kps) == 2
    nose_x, nose_y = kps[0, 2].astype(int)
    bit = frame.copy()
    bit[nose_y, nose_x, 1] ^= 1  # one bit of one pixel of the first face
    block = frame.copy()
    block[nose_y - 2 : nose_y + 3, nose_x - 2 : nose_x + 3] += 6
    unread = block.copy()
    unread[-5:, :50] = 0  # far from both faces
    calls = [
        (frame, kps), (frame.copy(), kps),  # the same pixels: reused
        (bit, kps), (bit.copy(), kps),
        (block, kps), (unread, kps),
        (unread, kps),  # the very same picture again: it may have been written, so computed
        (frame[:, ::-1].copy(), kps + np.float32(0.25)), (frame, kps), (frame, kps[:0]),
    ]  # fmt: skip
    computed = []
    monkeypatch.setattr(align, "appearance_signatures", lambda *a, **k: computed.append(1) or appearance_signatures(*a, **k))
    memo = StillSignatures()
    for image, points in calls:
        ours, ref = memo(image, points), appearance_signatures(image, points)
        assert ours.shape == ref.shape and np.array_equal(ours, ref)
    assert len(computed) == 7
    assert not np.array_equal(appearance_signatures(block, kps), appearance_signatures(frame, kps))

    def fails(*a: object, **k: object) -> NoReturn:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(align, "appearance_signatures", fails)
    with pytest.raises(RuntimeError):
        memo(block, kps)  # its signatures never made: the next frame with its pixels cannot reuse the last
    monkeypatch.undo()
    assert np.array_equal(memo(block.copy(), kps), appearance_signatures(block, kps))


def test_scene_cut_detector_on_real_frames(cast: list[Person]) -> None:
    cuts = SceneCutDetector(40.0)
    canvas = np.zeros((360, 640, 3), np.uint8)
    a = canvas.copy()
    a[: cast[0].image.shape[0], : cast[0].image.shape[1]] = cast[0].image
    moved = np.roll(a, 6, axis=1)
    other = cv2.resize(cast[4].image, (640, 360))
    assert cuts(a) is False
    assert cuts(moved) is False
    assert cuts(other) is True


@pytest.mark.parametrize("shape", [(360, 640, 3), (1080, 1920, 3), (361, 641, 3), (360, 640)])
def test_the_scene_cut_subsample_picks_the_very_pixels_of_a_strided_slice(cast: list[Person], shape: tuple[int, ...]) -> None:
    image = cv2.resize(cast[2].image, shape[1::-1])
    image = image if len(shape) == 3 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    for step in range(1, 9):
        picked = subsample(image, step)
        assert picked.flags.c_contiguous and np.array_equal(picked, image[::step, ::step])
    assert np.array_equal(subsample(image[:, ::-1], 3), image[:, ::-1][::3, ::3])  # not contiguous: sliced as it is
