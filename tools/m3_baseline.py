"""A faithful rebuild of M3-Agent's offline face memorization path, as the baseline for tools/bench.py.

What M3-Agent does per video: cut it into 30 s clips; read frames at 5 fps; JPEG+base64-encode every
frame (and decode them again for the face model); detect and embed every face of every frame; run
HDBSCAN per clip (min_cluster_size 20) on precomputed cosine distances; keep faces with detection
> 0.85 and quality > 22; match each cluster to the graph's face nodes by the mean pairwise cosine
(>= 0.3), adding the cluster's embeddings to the matched node (at most 10, sampled) or creating a node.
Same model pack as the streamer, so the two are compared on the pipeline, not on the models.

    python tools/m3_baseline.py VIDEO [--model-dir DIR]

runs it as a whole process, as tools/bench.py times it: imports and model loading included, the
models loaded through insightface as M3-Agent loads them.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from sklearn.cluster import HDBSCAN

from streamer.faces.align import align_faces
from streamer.faces.embedder import embed_now
from streamer.faces.models import BUNDLED_FILES, bundled_model_dir

CLIP_SECONDS, FPS, MIN_CLUSTER, DET_GATE, QUALITY_GATE, MATCH, MAX_EMB = 30.0, 5.0, 20, 0.85, 22.0, 0.3, 10


@dataclass
class Result:
    decode: float = 0.0
    detect: float = 0.0
    embed: float = 0.0
    match: float = 0.0
    frames: int = 0
    faces: int = 0
    faces_with_node: int = 0
    nodes: list[list[np.ndarray]] = field(default_factory=list)


def _clips(path: str) -> list[list[str]]:
    """Frames at 5 fps by timestamp, as base64 JPEG, grouped into 30 s clips."""
    clips: list[list[str]] = []
    next_t = 0.0
    with av.open(path) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base) if frame.pts is not None else next_t
            if t + 1e-6 < next_t:
                continue
            next_t += 1.0 / FPS
            ok, jpg = cv2.imencode(".jpg", frame.to_ndarray(format="bgr24"))
            idx = int(t // CLIP_SECONDS)
            while len(clips) <= idx:
                clips.append([])
            clips[idx].append(base64.b64encode(jpg.tobytes()).decode())
    return clips


def _match(nodes: list[list[np.ndarray]], embs: np.ndarray) -> None:
    best, best_score = -1, MATCH
    for i, node in enumerate(nodes):
        score = float(np.mean(embs @ np.stack(node).T))
        if score >= best_score:
            best, best_score = i, score
    if best < 0:
        nodes.append(list(embs[:MAX_EMB]))
    else:
        merged = nodes[best] + list(embs)
        nodes[best] = random.sample(merged, MAX_EMB) if len(merged) > MAX_EMB else merged


def run_m3(path: str, detector: Any, recognizer: Any, det_size: int = 640) -> Result:
    """`detector.detect(image, input_size)` -> (boxes with scores, keypoints); `recognizer.get_feat`."""
    random.seed(0)
    res = Result()
    t0 = time.perf_counter()
    clips = _clips(path)
    res.decode = time.perf_counter() - t0
    for clip in clips:
        embs, dets, quals = [], [], []
        for b64 in clip:
            t0 = time.perf_counter()
            image = cv2.imdecode(np.frombuffer(base64.b64decode(b64), np.uint8), cv2.IMREAD_COLOR)
            boxes, kps = detector.detect(image, input_size=(det_size, det_size))
            t1 = time.perf_counter()
            e = embed_now(recognizer, align_faces(image, kps))
            res.embed += time.perf_counter() - t1
            res.detect += t1 - t0
            res.frames += 1
            embs.extend(e.vectors)
            dets.extend(boxes[:, 4])
            quals.extend(e.quality)
        res.faces += len(embs)
        if len(embs) < 2:
            continue
        t0 = time.perf_counter()
        e = np.stack(embs)
        dist = np.clip(1.0 - e @ e.T, 0, None).astype(np.float64)
        labels = HDBSCAN(min_cluster_size=MIN_CLUSTER, metric="precomputed").fit_predict(dist)
        good = (np.array(dets) > DET_GATE) & (np.array(quals) > QUALITY_GATE)
        for label in set(labels) - {-1}:
            members = (labels == label) & good
            if members.any():
                _match(res.nodes, e[members])
                res.faces_with_node += int(members.sum())
        res.match += time.perf_counter() - t0
    return res


def load_like_m3(model_dir: str | None) -> tuple[Any, Any]:
    """The pack's detector and recognizer through insightface's model_zoo, with its default threads."""
    from insightface.model_zoo import get_model

    paths = [bundled_model_dir() / f for f in BUNDLED_FILES] if model_dir is None else sorted(Path(model_dir).rglob("*.onnx"))
    models = {}
    for path in paths:
        model = get_model(str(path), providers=["CPUExecutionProvider"])
        models.setdefault(getattr(model, "taskname", None), model)
    models["detection"].prepare(0, det_thresh=0.5)
    return models["detection"], models["recognition"]


def main() -> int:
    p = argparse.ArgumentParser(description="M3-Agent's offline face memorization path on one video.")
    p.add_argument("video")
    p.add_argument("--model-dir")
    args = p.parse_args()
    r = run_m3(args.video, *load_like_m3(args.model_dir))
    print(json.dumps({"frames": r.frames, "faces": r.faces, "faces_with_node": r.faces_with_node, "identities": len(r.nodes)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
