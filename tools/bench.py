"""Throughput of the streamer against a rebuild of M3-Agent's offline path, same video, same models.

    python tools/bench.py VIDEO [--model-dir DIR]

Each path runs in its own process (so peak RSS is its own) and prints one JSON line; this script
prints them side by side with the ratios. Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for m3_baseline


def _duration(path: str) -> float:
    import av

    with av.open(path) as c:
        return float(c.duration / 1e6) if c.duration else 0.0


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_streamer(video: str, model_dir: str | None) -> dict[str, float]:
    from streamer.app import App
    from streamer.config import load_config
    from streamer.faces.models import load_pack

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(
            overrides={
                "cameras": [{"name": "bench", "url": video}],
                "memory.db": f"{tmp}/memory.db",
                "mqtt.enabled": False,
                "models.model_dir": model_dir,
            }
        )
        pack = load_pack(cfg.models)
        start = time.perf_counter()
        summary = asyncio.run(App(cfg).run(pack))
        wall = time.perf_counter() - start
    s = summary.streams["bench"]
    return {
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
        "skipped_frames": s.search.skipped,
    }


def run_baseline(video: str, model_dir: str | None, spin_wait: bool = True) -> dict[str, float]:
    """spin_wait=True: onnxruntime's default threads, as M3-Agent runs them; False: the streamer's."""
    from m3_baseline import run_m3

    from streamer.config import ModelConfig
    from streamer.faces.models import load_pack

    pack = load_pack(ModelConfig(model_dir=model_dir), spin_wait=spin_wait)
    start = time.perf_counter()
    r = run_m3(video, pack)
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
    ("embed_s", "embed (s)", "{:.2f}"),
    ("match_s", "match/cluster (s)", "{:.2f}"),
    ("frames", "analysed frames", "{:.0f}"),
    ("faces", "faces detected", "{:.0f}"),
    ("embedded", "faces embedded", "{:.0f}"),
    ("faces_with_identity_pct", "faces with identity (%)", "{:.1f}"),
    ("identities", "identities", "{:.0f}"),
    ("peak_rss_mb", "peak RSS (MB)", "{:.0f}"),
]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("video")
    p.add_argument("--model-dir")
    p.add_argument("--path", choices=PATHS, help=argparse.SUPPRESS)  # child mode
    args = p.parse_args()
    if args.path:
        runs = {
            "streamer": lambda: run_streamer(args.video, args.model_dir),
            "m3": lambda: run_baseline(args.video, args.model_dir),
            "m3-same-threads": lambda: run_baseline(args.video, args.model_dir, spin_wait=False),
        }
        print(json.dumps(runs[args.path]()))
        return 0
    duration = _duration(args.video)
    results = {}
    for path in PATHS:
        cmd = [sys.executable, __file__, args.video, "--path", path] + (["--model-dir", args.model_dir] if args.model_dir else [])
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        r = json.loads(out.stdout.strip().splitlines()[-1])
        r["speed"] = duration / r["wall_s"]
        r["fps"] = r["frames"] / r["wall_s"]
        results[path] = r
    print(f"video: {args.video} ({duration:.1f} s), models: {args.model_dir or 'bundled buffalo_s'}, cpus: {os.cpu_count()}")
    print(f"{'':26}{'streamer':>12}{'M3-Agent path':>16}{'M3, same threads':>18}")
    for key, label, fmt in ROWS:
        cells = [fmt.format(v) if v is not None else "-" for v in (results[p].get(key) for p in PATHS)]
        print(f"{label:26}{cells[0]:>12}{cells[1]:>16}{cells[2]:>18}")
    ours = results["streamer"]["wall_s"]
    print(f"throughput ratio (streamer / M3-Agent path): {results['m3']['wall_s'] / ours:.2f}x")
    print(f"throughput ratio (streamer / M3-Agent path with the streamer's onnxruntime threads): {results['m3-same-threads']['wall_s'] / ours:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
