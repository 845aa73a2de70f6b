"""Many workers, one memory: `--workers` `streamer worker` processes, one camera each, feeding one
`streamer memory-service` over a real nats-server, its events on a real mosquitto.

    python tools/bench_workers.py [--workers 8] [--seconds 20] [--size 320x240]

Each camera is a rendered clip of the people of the shipped photos, played at its real rate
(`--realtime`): camera 0 shows person A for the first half, camera 1 shows the same person A for
the second half (on another worker), every other camera one other person throughout. Reports:
whether A got one identity on both workers' cameras; per camera, frames analysed per second while
a face was in view (the goal is the analysis rate, `sources.fps`, 5 by default); and end to end, from the
frame in which a person was first seen (its wall time, stamped by the worker at decoding) to the
memory's `node.created` and `person.appeared` arriving at an MQTT subscriber (p50 and p95 over the
cameras). `person.appeared` waits for the node to be confirmed (seen enough), so it includes that
rule's wait as well as the pipeline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiomqtt
import numpy as np

from streamer.config import ModelConfig
from streamer.demo.cast import load_cast
from streamer.demo.compose import Appearance, render_video
from streamer.faces.detector import FaceDetector
from streamer.faces.models import load_pack

# The tests' servers; added after the imports above, so tests/memory cannot stand in for memory.
sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))
from support.mosquitto import Mosquitto, free_port  # noqa: E402

A = 0  # the person who crosses from camera 0 (worker 0) to camera 1 (worker 1)


def scripts(workers: int, people: int, seconds: float) -> list[list[Appearance]]:
    half = seconds / 2
    out = [[Appearance(A, 0.5, half - 0.5, 0.5)], [Appearance(A, half + 0.5, seconds - 0.5, 0.5)]]
    out += [[Appearance(1 + (k - 2) % (people - 1), 0.5, seconds - 0.5, 0.5)] for k in range(2, workers)]
    return out[:workers]


async def subscribe(url: str, log: list[tuple[float, dict]], ready: asyncio.Event, done: asyncio.Event) -> None:
    host, port = url.removeprefix("mqtt://").split(":")
    async with aiomqtt.Client(host, int(port)) as client:
        await client.subscribe("streamer/memory/events", qos=1)
        ready.set()
        async for msg in client.messages:
            log.append((time.time(), json.loads(bytes(msg.payload))))  # type: ignore[arg-type]
            if done.is_set():
                break


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def first_seen(db: Path) -> tuple[dict[tuple[str, int], float], dict[tuple[str, float], float]]:
    """(stream, node) -> wall time of its first face; (stream, t) -> wall time of that frame."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        rows = c.execute(
            "SELECT o.stream, t.node_id, o.t, o.wall_time FROM observations o JOIN tracks t ON t.id = o.track_id"
        ).fetchall()
        merged = dict(c.execute("SELECT id, merged_into FROM nodes WHERE merged_into IS NOT NULL").fetchall())
    first: dict[tuple[str, int], float] = {}
    frames: dict[tuple[str, float], float] = {}
    for stream, node, t, wall in rows:
        frames[(stream, round(t, 3))] = wall
        if node is None:
            continue
        while node in merged:
            node = merged[node]
        first[(stream, node)] = min(first.get((stream, node), wall), wall)
    return first, frames


