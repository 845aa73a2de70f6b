"""Load on the memory service: virtual cameras publishing observations to NATS JetStream at real rates.

    python tools/bench_bus.py --cameras 1000 --seconds 60
    python tools/bench_bus.py --cameras 1000 --seconds 10 --step   # the service's batch step alone
    python tools/bench_bus.py --cameras 1000 --seconds 20 --drain  # the service alone on a backlog

Starts a nats-server (JetStream, temporary store) and `streamer memory-service` (no MQTT) on a
temporary SQLite file (or on the empty PostgreSQL database `--db` names), then publishes for each
virtual camera `--fps` frames per second with `--faces` faces each; every face is a track of one
of `--people` identities that lasts `--track-seconds`, embedded when it starts and again every 2 s
(the tracker's re-embed interval), as a worker sends them. Reports, every 5 s and at the end: observations/s published and applied,
consumer lag (messages stored but not yet applied), and publish -> committed latency (until the
memory service's node answer for the track arrives; p50/p95), and the CPU the generator (this
process), nats-server and the service each took (the service's memory process and its intake, the
child process that reads the bus for it, apart): all share the machine's cores. The load starts
once the service reads the bus; the load average is printed at the start and the end.

`--drain` publishes the same frames into the stream first and only then starts the service, which
has the machine to itself while it works through them: its rate and CPU per observation, with the
bus client and decoding, and without the generator beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats
import numpy as np
import psutil
from nats.js.errors import NotFoundError

from memory.database import exists, open_database
from memory.records import FaceObservation, TrackEvidence
from streamer.bus.connection import BusConfig, connect, ensure_stream
from streamer.bus.intake import CONSUMER
from streamer.bus.messages import FacesMsg, encode

DIM = 512
REEMBED_SECONDS = 2.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


class Camera:
    def __init__(self, name: str, faces: int, rng: np.random.Generator, people: np.ndarray, track_seconds: float) -> None:
        self.name, self.faces, self.rng, self.people, self.track_seconds = name, faces, rng, people, track_seconds
        self.tracks: list[tuple[int, int, float, float]] = []  # (track id, person, started, last embedded)
        self.n = 0

    def frame(self, t: float, wall: float, next_id: list[int]) -> tuple[bytes, list[int]]:
        self.tracks = [tr for tr in self.tracks if t - tr[2] < self.track_seconds]
        while len(self.tracks) < self.faces:
            next_id[0] += 1
            self.tracks.append((next_id[0], int(self.rng.integers(len(self.people))), t, -1e9))
        obs, evidence = [], []
        for i, (tid, person, started, embedded) in enumerate(self.tracks):
            x = 40 + 150 * i
            obs.append(FaceObservation(self.name, tid, t, wall, (x, 60, x + 90, 170), 0.85, 25.0, "ortho"))
            if t - embedded >= REEMBED_SECONDS:
                self.tracks[i] = (tid, person, started, t)
                vec = _unit(self.people[person] + 0.9 * _unit(self.rng.standard_normal(DIM)))[None, :]
                evidence.append(TrackEvidence(self.name, tid, t, wall, vec, np.array([25.0], np.float32),
                                              np.array([0.85], np.float32), np.array([True])))  # fmt: skip
        self.n += 1
        msg = FacesMsg(f"bench/{self.name}", self.n, "bench", self.name, t, wall, obs, evidence)
        return encode(msg), [o.track_id for o in obs]


def _cpu(procs: dict[str, psutil.Process]) -> dict[str, float]:
    """CPU seconds (user + system) each process has used so far; the service's intake process (which
    reads the bus for it) apart, as "intake"."""
    out = {}
    for name, proc in procs.items():
        t = proc.cpu_times()
        out[name] = t.user + t.system
        if name == "service":
            out["intake"] = t.children_user + t.children_system  # children that ended (an intake restarted)
            for child in proc.children(recursive=True):
                try:
                    c = child.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                out["intake"] += c.user + c.system
    return out


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def _cameras(args: argparse.Namespace) -> list[Camera]:
    people = _unit(np.random.default_rng(0).standard_normal((args.people, DIM)))
    return [Camera(f"cam{i:04d}", args.faces, np.random.default_rng(i + 1), people, args.track_seconds) for i in range(args.cameras)]


async def load(args: argparse.Namespace, url: str, db: str, procs: dict[str, psutil.Process]) -> None:
    cfg = BusConfig(url=url)
    nc = await connect(cfg, "bench")
    js = nc.jetstream()
    await ensure_stream(js, cfg)
    cams = _cameras(args)
    sent: dict[int, float] = {}  # track -> wall time of its latest frame published
    latencies: list[float] = []

    async def answered(msg: nats.aio.msg.Msg) -> None:
        now = time.time()
        for track in json.loads(msg.data):
            published = sent.pop(int(track), None)
            if published is not None:
                latencies.append(now - published)

    await nc.subscribe(cfg.nodes_subject("bench"), cb=answered)
    next_id = [10_000_000]
    subject = {c.name: cfg.obs_subject(c.name) for c in cams}
    start = time.time()
    period = 1.0 / args.fps
    published_obs, tick, last_report = 0, 0, start
    lags: list[int] = []  # every 5 s
    report_obs, report_applied = 0, 0
    cpu_start = report_cpu = _cpu(procs)
    print(f"{args.cameras} cameras x {args.fps:g} fps x {args.faces} faces = {args.cameras * args.fps * args.faces:.0f} observations/s offered; {_load()}")
    while time.time() - start < args.seconds:
        t = tick * period
        wall = time.time()
        for cam in cams:  # one frame of every camera per tick, spread over the tick by the sends themselves
            data, tracks = cam.frame(t, wall, next_id)
            await nc.publish(subject[cam.name], data, headers={"Nats-Msg-Id": f"bench/{cam.name}/{cam.n}"})
            for tr in tracks:
                sent.setdefault(tr, wall)
            published_obs += len(tracks)
        tick += 1
        delay = start + tick * period - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if time.time() - last_report >= 5.0:
            now = time.time()
            applied, lag = _progress(db, (await js.stream_info(cfg.stream)).state.last_seq)
            lags.append(lag)
            applied_obs = applied * args.faces
            p95 = float(np.percentile(latencies[-20000:], 95)) if latencies else float("nan")
            cpu = _cpu(procs)
            shares = "  ".join(f"{k} {(cpu[k] - report_cpu[k]) / (now - last_report):.2f}" for k in cpu)
            print(f"{now - start:5.0f} s  published {(published_obs - report_obs) / (now - last_report):7.0f} obs/s  "
                  f"applied {(applied_obs - report_applied) / (now - last_report):7.0f} obs/s  lag {lag:6d} msgs  "
                  f"p95 publish->committed {p95 * 1000:7.0f} ms  behind {delay:+.2f} s  cores: {shares}", flush=True)  # fmt: skip
            last_report, report_obs, report_applied, report_cpu = now, published_obs, applied_obs, cpu
    elapsed = time.time() - start
    last = (await js.stream_info(cfg.stream)).state.last_seq
    applied, lag = _progress(db, last)
    lat = np.array(latencies) if latencies else np.array([float("nan")])
    print(f"total: {published_obs / elapsed:.0f} obs/s published over {elapsed:.0f} s, {applied * args.faces / elapsed:.0f} obs/s "
          f"applied by then; lag at the end {lag} messages (at most {max(lags, default=lag)} in the 5 s reports); publish->committed p50 {np.percentile(lat, 50) * 1000:.0f} ms, "
          f"p95 {np.percentile(lat, 95) * 1000:.0f} ms over {len(latencies)} tracks")  # fmt: skip
    cpu = _cpu(procs)
    print("CPU seconds over the run: " + ", ".join(f"{k} {cpu[k] - cpu_start[k]:.1f} ({(cpu[k] - cpu_start[k]) / elapsed:.2f} of a core)" for k in cpu)
          + f"; {_load()}")  # fmt: skip
    await nc.close()


async def prefill(args: argparse.Namespace, url: str) -> int:
    """Publishes `--seconds` of every camera's frames at once; returns the stream's last sequence."""
    cfg = BusConfig(url=url)
    nc = await connect(cfg, "bench")
    js = nc.jetstream()
    await ensure_stream(js, cfg)
    cams = _cameras(args)
    next_id, wall0 = [10_000_000], time.time()
    for k in range(int(args.seconds * args.fps)):
        for cam in cams:
            data, _ = cam.frame(k / args.fps, wall0 + k / args.fps, next_id)
            await nc.publish(cfg.obs_subject(cam.name), data, headers={"Nats-Msg-Id": f"bench/{cam.name}/{cam.n}"})
        await nc.flush()
    sent = len(cams) * int(args.seconds * args.fps)
    while (last := int((await js.stream_info(cfg.stream)).state.last_seq)) < sent:  # the server stores them a moment later
        await asyncio.sleep(0.1)
    await nc.close()
    return last


def _threads(proc: psutil.Process) -> dict[int, float]:
    return {t.id: t.user_time + t.system_time for t in proc.threads()}


async def _ready(url: str) -> None:
    """Until the service reads the bus (its durable consumer exists): its start is not timed."""
    cfg = BusConfig(url=url)
    nc = await connect(cfg, "bench")
    js = nc.jetstream()
    await ensure_stream(js, cfg)
    deadline = time.monotonic() + 120
    while True:
        try:
            await js.consumer_info(cfg.stream, CONSUMER)
            break
        except NotFoundError:
            if time.monotonic() > deadline:
                raise SystemExit("the memory service did not start reading the bus in 120 s") from None
            await asyncio.sleep(0.1)
    await nc.close()


def drain(db: str, last: int, service: psutil.Process, faces: int) -> None:
    """Waits until the service has applied the whole stream; its rate from its first commit on."""
    while _progress(db, last)[0] == 0:
        time.sleep(0.05)
    t0, cpu0, threads0 = time.time(), _cpu({"service": service}), _threads(service)
    first = _progress(db, last)[0]
    while (applied := _progress(db, last)[0]) < last:
        time.sleep(0.05)
    wall, cpu1, threads1 = time.time() - t0, _cpu({"service": service}), _threads(service)
    own, intake = cpu1["service"] - cpu0["service"], cpu1["intake"] - cpu0["intake"]
    cpu, n = own + intake, (applied - first) * faces
    if n == 0:
        print(f"drained {last} messages in the service's first commit: too few to time (raise --seconds or --cameras)")
        return
    print(f"drained {last} messages: {n / wall:.0f} observations/s over {wall:.1f} s after the first commit, "
          f"{cpu:.1f} CPU s ({cpu / wall:.2f} of a core, {1e6 * cpu / n:.0f} us per observation): the memory's process "
          f"{own:.1f} s ({own / wall:.2f} of a core, {1e6 * own / n:.0f} us), its intake {intake:.1f} s ({intake / wall:.2f}, "
          f"{1e6 * intake / n:.0f} us); {_load()}")  # fmt: skip
    busiest = sorted((threads1[t] - threads0.get(t, 0.0) for t in threads1), reverse=True)
    print("the memory process's threads, busiest first (the memory thread, then the event loop and the pipe's reader): "
          + ", ".join(f"{1e6 * c / n:.0f}" for c in busiest[:4]) + " us per observation")  # fmt: skip


def step(args: argparse.Namespace, db: str) -> None:
    """The memory service's batch step alone, in this process: the same frames, decoded and applied
    in the parts the service makes of a fetch, with the memory's tick once per second of frames as
    the service's app does, timed in CPU seconds of this process (a loaded machine slows the clock
    on the wall, not this)."""
    from memory import Memory  # noqa: PLC0415
    from streamer.bus.messages import decode  # noqa: PLC0415
    from streamer.bus.intake import FETCH  # noqa: PLC0415
    from streamer.bus.service import BATCH_ROWS, apply_batch  # noqa: PLC0415
    from streamer.config import Config  # noqa: PLC0415

    cams = _cameras(args)
    next_id, wall0 = [10_000_000], time.time()
    frames = [cam.frame(k / args.fps, wall0 + k / args.fps, next_id)[0] for k in range(int(args.seconds * args.fps)) for cam in cams]
    memory = Memory(Config().memory.model_copy(update={"db": db}))
    applied: dict[str, int] = {}
    per_second = int(args.cameras * args.fps)  # messages of one second of the cameras
    started, seq, ticked, tick_cpu = time.process_time(), 0, 0, 0.0
    for i in range(0, len(frames), FETCH):
        decoded = [decode(data) for data in frames[i : i + FETCH]]
        for j in range(0, len(decoded), BATCH_ROWS // args.faces):
            part = decoded[j : j + BATCH_ROWS // args.faces]
            apply_batch(memory, [(seq + k + 1, m) for k, m in enumerate(part)], applied)
            seq += len(part)
            while ticked < seq // per_second:  # the service's app ticks the memory every second
                ticked += 1
                t0 = time.process_time()
                memory.tick()
                tick_cpu += time.process_time() - t0
    cpu = time.process_time() - started
    memory.close()
    n = len(frames) * args.faces
    print(f"batch step: {n} observations of {args.cameras} cameras x {args.seconds:g} s in {cpu:.2f} CPU s: {n / cpu:.0f} "
          f"observations/s per core; {tick_cpu:.2f} s of it in {ticked} memory ticks (re-clustering, presence, expiry), "
          f"{n / (cpu - tick_cpu):.0f}/s without ({_load()})")  # fmt: skip


def _progress(db: str, last_seq: int) -> tuple[int, int]:
    if not exists(db):
        return 0, last_seq
    c = open_database(db, read_only=True)
    try:
        row = c.execute("SELECT value FROM meta WHERE key = 'bookmark.bus.seq'").fetchone()
    except c.errors:  # not created yet
        row = None
    finally:
        c.close()
    seq = 0 if row is None else int(row[0])
    return seq, last_seq - seq


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cameras", type=int, default=1000)
    p.add_argument("--fps", type=float, default=5.0)
    p.add_argument("--faces", type=int, default=2, help="faces per frame per camera")
    p.add_argument("--people", type=int, default=2000, help="identities the faces belong to")
    p.add_argument("--track-seconds", type=float, default=10.0)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--service-cpus", help="CPUs for the memory service (taskset list, e.g. 0,1)")
    p.add_argument("--db", help="an empty PostgreSQL database (postgresql://...) instead of a new SQLite file")
    p.add_argument("--step", action="store_true", help="time the memory service's batch step alone, in process, no bus")
    p.add_argument("--drain", action="store_true", help="publish --seconds of frames first, then time the service through them")
    args = p.parse_args()
    if args.step:
        with tempfile.TemporaryDirectory() as tmp:
            step(args, args.db or str(Path(tmp) / "memory.db"))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        server = subprocess.Popen([shutil.which("nats-server") or "nats-server", "-js", "-a", "127.0.0.1", "-p", str(port),
                                   "-sd", f"{tmp}/js"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(0.5)
        url, db = f"nats://127.0.0.1:{port}", args.db or str(Path(tmp) / "memory.db")
        last = asyncio.run(prefill(args, url)) if args.drain else 0
        cmd = [sys.executable, "-m", "streamer", "memory-service", "--bus", url, "--db", db, "--no-mqtt", "-q"]
        if args.service_cpus:
            cmd = ["taskset", "-c", args.service_cpus, *cmd]
        service = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"})
        try:
            if args.drain:
                drain(db, last, psutil.Process(service.pid), args.faces)
                return 0
            asyncio.run(_ready(url))
            procs = {"generator": psutil.Process(), "nats-server": psutil.Process(server.pid), "service": psutil.Process(service.pid)}
            asyncio.run(load(args, url, db, procs))
        finally:
            service.send_signal(signal.SIGTERM)
            service.wait(60)
            server.terminate()
            server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
