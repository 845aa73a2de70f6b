"""How many 720p cameras one process keeps up with at 5 fps analysis.

    python tools/bench_cameras.py [--min 1] [--max 8] [--seconds 20] [--clip CLIP.mp4] [--audio | --no-voices]

Renders a 720p, 25 fps clip of real people walking in and out (or takes --clip), serves it to every
camera from its own local RTSP server (the tests' gst-rtsp-server), and runs the App with N cameras,
N = --min, --min + 1, ... until a camera's analysed rate falls under --min-fps or frames start being dropped.
Per camera: analysed fps, drops, mean latency (frame decoded -> analysis done), detection and
embedding time per frame; per run: CPU of the streamer process and of the RTSP servers (100% = one
core). With --audio the clip carries real recorded speech (the bundled conversation, looped) and the
voice path (VAD, turns, speaker embedding, ASR) runs too; its health is printed per camera. With
--no-voices the App runs with voices off (`streamer run --no-voices`): faces only.
Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil

from streamer.analyzer import AnalyzerStats
from streamer.app import App
from streamer.config import ModelConfig, load_config
from streamer.demo.cast import load_cast
from streamer.demo.compose import Appearance, render_video
from streamer.demo.speech import load_conversation
from streamer.faces.detector import FaceDetector
from streamer.faces.models import ModelPack, load_pack

# The tests' RTSP server runner; added after the imports above, so tests/memory cannot stand in for memory.
sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))
from support.rtsp import RtspServer, serve_with_audio  # noqa: E402

SIZE = (1280, 720)
CLIP_FPS = 25


@dataclass
class Snapshot:
    wall: float
    cpu: float  # CPU seconds of this process
    servers_cpu: float
    streams: dict[str, tuple[int, int, float, float, float]]  # frames, dropped, latency, detect, embed (sums)


@dataclass
class CameraResult:
    fps: float
    drops_per_s: float
    latency_ms: float
    detect_ms: float
    embed_ms: float


def render_clip(path: Path, pack: ModelPack, seconds: float, audio: bool) -> None:
    """Three people in view at a time, replaced by the next three every 6 s, so tracks start, end and get embedded."""
    cast = load_cast(FaceDetector(pack.detector, ModelConfig()))
    starts = range(0, int(seconds), 6)
    script = [
        Appearance((3 * k + j) % len(cast), start, start + 5.5, x)
        for k, start in enumerate(starts)
        for j, x in enumerate((0.2, 0.5, 0.8))
    ]
    if not audio:
        render_video(path, cast, script, size=SIZE, fps=CLIP_FPS)
        return
    talk = load_conversation()
    sound = np.tile(talk.samples, int(seconds // talk.duration) + 1)[: int(seconds * talk.rate)]
    render_video(path, cast, script, size=SIZE, fps=CLIP_FPS, audio=sound, audio_rate=talk.rate)


def snapshot(app: App, servers: list[psutil.Process]) -> Snapshot:
    def sums(s: AnalyzerStats) -> tuple[float, float, float]:
        return s.latency, s.times.detect, s.times.embed

    streams = {
        name: (app.analyzers[name].stats.frames, src.stats.dropped, *sums(app.analyzers[name].stats))
        for name, src in app.sources.items()
    }
    own = psutil.Process().cpu_times()
    others = sum(p.cpu_times().user + p.cpu_times().system for p in servers)
    return Snapshot(time.monotonic(), own.user + own.system, others, streams)


def compare(a: Snapshot, b: Snapshot) -> dict[str, CameraResult]:
    span = b.wall - a.wall
    out = {}
    for name, (frames1, drops1, lat1, det1, emb1) in b.streams.items():
        frames0, drops0, lat0, det0, emb0 = a.streams[name]
        n = max(frames1 - frames0, 1)
        out[name] = CameraResult(
            (frames1 - frames0) / span,
            (drops1 - drops0) / span,
            1000 * (lat1 - lat0) / n,
            1000 * (det1 - det0) / n,
            1000 * (emb1 - emb0) / n,
        )
    return out


async def run_cameras(n: int, clip: Path, pack: ModelPack, args: argparse.Namespace, tmp: Path) -> tuple[dict[str, CameraResult], float, float]:
    servers = [(RtspServer(launch=serve_with_audio(clip)) if args.audio else RtspServer(file=clip)).start() for _ in range(n)]
    try:
        cfg = load_config(
            overrides={
                "cameras": [{"name": f"cam{i + 1}", "url": s.url} for i, s in enumerate(servers)],
                "memory.db": str(tmp / f"memory-{n}.db"),
                "mqtt.enabled": False,
                "models.model_dir": args.model_dir,
                "voices.enabled": not args.no_voices,
            },
            environ={},
        )
        app = App(cfg)
        run = asyncio.create_task(app.run(pack))
        procs = [psutil.Process(s.pid) for s in servers if s.pid is not None]
        try:
            await app.wait_ready()
            await asyncio.sleep(args.warmup)  # connect, first keyframe, first identities
            start = snapshot(app, procs)
            await asyncio.sleep(args.seconds)
            end = snapshot(app, procs)
            for name, voice in app.voices.items():
                v, asr = voice.stats, app.transcripts
                print(f"   {name}: speech {v.speech_seconds:.0f} s in {v.turns} turns, {len(v.nodes)} voices, "
                      f"VAD {1000 * v.vad_seconds / max(v.audio_seconds, 1e-9):.1f} ms/s, "
                      f"turns+embedding {1000 * v.embed_seconds / max(v.audio_seconds, 1e-9):.1f} ms/s, "
                      f"audio dropped {app.sources[name].stats.audio_dropped_seconds:.1f} s"
                      + ("" if asr is None else f", ASR {asr.seconds:.1f} s for {asr.audio_seconds:.0f} s, "
                         f"backlog {asr.pending()}, dropped {asr.dropped}"))
        finally:
            app.stop()
            await run
        span = end.wall - start.wall
        return compare(start, end), 100 * (end.cpu - start.cpu) / span, 100 * (end.servers_cpu - start.servers_cpu) / span
    finally:
        for s in servers:
            s.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--min", type=int, default=1, help="fewest cameras to try")
    ap.add_argument("--max", type=int, default=8, help="most cameras to try")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds per N")
    ap.add_argument("--warmup", type=float, default=6.0, help="seconds before measuring")
    ap.add_argument("--min-fps", type=float, default=4.5, help="a camera under this analysed rate is falling behind")
    ap.add_argument("--clip", type=Path, help="H.264 MP4 to serve (default: render a 720p clip of real people)")
    ap.add_argument("--model-dir")
    sound = ap.add_mutually_exclusive_group()
    sound.add_argument("--audio", action="store_true", help="serve real speech with the video; voices and ASR run too")
    sound.add_argument("--no-voices", action="store_true", help="voices off in the App, as `streamer run --no-voices`")
    args = ap.parse_args()
    if not 1 <= args.min <= args.max:
        sys.exit("bench_cameras: need 1 <= --min <= --max")
    logging.basicConfig(level=logging.WARNING)

    pack = load_pack(ModelConfig(model_dir=args.model_dir))
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        clip = args.clip
        if clip is None:
            clip = tmp / "clip720p.mp4"
            render_clip(clip, pack, args.warmup + args.seconds + 15, args.audio)  # outlasts a run: no end-of-file reconnect
        print(f"{'N':>2} {'camera':>6} {'fps':>5} {'drops/s':>7} {'latency ms':>10} {'detect ms':>9} {'embed ms':>8} "
              f"{'CPU %/cam':>9} {'CPU % all':>9} {'servers %':>9}")
        sustained = 0
        for n in range(args.min, args.max + 1):
            cams, cpu, servers_cpu = asyncio.run(run_cameras(n, clip, pack, args, tmp))
            for name, c in cams.items():
                print(f"{n:>2} {name:>6} {c.fps:>5.2f} {c.drops_per_s:>7.2f} {c.latency_ms:>10.0f} {c.detect_ms:>9.1f} "
                      f"{c.embed_ms:>8.1f} {cpu / n:>9.0f} {cpu:>9.0f} {servers_cpu:>9.0f}")
            fps = [c.fps for c in cams.values()]
            keeps_up = min(fps) >= args.min_fps and all(c.drops_per_s < 0.1 for c in cams.values())
            print(f"   N={n}: analysed fps min {min(fps):.2f} max {max(fps):.2f} -> {'keeps up' if keeps_up else 'falls behind'}"
                  f" (load average {' '.join(f'{v:.1f}' for v in os.getloadavg())})", flush=True)
            if not keeps_up:
                break
            sustained = n
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"sustained: {sustained} camera(s) of 720p at 5 fps analysis on {psutil.cpu_count()} CPU(s), load average {load}")


if __name__ == "__main__":
    main()