def analysed(db: Path, scripts_: list[list[Appearance]]) -> list[tuple[str, float]]:
    """Per camera: frames with a face analysed per second of a face in view."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        counts = dict(c.execute("SELECT stream, COUNT(DISTINCT t) FROM observations GROUP BY stream").fetchall())
    return [(f"cam{k}", counts.get(f"cam{k}", 0) / sum(a.end - a.start for a in s)) for k, s in enumerate(scripts_)]


def identities(db: Path) -> dict[str, set[int]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        rows = c.execute("SELECT DISTINCT stream, node_id FROM tracks WHERE node_id IS NOT NULL").fetchall()
        merged = dict(c.execute("SELECT id, merged_into FROM nodes WHERE merged_into IS NOT NULL").fetchall())
        expired = {r[0] for r in c.execute("SELECT id FROM nodes WHERE status = 'expired'")}
    out: dict[str, set[int]] = {}
    for stream, node in rows:
        while node in merged:
            node = merged[node]
        if node not in expired:
            out.setdefault(stream, set()).add(node)
    return out


async def run(args: argparse.Namespace, tmp: Path) -> None:
    pack = load_pack(ModelConfig())
    cast = load_cast(FaceDetector(pack.detector, ModelConfig()))
    size = tuple(int(v) for v in args.size.lower().split("x"))
    plan = scripts(args.workers, len(cast), args.seconds)
    clips = []
    for k, script in enumerate(plan):
        clips.append(tmp / f"cam{k}.mp4")
        render_video(clips[-1], cast, script, size=size, seed=k)  # type: ignore[arg-type]
    port = free_port()
    nats_server = subprocess.Popen([shutil.which("nats-server") or "nats-server", "-js", "-a", "127.0.0.1", "-p", str(port),
                                    "-sd", str(tmp / "js")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    broker = Mosquitto(tmp / "mqtt")
    broker.start()
    url, db = f"nats://127.0.0.1:{port}", tmp / "memory.db"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    logs = tmp / "logs"
    logs.mkdir()
    service = subprocess.Popen([sys.executable, "-m", "streamer", "memory-service", "--bus", url, "--db", str(db), "--mqtt", broker.url, "-q"],
                               env=env, stdout=(logs / "service.log").open("wb"), stderr=subprocess.STDOUT)  # fmt: skip
    events: list[tuple[float, dict]] = []
    ready, done = asyncio.Event(), asyncio.Event()
    sub = asyncio.create_task(subscribe(broker.url, events, ready, done))
    await ready.wait()
    workers = []
    try:
        for k, clip in enumerate(clips):
            cmd = [sys.executable, "-m", "streamer", "worker", "--bus", url, f"cam{k}={clip}", "--realtime", "--no-mqtt", "--no-voices", "-q"]
            workers.append(subprocess.Popen(cmd, env=env, stdout=(logs / f"worker{k}.log").open("wb"), stderr=subprocess.STDOUT))
        for k, w in enumerate(workers):
            if await asyncio.to_thread(w.wait, 600) != 0:
                sys.exit(f"bench_workers: worker {k} failed:\n{(logs / f'worker{k}.log').read_text()[-2000:]}")
        await asyncio.sleep(5.0)  # the service's last batches and their events
    finally:
        done.set()
        sub.cancel()
        await asyncio.gather(sub, return_exceptions=True)  # its connection closes before the broker does
        for w in workers:
            if w.poll() is None:
                w.kill()
        service.send_signal(signal.SIGTERM)
        service.wait(60)
        broker.stop()
        nats_server.terminate()
        nats_server.wait(10)
    report(args, db, plan, events)


def report(args: argparse.Namespace, db: Path, plan: list[list[Appearance]], events: list[tuple[float, dict]]) -> None:
    seen = identities(db)
    a0, a1 = seen.get("cam0", set()), seen.get("cam1", set())
    one = len(a0) == 1 and a0 == a1
    print(f"{args.workers} workers x 1 camera, {args.size}, {args.seconds:g} s clips at real rate; load average {os.getloadavg()[0]:.1f}")
    print(f"person A on cam0 (worker 0) and cam1 (worker 1): {'one identity' if one else 'NOT one identity'} ({sorted(a0)} / {sorted(a1)})")
    rates = analysed(db, plan)
    print("analysed frames/s per camera while a face was in view: " + ", ".join(f"{name} {r:.1f}" for name, r in rates))
    first, frames = first_seen(db)
    created, appeared = [], []
    for arrived, e in events:
        node, stream = e.get("node"), e.get("stream")
        if e.get("type") == "node.created" and (stream, node) in first:
            created.append(1000 * (arrived - first[(stream, node)]))
        elif e.get("type") == "person.appeared" and (stream, round(e["t"], 3)) in frames:
            appeared.append(1000 * (arrived - frames[(stream, round(e["t"], 3))]))
    print(f"frame -> node.created at the MQTT subscriber: p50 {pct(created, 50):.0f} ms, p95 {pct(created, 95):.0f} ms ({len(created)} nodes)")
    print(f"frame -> person.appeared at the MQTT subscriber: p50 {pct(appeared, 50):.0f} ms, p95 {pct(appeared, 95):.0f} ms ({len(appeared)} presences)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each camera's clip")
    ap.add_argument("--size", default="320x240")
    args = ap.parse_args()
    if args.workers < 2 or args.seconds < 4:
        sys.exit("bench_workers: --workers must be >= 2 and --seconds >= 4")
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
