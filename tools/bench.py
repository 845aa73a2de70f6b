"""Throughput of the streamer against a rebuild of M3-Agent's offline path, same video, same models.

    python tools/bench.py VIDEO [--repeat N] [--model-dir DIR]
    python tools/bench.py --compose people|slideshow [--repeat N]

In process: each path runs in its own process (so peak RSS is its own), start-up excluded, and prints
one JSON line; this script prints them side by side with the ratios. Whole process: `streamer run
--no-voices VIDEO` with default flags in an empty folder against `python tools/m3_baseline.py VIDEO`,
imports and model loading included, as a user runs them; `--repeat` alternates them N times and
prints each run's ratio. `--compose` benchmarks a video of real people composed from the photos
shipped with the models, 640x360 at 25 fps: `people` (44 s, 6+ people entering, staying, leaving,
two at a time) or `slideshow` (99 s, a new full-frame photo every 3 s). Whole-process runs also give
their CPU seconds (user + system), which other work on the machine disturbs less than wall time,
and the load average. Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streamer.demo.cast import Person
    from streamer.demo.compose import Appearance, Cut

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for m3_baseline and bcubed


def _duration_and_size(path: str) -> tuple[float, str]:
    import av

    with av.open(path) as c:
        v = c.streams.video[0]
        return (float(c.duration / 1e6) if c.duration else 0.0), f"{v.width}x{v.height}"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bcubed_f(db: str, script: Sequence[Appearance | Cut]) -> float:
    """BCubed F of the stored faces' identities against who the script put there (faces while it is
    unclear, people sliding in or out, left out; a face without identity counts as one of its own)."""
    import numpy as np
    from bcubed import bcubed
    from memory import Memory
    from memory.config import MemoryConfig
    from streamer.demo.compose import person_at

    with Memory(MemoryConfig(db=db)) as memory:
        pairs = []
        for k, face in enumerate(memory.export_faces()):
            person = person_at(script, face["t"], (face["bbox"][0] + face["bbox"][2]) / 2)
            if person is not None:
                pairs.append((person, face["node"] if face["node"] is not None else -1 - k))
    people, nodes = sorted({p for p, _ in pairs}), sorted({n for _, n in pairs})
    joint = np.zeros((len(people), len(nodes)))
    for p, n in pairs:
        joint[people.index(p), nodes.index(n)] += 1
    precision, recall = bcubed(joint)
    return 2 * precision * recall / (precision + recall)


def run_streamer(video: str, model_dir: str | None, kind: str | None = None) -> dict[str, float]:
    from streamer.app import App
    from streamer.config import load_config
    from streamer.faces.models import load_pack

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(
            overrides={
                "cameras": [{"name": "bench", "url": video}],
                "memory.db": f"{tmp}/memory.db",
                "mqtt.enabled": False,
                "voices.enabled": False,  # the M3 path analyses faces only
                "models.model_dir": model_dir,
            }
        )
        pack = load_pack(cfg.models)
        start = time.perf_counter()
        summary = asyncio.run(App(cfg).run(pack))
        wall = time.perf_counter() - start
        bcubed = None if kind is None else bcubed_f(cfg.memory.db, script(kind, load_cast_size()))
    s = summary.streams["bench"]
    return {
        "bcubed_f": bcubed,
        "wall_s": wall,
        "detect_s": s.times.detect,
        "embed_s": s.times.embed,
        "match_s": s.times.match,
        "frames": s.frames,
        "faces": s.faces,
        "embedded": s.embedded,
        "faces_with_identity_pct": 100.0 * s.faces_with_node / max(1, s.faces),
        "identities": summary.identities,
        "peak_rss_mb": _peak_rss_mb(),
        "searched_full": s.search.full,
        "searched_coarse": s.search.coarse,
        "crop_frames": s.search.crops,
        "still_frames": s.search.still,
        "skipped_frames": s.search.skipped,
    }


def run_baseline(video: str, model_dir: str | None, spin_wait: bool = True) -> dict[str, float]:
    """spin_wait=True: onnxruntime's default threads, as M3-Agent runs them; False: the streamer's."""
    from m3_baseline import run_m3

    from streamer.config import ModelConfig
    from streamer.faces.models import load_pack

    pack = load_pack(ModelConfig(model_dir=model_dir), spin_wait=spin_wait)
    start = time.perf_counter()
    r = run_m3(video, pack.detector, pack.recognizer)
    wall = time.perf_counter() - start
    return {
        "wall_s": wall,
        "decode_s": r.decode,
        "detect_s": r.detect,
        "embed_s": r.embed,
        "match_s": r.match,
        "frames": r.frames,
        "faces": r.faces,
        "embedded": r.faces,
        "faces_with_identity_pct": 100.0 * r.faces_with_node / max(1, r.faces),
        "identities": len(r.nodes),
        "peak_rss_mb": _peak_rss_mb(),
    }


# "M3, same threads" gives the baseline the streamer's onnxruntime setting (no busy-waiting threads),
# so the ratio against it shows what the pipeline design alone buys.
PATHS = ("streamer", "m3", "m3-same-threads")

ROWS = [
    ("wall_s", "wall time (s)", "{:.2f}"),
    ("speed", "video s per wall s", "{:.2f}"),
    ("fps", "analysed fps", "{:.1f}"),
    ("decode_s", "decode (s)", "{:.2f}"),
    ("detect_s", "detect (s)", "{:.2f}"),
    ("detect_ms", "detect per frame (ms)", "{:.1f}"),
    ("embed_s", "embed (s)", "{:.2f}"),
    ("match_s", "match/cluster (s)", "{:.2f}"),
    ("frames", "analysed frames", "{:.0f}"),
    ("faces", "faces detected", "{:.0f}"),
    ("embedded", "faces embedded", "{:.0f}"),
    ("faces_with_identity_pct", "faces with identity (%)", "{:.1f}"),
    ("identities", "identities", "{:.0f}"),
    ("bcubed_f", "BCubed F of identities", "{:.3f}"),
    ("peak_rss_mb", "peak RSS (MB)", "{:.0f}"),
    ("searched_full", "frames searched, full size", "{:.0f}"),
    ("searched_coarse", "frames searched, coarse", "{:.0f}"),
    ("crop_frames", "frames done on crops", "{:.0f}"),
    ("still_frames", "frames unchanged, faces kept", "{:.0f}"),
    ("skipped_frames", "frames empty, little changed", "{:.0f}"),
]


def _cast() -> list[Person]:
    from streamer.config import ModelConfig
    from streamer.demo.cast import load_cast
    from streamer.faces.detector import FaceDetector
    from streamer.faces.models import load_pack

    return load_cast(FaceDetector(load_pack(ModelConfig()).detector, ModelConfig()))


def load_cast_size() -> int:
    return len(_cast())


def script(kind: str, cast_size: int) -> list[Appearance | Cut]:
    from streamer.demo.compose import Appearance, Cut

    if kind == "slideshow":
        return [Cut(k % cast_size, 3.0 * k, 3.0 * (k + 1)) for k in range(33)]
    # a new person every 4 s, each stays 6 s: one or two in view, people come back
    items: list[Appearance | Cut] = [Appearance(k % cast_size, 4.0 * k, 4.0 * k + 6, (0.25, 0.75)[k % 2]) for k in range(10)]
    return [*items, Appearance(0, 40.0, 44.0, 0.5)]


def compose(kind: str, folder: str) -> str:
    """A video of real people (the photos shipped with the models), like the tests' and the demo's."""
    from streamer.demo.compose import render_video

    cast = _cast()
    path = str(Path(folder) / f"{kind}.mp4")
    render_video(path, cast, script(kind, len(cast)))
    return path


def whole_process(path: str, video: str, model_dir: str | None) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, all threads) of one path run as a user runs it,
    in an empty folder (a fresh memory). The CPU time is disturbed less by other work on the machine."""
    if path == "streamer":
        cmd = [sys.executable, "-m", "streamer", "run", video, "-q", "--no-voices"]
    else:
        cmd = [sys.executable, str(Path(__file__).resolve().parent / "m3_baseline.py"), video]
    cmd += ["--model-dir", model_dir] if model_dir else []
    with tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=tmp, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _load_average() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("video", nargs="?")
    p.add_argument("--compose", choices=["people", "slideshow"], help="benchmark a composed video of real people")
    p.add_argument("--repeat", type=int, default=1, help="whole-process runs of each path (alternating)")
    p.add_argument("--model-dir")
    p.add_argument("--path", choices=PATHS, help=argparse.SUPPRESS)  # child mode
    args = p.parse_args()
    if args.path:
        runs = {
            "streamer": lambda: run_streamer(args.video, args.model_dir, args.compose),
            "m3": lambda: run_baseline(args.video, args.model_dir),
            "m3-same-threads": lambda: run_baseline(args.video, args.model_dir, spin_wait=False),
        }
        print(json.dumps(runs[args.path]()))
        return 0
    if (args.video is None) == (args.compose is None):
        p.error("give a VIDEO or --compose")
    with tempfile.TemporaryDirectory() as tmp:
        video = args.video or compose(args.compose, tmp)
        report(video, args.compose, args.model_dir, args.repeat)
    return 0


