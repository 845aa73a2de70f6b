"""Live latency: from the first frame in which a new person is visible to `node.created` and to
`person.appeared` arriving at an MQTT subscriber.

    python tools/bench_latency.py [--rounds 3] [--size 1280x720]

Renders a clip in which the people of the shipped photos arrive one at a time (each stays 4 s, 2 s
apart), finds offline the first frame in which each newcomer's face is detectable (the detector at
full size on every frame around the arrival: that is "visible"), serves the clip from a local RTSP
server and runs the App on it with a real mosquitto; a subscriber notes when each event arrives.
Each round starts a fresh memory, so every arrival is a person never seen before.

Time zero for an arrival is when the streamer decoded that frame: the source's decoded-frame count
and wall time are sampled on the loop, and the stream's frame k is decoded at best at
wall0 + k / fps (wall0: the smallest wall - k / fps seen). The camera-to-decoder hop (local TCP,
a few ms) is not in it. Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import av
import numpy as np

from streamer.app import App
from streamer.config import ModelConfig, load_config
from streamer.demo.cast import Person, load_cast
from streamer.demo.compose import Appearance, render_video
from streamer.faces.detector import FaceDetector
from streamer.faces.models import load_pack

# The tests' servers; added after the imports above, so tests/memory cannot stand in for memory.
sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))
from support.mosquitto import Mosquitto  # noqa: E402
from support.rtsp import RtspServer  # noqa: E402

FPS = 25
STAY, GAP = 4.0, 2.0  # seconds each person stays; seconds between one leaving and the next arriving


@dataclass
class Arrival:
    person: int
    frame: int  # first frame in which the face is detectable


def render(path: Path, cast: list[Person], size: tuple[int, int]) -> list[Appearance]:
    script = [Appearance(i, 1.0 + i * (STAY + GAP), 1.0 + i * (STAY + GAP) + STAY, 0.5) for i in range(len(cast))]
    render_video(path, cast, script, size=size, fps=FPS)
    return script


def visible_frames(path: Path, script: list[Appearance], detector: FaceDetector) -> list[Arrival]:
    """Per arrival, the first frame (from its start, within 1.5 s) where the full-size detector finds a face."""
    starts = {int(round(a.start * FPS)): a for a in script}
    out, pending = [], None
    with av.open(str(path)) as c:
        for k, frame in enumerate(c.decode(video=0)):
            if k in starts:
                pending = (starts[k], k)
            if pending is None:
                continue
            if k - pending[1] > 1.5 * FPS:
                pending = None  # never found: the arrival is left out
                continue
            if len(detector.detect(frame.to_ndarray(format="bgr24"))):
                out.append(Arrival(pending[0].person, k))
                pending = None
    return out


async def subscribe(url: str, prefix: str, log: list[tuple[float, dict]], ready: asyncio.Event) -> None:
    host, port = url.removeprefix("mqtt://").split(":")
    async with aiomqtt.Client(host, int(port)) as client:
        await client.subscribe(f"{prefix}/memory/events", qos=1)
        ready.set()
        async for msg in client.messages:
            log.append((time.time(), json.loads(bytes(msg.payload))))  # type: ignore[arg-type]


async def one_round(clip: Path, broker: Mosquitto, tmp: Path, n: int, duration: float) -> tuple[float, list[tuple[float, dict]]]:
    """Runs the App on the served clip; returns wall0 (when frame 0 was decoded, at best) and the events received."""
    server = RtspServer(file=clip).start()
    events: list[tuple[float, dict]] = []
    ready = asyncio.Event()
    sub = asyncio.create_task(subscribe(broker.url, "streamer", events, ready))
    await ready.wait()
    try:
        cfg = load_config(overrides={
            "cameras": [{"name": "cam", "url": server.url}], "memory.db": str(tmp / f"memory-{n}.db"),
            "mqtt.url": broker.url, "voices.enabled": False,
        }, environ={})
        app = App(cfg)
        run = asyncio.create_task(app.run(load_pack(cfg.models)))
        await app.wait_ready()
        wall0, seen, end = float("inf"), 0, time.monotonic() + duration + 15
        while time.monotonic() < end:
            await asyncio.sleep(0.005)
            src = app.sources.get("cam")
            if src is None:
                continue
            w1, count, w2 = src.stats.last_frame_wall, src.stats.frames_decoded, src.stats.last_frame_wall
            if count and count != seen and w1 == w2 and w1 is not None:
                seen = count
                wall0 = min(wall0, w1 - (count - 1) / FPS)
            if count >= duration * FPS - 1:
                break
        await asyncio.sleep(2)  # the last events
        app.stop()
        await run
    finally:
        sub.cancel()
        server.stop()
    return wall0, events


def match(arrivals: list[Arrival], wall0: float, events: list[tuple[float, dict]], kind: str) -> list[float]:
    """Per arrival, ms from its visible frame to the first `kind` event (a face) received before the next arrival."""
    out = []
    for i, a in enumerate(arrivals):
        t0 = wall0 + a.frame / FPS
        t1 = wall0 + arrivals[i + 1].frame / FPS if i + 1 < len(arrivals) else float("inf")
        got = [r for r, e in events if e["type"] == kind and e.get("kind", "face") == "face" and t0 <= r < t1]
        if got:
            out.append(1000 * (got[0] - t0))
    return out


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="runs, each with a fresh memory")
    ap.add_argument("--size", default="1280x720")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    try:
        size = tuple(int(v) for v in args.size.lower().split("x"))
        assert len(size) == 2 and min(size) > 0 and args.rounds > 0
    except (ValueError, AssertionError):
        sys.exit("bench_latency: --size must be WxH and --rounds > 0")
    pack = load_pack(ModelConfig())
    detector = FaceDetector(pack.detector, ModelConfig())
    cast = load_cast(detector)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        clip = tmp / "arrivals.mp4"
        script = render(clip, cast, size)  # type: ignore[arg-type]
        arrivals = visible_frames(clip, script, detector)
        duration = max(a.end for a in script)
        print(f"clip: {duration:.0f} s at {args.size}, {len(arrivals)} of {len(script)} arrivals visible "
              f"(first detectable {statistics.mean(a.frame / FPS - s.start for a, s in zip(arrivals, script)):.2f} s "
              "after entering, on average)", flush=True)
        broker = Mosquitto(tmp / "mqtt")
        broker.start()
        created: list[float] = []
        appeared: list[float] = []
        try:
            for r in range(args.rounds):
                wall0, events = asyncio.run(one_round(clip, broker, tmp, r, duration))
                c, p = match(arrivals, wall0, events, "node.created"), match(arrivals, wall0, events, "person.appeared")
                print(f"round {r + 1}: node.created for {len(c)}/{len(arrivals)} arrivals, person.appeared for "
                      f"{len(p)}; median {statistics.median(c) if c else float('nan'):.0f} / "
                      f"{statistics.median(p) if p else float('nan'):.0f} ms", flush=True)
                created += c
                appeared += p
        finally:
            broker.stop()
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    for name, values in (("node.created", created), ("person.appeared", appeared)):
        print(f"{name:16s} n={len(values):3d}  p50 {pct(values, 50):6.0f} ms  p95 {pct(values, 95):6.0f} ms  "
              f"max {max(values, default=float('nan')):6.0f} ms")
    print(f"load average {load}")


if __name__ == "__main__":
    main()
