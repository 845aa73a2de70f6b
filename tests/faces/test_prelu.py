"""The face networks rewritten for speed (PReLU as Max) give the original's numbers, and are cached."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from streamer.demo.cast import Person
from streamer.faces.align import align_faces
from streamer.faces.detector import FaceDetector
from streamer.config import ModelConfig
from streamer.faces.models import bundled_model_dir, load_pack
from streamer.faces.prelu import fast_graph

RECOGNIZER, DETECTOR = "w600k_mbf.onnx", "scrfd_500m_bnkps.onnx"


def _run(graph: str | bytes, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _faces(detector: FaceDetector, cast: list[Person]) -> np.ndarray:
    """Aligned real faces as the recognizer's input: (n, 3, 112, 112), (x - 127.5) / 127.5, RGB."""
    faces = np.concatenate([align_faces(p.image, detector.detect(p.image).kps[:1]) for p in cast]).astype(np.float32)
    return np.ascontiguousarray(((faces[..., ::-1] - 127.5) / 127.5).transpose(0, 3, 1, 2))


def test_rewritten_recognizer_gives_the_same_embeddings(tmp_path: Path, detector: FaceDetector, cast: list[Person]) -> None:
    original = bundled_model_dir() / RECOGNIZER
    x = _faces(detector, cast)
    assert len(x) == len(cast) > 5
    in_memory = fast_graph(original, None)
    assert isinstance(in_memory, bytes)
    assert "PRelu" not in {node.op_type for node in onnx.load_from_string(in_memory).graph.node}
    assert np.array_equal(_run(in_memory, x), _run(str(original), x))
    cached = fast_graph(original, str(tmp_path / "cache"))
    assert isinstance(cached, str) and Path(cached).parent == tmp_path / "cache"
    assert np.array_equal(_run(cached, x), _run(str(original), x))


def test_the_cache_is_reused_and_a_network_without_prelu_is_left_alone(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = fast_graph(bundled_model_dir() / RECOGNIZER, str(cache))
    mtime = Path(first).stat().st_mtime_ns
    assert fast_graph(bundled_model_dir() / RECOGNIZER, str(cache)) == first
    assert Path(first).stat().st_mtime_ns == mtime  # not written again
    detector = bundled_model_dir() / DETECTOR
    assert fast_graph(detector, str(cache)) == str(detector)
    assert len(list(cache.glob("scrfd_500m_bnkps-*.plain"))) == 1
    assert fast_graph(detector, str(cache)) == str(detector)


def test_an_unwritable_cache_falls_back_to_rewriting_in_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    graph = fast_graph(bundled_model_dir() / RECOGNIZER, str(blocker / "cache"))
    assert isinstance(graph, bytes)


def test_only_the_recognizer_of_a_pack_is_rewritten(tmp_path: Path) -> None:
    """The landmark network of a pack has PReLUs too, but is neither detector nor recognizer: it is
    not rewritten (nor kept in the cache); the recognizer is, and gives the same embeddings."""
    pack_dir, cache = tmp_path / "buffalo_s", tmp_path / "cache"
    pack_dir.mkdir()
    for name in ("2d106det.onnx", DETECTOR, RECOGNIZER):  # loaded in this order: the landmarks first
        (pack_dir / name).symlink_to(bundled_model_dir() / name)
    pack = load_pack(ModelConfig(model_dir=str(pack_dir), providers="cpu", cache_dir=str(cache)))
    assert Path(pack.recognizer.model_file).name == RECOGNIZER and Path(pack.detector.model_file).name == DETECTOR
    assert [p.name.split("-")[0] for p in cache.iterdir()] == ["w600k_mbf"]
    assert "PRelu" not in {node.op_type for node in onnx.load(str(next(cache.iterdir()))).graph.node}
    faces = np.random.default_rng(0).integers(0, 255, (3, 112, 112, 3), dtype=np.uint8)
    plain = load_pack(ModelConfig(providers="cpu", cache_dir=None), spin_wait=True).recognizer
    assert np.array_equal(pack.recognizer.get_feat(list(faces)), plain.get_feat(list(faces)))