def report(video: str, kind: str | None, model_dir: str | None, repeat: int) -> None:
    duration, size = _duration_and_size(video)
    label = kind or video
    results = {}
    for path in PATHS:
        cmd = [sys.executable, __file__, video, "--path", path] + (["--model-dir", model_dir] if model_dir else [])
        cmd += ["--compose", kind] if kind and path == "streamer" else []
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        r = json.loads(out.stdout.strip().splitlines()[-1])
        r["speed"] = duration / r["wall_s"]
        r["fps"] = r["frames"] / r["wall_s"]
        r["detect_ms"] = 1000 * r["detect_s"] / max(1, r["frames"])
        results[path] = r
    print(f"video: {label} ({size}, {duration:.1f} s), models: {model_dir or 'bundled buffalo_s'}, cpus: {os.cpu_count()}, load average: {_load_average()}")
    print(f"{'':30}{'streamer':>12}{'M3-Agent path':>16}{'M3, same threads':>18}")
    for key, name, fmt in ROWS:
        cells = [fmt.format(v) if v is not None else "-" for v in (results[p].get(key) for p in PATHS)]
        print(f"{name:30}{cells[0]:>12}{cells[1]:>16}{cells[2]:>18}")
    ours = results["streamer"]["wall_s"]
    print(f"in process, throughput ratio (streamer / M3-Agent path): {results['m3']['wall_s'] / ours:.2f}x")
    print(f"in process, throughput ratio (streamer / M3-Agent path with the streamer's onnxruntime threads): {results['m3-same-threads']['wall_s'] / ours:.2f}x")
    ratios = []
    for k in range(repeat):
        load = _load_average()
        (streamer, streamer_cpu), (m3, m3_cpu) = whole_process("streamer", video, model_dir), whole_process("m3", video, model_dir)
        ratios.append(m3 / streamer)
        print(
            f"whole process, run {k + 1}: streamer run {streamer:.2f} s ({streamer_cpu:.2f} s CPU), "
            f"M3-Agent path {m3:.2f} s ({m3_cpu:.2f} s CPU), ratio {m3 / streamer:.2f}x "
            f"(CPU {m3_cpu / streamer_cpu:.2f}x); load average before: {load}"
        )
    print(f"whole process, throughput ratio (median of {repeat}): {statistics.median(ratios):.2f}x; load average now: {_load_average()}")


if __name__ == "__main__":
    sys.exit(main())
