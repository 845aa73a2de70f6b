"""How soon a newcomer is found, and what detection costs per frame, with and without crops around tracks.

    python tools/bench_new_faces.py [--size 640x360] [--repeat 3]

Composes a video of real people (the photos shipped with the models) entering one after another,
at three sizes, while others stay in view; analyses it at 5 fps with the streamer's detection and
tracker; and for each arrival compares the first frame in which the streamer has the face with the
first frame in which a full-size search of every frame finds it. The delay is in stream seconds
(at 5 fps one frame is 0.2 s). Detection time per frame (CPU of this process, search + tracker) is
given for crops on and off (`models.crop_det_size` 0: the whole frame every frame), repeated
alternately in one run, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from streamer.config import ModelConfig, TrackerConfig
from streamer.demo.cast import Person, load_cast
from streamer.demo.compose import Appearance, render_video, sampled_frames
from streamer.faces.detector import FaceDetector
from streamer.faces.models import ModelPack, load_pack
from streamer.faces.search import FaceSearch, SearchStats
from streamer.faces.tracker import FaceTracker

FPS = 5.0


def script(cast: list[Person]) -> list[Appearance]:
    """A newcomer every 3 s, staying 5 s (so one or two others are tracked when they come), at three sizes."""
    places, scales = (0.2, 0.5, 0.8), (1.0, 0.7, 1.2)
    return [Appearance(k % len(cast), 1.0 + 3 * k, 6.0 + 3 * k, places[k % 3], scale=scales[k % 3]) for k in range(12)]


def analyse(pack: ModelPack, cfg: ModelConfig, frames: list[tuple[float, npt.NDArray[np.uint8]]]) -> tuple[list, SearchStats, float]:
    """Per frame the face boxes found; the search counts; CPU seconds per frame."""
    search = FaceSearch(FaceDetector(pack.detector, cfg), cfg, TrackerConfig().scene_cut_threshold)
    ids = itertools.count()
    tracker = FaceTracker(TrackerConfig(), lambda: next(ids))
    found = []
    start = time.process_time()
    for t, image in frames:
        faces, cut = search.find(image, t, tracker.visible())
        tracker.update(faces, t, cut)
        found.append(faces.xyxy)
    return found, search.stats, (time.process_time() - start) / len(frames)


def first_sightings(items: list[Appearance], frames: list, found: list, width: int) -> dict[int, float]:
    """Per appearance, the first time a face is found where it stands (its slot is a third of the width)."""
    first: dict[int, float] = {}
    for (t, _), boxes in zip(frames, found):
        for box in boxes:
            centre = (box[0] + box[2]) / 2 / width
            for k, a in enumerate(items):
                if a.start <= t < a.end and abs(centre - a.x) < 0.15:
                    first.setdefault(k, t)
    return first


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="640x360", help="WIDTHxHEIGHT of the composed video")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--every", type=float, help="models.full_detect_every_seconds with crops (default: the default)")
    args = p.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    pack = load_pack(ModelConfig())
    cast = load_cast(FaceDetector(pack.detector, ModelConfig()))
    items = script(cast)
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "arrivals.mp4"
        render_video(video, cast, items, size=(width, height))
        frames = sampled_frames(video, FPS)
    reference = FaceDetector(pack.detector, ModelConfig())
    truth = first_sightings(items, frames, [reference.detect(image).xyxy for _, image in frames], width)
    crops = ModelConfig() if args.every is None else ModelConfig(full_detect_every_seconds=args.every)
    variants = {"crops": crops, "whole frame every frame": ModelConfig(crop_det_size=0, full_detect_every_seconds=1.0)}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    print(f"full-size search every {crops.full_detect_every_seconds:g} s with crops, every 1 s without")
    print(f"{len(items)} arrivals in {frames[-1][0]:.0f} s of {width}x{height} video, {len(frames)} frames at {FPS:g} fps")
    for k in range(args.repeat):
        for name, cfg in variants.items():
            found, stats, per_frame = analyse(pack, cfg, frames)
            cpu[name].append(per_frame)
            if k:
                continue
            ours = first_sightings(items, frames, found, width)
            delays = [ours[i] - truth[i] if i in ours else float("inf") for i in sorted(truth)]
            print(f"{name}: delay after a full search first finds a newcomer, s: " + " ".join(f"{d:.1f}" for d in delays))
            print(f"  max {max(delays):.1f} s, mean {statistics.mean(delays):.2f} s; frames: {stats}")
    for name, values in cpu.items():
        print(f"{name}: detection CPU per frame, ms: " + " ".join(f"{1000 * v:.1f}" for v in values))
    ratios = [b / a for a, b in zip(*cpu.values())]
    print("whole frame / crops, per repetition: " + " ".join(f"{r:.2f}x" for r in ratios))
    return 0


if __name__ == "__main__":
    sys.exit(main())
