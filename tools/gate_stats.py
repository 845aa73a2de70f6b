"""Calibrate quality gates for a model pack: detection-score and embedding-norm distributions of the
faces in some videos, and how many faces each candidate gate keeps.

    python tools/gate_stats.py VIDEO... [--model-dir DIR]
"""

from __future__ import annotations

import argparse

import av
import numpy as np

from streamer.config import ModelConfig
from streamer.faces.align import align_faces
from streamer.faces.detector import FaceDetector
from streamer.faces.embedder import embed_now
from streamer.faces.models import load_pack
from streamer.sources.sampler import TimestampSampler

CANDIDATES = [(0.85, 22.0), (0.8, 20.0), (0.7, 18.0), (0.6, 15.0), (0.5, 12.0)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("videos", nargs="+")
    p.add_argument("--model-dir")
    p.add_argument("--fps", type=float, default=5.0)
    args = p.parse_args()
    pack = load_pack(ModelConfig(model_dir=args.model_dir))
    detector = FaceDetector(pack.detector, ModelConfig(model_dir=args.model_dir))
    print(f"pack {pack.name}; current default gates: detection >= {pack.gates[0]}, quality >= {pack.gates[1]}")
    for path in args.videos:
        dets: list[float] = []
        quality: list[float] = []
        sampler = TimestampSampler(args.fps)
        with av.open(path) as container:
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                if frame.pts is None or not sampler.take(float(frame.pts * stream.time_base)):
                    continue
                image = frame.to_ndarray(format="bgr24")
                faces = detector.detect(image)
                emb = embed_now(pack.recognizer, align_faces(image, faces.kps))
                dets += faces.det_score.tolist()
                quality += emb.quality.tolist()
        d, q = np.array(dets), np.array(quality)
        if not len(d):
            print(f"{path}: no faces")
            continue
        print(f"{path}: {len(d)} faces")
        print(f"  detection score p10/p50/p90: {np.percentile(d, 10):.2f} / {np.median(d):.2f} / {np.percentile(d, 90):.2f}")
        print(f"  quality (norm)  p10/p50/p90: {np.percentile(q, 10):.1f} / {np.median(q):.1f} / {np.percentile(q, 90):.1f}")
        for gd, gq in CANDIDATES:
            print(f"  gate det >= {gd:.2f}, quality >= {gq:4.1f}: keeps {100 * np.mean((d >= gd) & (q >= gq)):5.1f}%")


if __name__ == "__main__":
    main()
