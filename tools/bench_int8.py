"""Would int8 face networks pay? Static QDQ quantisation of the bundled pair, measured, not used.

    python tools/bench_int8.py VIDEO [VIDEO ...]

Quantises the bundled detector and recognizer (onnxruntime's static quantisation, per-channel int8
weights, uint8 activations, calibrated on half the sampled frames and their faces), then prints, on
the other half, one thread's time per run of each network in float and in int8, the detector's
faces (score >= 0.6) found by each, and how far each int8 embedding moved from its float one
(cosine). Needs the `onnx` package. Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np
import onnx
import onnxruntime as ort
from onnx import version_converter
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from streamer.faces.align import align_faces
from streamer.faces.bundled import bundled_model_dir
from streamer.faces.networks import ArcFace, Scrfd
from streamer.faces.prelu import rewrite

DETECT_SIZE = (640, 384)  # the full-size search of a 640x360 camera
SCORE = 0.6  # buffalo_s's detection gate
QDQ_OPSET = 13  # per-channel DequantizeLinear needs an axis


def frames(paths: list[str], every: int = 10, most: int = 60) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for path in paths:
        with av.open(path) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i % every == 0:
                    out.append(frame.to_ndarray(format="bgr24"))
                if len(out) >= most * (paths.index(path) + 1):
                    break
    return out


def session(model: str | bytes) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
    opts.log_severity_level = 3
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


class Feeds(CalibrationDataReader):
    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._it = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def quantised(model: onnx.ModelProto, calibration: list[dict[str, np.ndarray]], folder: Path, name: str) -> str:
    src, pre, out = (folder / f"{name}-{part}.onnx" for part in ("opset", "pre", "int8"))
    onnx.save(version_converter.convert_version(model, QDQ_OPSET), src)
    quant_pre_process(str(src), str(pre))
    quantize_static(str(pre), str(out), Feeds(calibration), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return str(out)


def per_run_ms(run, inputs: list) -> float:  # type: ignore[no-untyped-def]
    run(inputs[0])  # first run builds the kernels
    t = time.thread_time()
    for x in inputs:
        run(x)
    return 1000 * (time.thread_time() - t) / len(inputs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("videos", nargs="+")
    args = ap.parse_args()
    try:
        images = frames(args.videos)
    except (av.FFmpegError, OSError) as e:
        sys.exit(f"bench_int8: cannot read the videos: {e}")
    calibrate, measure = images[::2], images[1::2]
    root = bundled_model_dir()
    det_file, rec_file = root / "scrfd_500m_bnkps.onnx", root / "w600k_mbf.onnx"
    det = Scrfd(session(str(det_file)), det_file, SCORE)
    graph = rewrite(rec_file)
    rec = ArcFace(session(graph), rec_file, 127.5, 127.5)

    def faces(images: list[np.ndarray]) -> list[np.ndarray]:
        return [face for img in images for face in align_faces(img, det.detect(img, DETECT_SIZE)[1])]

    det_feeds: list[dict[str, np.ndarray]] = []
    rec_feeds: list[dict[str, np.ndarray]] = []
    with recording(det, det_feeds):  # calibrated on the very inputs each network is given
        calib_faces = faces(calibrate)
    with recording(rec, rec_feeds):
        for face in calib_faces:
            rec.get_feat([face])
    faces_fp = faces(measure)
    if not calib_faces or not faces_fp:
        sys.exit("bench_int8: no faces in those videos")

    with tempfile.TemporaryDirectory() as tmp:
        model = onnx.load_from_string(graph) if isinstance(graph, bytes) else onnx.load(graph)
        det_q = Scrfd(session(quantised(onnx.load(str(det_file)), det_feeds, Path(tmp), "det")), det_file, SCORE)
        rec_q = ArcFace(session(quantised(model, rec_feeds, Path(tmp), "rec")), rec_file, 127.5, 127.5)

    for name, d in (("float", det), ("int8", det_q)):
        ms = per_run_ms(lambda img: d.detect(img, DETECT_SIZE), measure)
        found = sum(len(d.detect(img, DETECT_SIZE)[0]) for img in measure)
        print(f"detector {name:5}: {ms:5.2f} ms a frame at {DETECT_SIZE[0]}x{DETECT_SIZE[1]}, "
              f"{found} faces in {len(measure)} frames")
    for name, r in (("float", rec), ("int8", rec_q)):
        print(f"recognizer {name:5}: {per_run_ms(lambda f: r.get_feat([f]), faces_fp):5.2f} ms a face")
    a, b = rec.get_feat(faces_fp), rec_q.get_feat(faces_fp)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    print(f"int8 embedding against float, cosine over {len(cos)} faces: median {np.median(cos):.3f}, "
          f"min {cos.min():.3f}")


class _Recorder:
    """Passes runs through to a session and keeps each run's inputs."""

    def __init__(self, inner: ort.InferenceSession, feeds: list[dict[str, np.ndarray]]) -> None:
        self.inner, self._feeds = inner, feeds

    def run(self, outputs: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        self._feeds.append(feed)
        return self.inner.run(outputs, feed)


@contextmanager
def recording(network: Scrfd | ArcFace, feeds: list[dict[str, np.ndarray]]) -> Iterator[None]:
    inner = network.session
    network.session = _Recorder(inner, feeds)
    try:
        yield
    finally:
        network.session = inner


if __name__ == "__main__":
    main()
