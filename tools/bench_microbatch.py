"""Detection + embedding microbatching with N simulated cameras, on the CPU or CUDA provider.

    python tools/bench_microbatch.py [--cameras 1 8 32] [--seconds 10] [--providers auto|cpu|cuda]

Each simulated camera is a task that takes a 720p frame of real people (the six of the photo
shipped with insightface), detects its faces on the one inference thread as the App does, aligns
them and sends every face to the shared microbatcher (FaceEmbedder: batches of up to 32, waiting at
most 20 ms for other cameras). No decoding, no tracking: every face of every frame is embedded, so
this is the models' and the batcher's ceiling. Prints, per N: frames/s per camera and in all, faces
embedded per second, batch sizes, and the time of each stage. tools/gpu_check.sh runs it.
Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from streamer.config import EmbedderConfig, ModelConfig
from streamer.demo.cast import shipped_photos
from streamer.faces.align import align_faces
from streamer.faces.detector import FaceDetector
from streamer.faces.embedder import FaceEmbedder
from streamer.faces.models import ModelPack, load_pack

SIZE = (1280, 720)


@dataclass
class CameraCount:
    frames: int = 0
    faces: int = 0
    detect_s: float = 0.0


def frame_of_people() -> npt.NDArray[np.uint8]:
    """The six-person photo, letterboxed into a 720p frame."""
    photo = cv2.imread(str(shipped_photos()[0]))
    scale = min(SIZE[0] / photo.shape[1], SIZE[1] / photo.shape[0])
    small = cv2.resize(photo, None, fx=scale, fy=scale)
    frame = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    frame[: small.shape[0], : small.shape[1]] = small
    return frame


class CountingRecognizer:
    """The recognizer, noting each batch's size (the embedder keeps counts, not a list that would grow)."""

    def __init__(self, recognizer: Any) -> None:
        self._rec = recognizer
        self.sizes: list[int] = []

    def get_feat(self, faces: list[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
        self.sizes.append(len(faces))
        return self._rec.get_feat(faces)


async def camera(detector: FaceDetector, embedder: FaceEmbedder, executor: ThreadPoolExecutor,
                 frame: npt.NDArray[np.uint8], until: float, count: CameraCount) -> None:
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        t = time.perf_counter()
        faces = await loop.run_in_executor(executor, detector.detect, frame)
        count.detect_s += time.perf_counter() - t
        if len(faces):
            await embedder.embed(align_faces(frame, faces.kps))
        count.frames += 1
        count.faces += len(faces)


async def run(n: int, pack: ModelPack, seconds: float) -> tuple[list[CameraCount], list[int], float, float]:
    cfg = EmbedderConfig()
    detector = FaceDetector(pack.detector, ModelConfig())
    frame = frame_of_people()
    with ThreadPoolExecutor(1, thread_name_prefix="inference") as executor:  # one inference thread, as the App
        recognizer = CountingRecognizer(pack.recognizer)
        embedder = FaceEmbedder(recognizer, executor, cfg.batch_size, cfg.max_wait_ms)
        server = asyncio.create_task(embedder.serve())
        await asyncio.get_running_loop().run_in_executor(executor, detector.detect, frame)  # warm-up
        counts = [CameraCount() for _ in range(n)]
        start = time.perf_counter()
        until = asyncio.get_running_loop().time() + seconds
        await asyncio.gather(*(camera(detector, embedder, executor, frame, until, c) for c in counts))
        wall = time.perf_counter() - start
        server.cancel()
    return counts, recognizer.sizes, embedder.stats.seconds, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cameras", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--seconds", type=float, default=10.0, help="measured seconds per N")
    ap.add_argument("--providers", choices=["auto", "cpu", "cuda"], default="auto")
    args = ap.parse_args()
    if min(args.cameras) < 1 or args.seconds <= 0:
        sys.exit("bench_microbatch: cameras must be >= 1 and seconds > 0")
    pack = load_pack(ModelConfig(providers=args.providers))
    used = {s.get_providers()[0] for s in (pack.detector.session, pack.recognizer.session)}
    print(f"providers: {', '.join(sorted(used))}; {os.cpu_count()} CPU(s), load average "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print(f"{'cameras':>7} {'fps/camera':>10} {'fps all':>8} {'faces/s':>8} {'batches':>7} {'batch mean':>10} "
          f"{'p50':>4} {'max':>4} {'detect ms':>9} {'embed ms/batch':>14}")
    for n in args.cameras:
        counts, sizes, embed_s, wall = asyncio.run(run(n, pack, args.seconds))
        frames = sum(c.frames for c in counts)
        per_cam = [c.frames / wall for c in counts]
        print(f"{n:>7} {statistics.mean(per_cam):>10.2f} {frames / wall:>8.1f} {sum(sizes) / wall:>8.1f} "
              f"{len(sizes):>7} {statistics.mean(sizes) if sizes else 0:>10.1f} "
              f"{statistics.median(sizes) if sizes else 0:>4.0f} {max(sizes, default=0):>4} "
              f"{1000 * sum(c.detect_s for c in counts) / max(frames, 1):>9.1f} "
              f"{1000 * embed_s / max(len(sizes), 1):>14.1f}", flush=True)


if __name__ == "__main__":
    main()
