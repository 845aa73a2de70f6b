"""Shared cameras over a real nats-server: two worker processes, one live RTSP camera each, from one
config; one worker killed with SIGKILL, its camera resumes on the other and its person keeps one
identity."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import nats
import pytest
import yaml

from memory import Memory
from memory.config import MemoryConfig
from streamer.bus.connection import bucket, entries
from streamer.bus.leases import Holder
from streamer.demo.cast import Person
from streamer.demo.compose import Appearance, render_video
from support.nats import NatsServer
from support.ports import free_port
from support.rtsp import RtspServer

from .helpers import last_seq, scrape, service, stop, wait_applied, worker

pytestmark = pytest.mark.timeout(120)

A, C = 0, 6
CAMERAS = ("door", "hall")


def holders(url: str) -> dict[str, Holder | None]:
    async def read() -> dict[str, Holder | None]:
        nc = await nats.connect(url)
        try:
            kv = await bucket(nc.jetstream(), "streamer_leases")
            return {k: Holder.decode(e.value) for k, e in (await entries(kv)).items()}
        finally:
            await nc.close()

    return asyncio.run(read())


def faces_since(db: Path, stream: str, wall: float) -> int:
    """Faces of the stream the memory service has committed, seen after `wall`, with an identity."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as c:
            row = c.execute(
                "SELECT COUNT(*) FROM observations o JOIN tracks t ON t.id = o.track_id"
                " WHERE o.stream = ? AND o.wall_time > ? AND t.node_id IS NOT NULL",
                (stream, wall),
            ).fetchone()
    except sqlite3.OperationalError:  # not created yet
        return 0
    return int(row[0])


def until(check: Callable[[], bool], timeout: float, what: str, logs: list[Path]) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            tails = "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in logs if p.exists())
            raise AssertionError(f"timed out waiting for {what}\n{tails}")
        time.sleep(0.2)
    return time.monotonic() - started


def test_a_killed_workers_camera_resumes_on_another_with_its_identities(
    cast: list[Person], media_dir: Path, tmp_path: Path
) -> None:
    videos = {name: media_dir / f"bus_live_{name}.mp4" for name in CAMERAS}
    render_video(videos["door"], cast, [Appearance(A, 0, 30, 0.5)], seed=5)
    render_video(videos["hall"], cast, [Appearance(C, 0, 30, 0.5)], seed=6)
    db = tmp_path / "memory.db"
    logs = [tmp_path / n for n in ("service.log", "w1.log", "w2.log")]
    with RtspServer(file=videos["door"]) as door, RtspServer(file=videos["hall"]) as hall, NatsServer(tmp_path) as server:
        config = tmp_path / "site.yaml"
        config.write_text(yaml.safe_dump({
            "cameras": [{"name": "door", "url": door.url}, {"name": "hall", "url": hall.url}],
            "sources": {"backoff_initial_seconds": 0.2, "backoff_max_seconds": 1},
        }))  # fmt: skip
        svc = service(server.url, db, logs[0])
        ports = [free_port(), free_port()]
        workers = [
            worker(server.url, log=log, extra=("--config", str(config), "--metrics-port", str(port)))
            for log, port in zip(logs[1:], ports)
        ]
        try:
            until(lambda: len({h.pid for h in holders(server.url).values() if h}) == 2, 60, "one camera each", logs)
            until(lambda: all(faces_since(db, cam, 0.0) > 5 for cam in CAMERAS), 60, "both people identified", logs)
            owners = holders(server.url)
            victim = next(w for w in workers if owners["door"] and w.pid == owners["door"].pid)
            survivor = next(w for w in workers if w is not victim)
            killed_at = time.time()
            stop(victim, signal.SIGKILL)
            until(lambda: (h := holders(server.url).get("door")) is not None and h.pid == survivor.pid, 30, "the takeover", logs)
            leased_at = time.time()
            until(lambda: faces_since(db, "door", killed_at) > 0, 30, "the door's faces from the other worker", logs)
            print(f"takeover: lease {leased_at - killed_at:.1f} s, first identified face {time.time() - killed_at:.1f} s after the kill")
            until(lambda: faces_since(db, "door", killed_at) > 10, 30, "more of the door's faces", logs)
            assert faces_since(db, "hall", killed_at) > 0, "the survivor's own camera goes on"
            # from the takeover on, the survivor holds both cameras at every moment: one look is enough
            health = scrape(ports[workers.index(survivor)])
            assert health["streamer_bus_cameras_owned"] == 2 and health["streamer_bus_live_workers"] == 1
            assert health["streamer_bus_takeovers_total"] == 1
            assert stop(survivor) == 0, logs[2].read_text()[-2000:]
            assert holders(server.url) == {}, "a worker stopped cleanly gives its leases back"
            wait_applied(db, last_seq(server.url), svc)
        finally:
            for w in workers:
                stop(w, signal.SIGKILL)
            assert stop(svc) == 0, logs[0].read_text()[-2000:]
    with Memory(MemoryConfig(db=str(db))) as memory:
        faces = list(memory.export_faces())
    before = Counter(f["node"] for f in faces if f["stream"] == "door" and f["wall_time"] < killed_at and f["node"])
    after = Counter(f["node"] for f in faces if f["stream"] == "door" and f["wall_time"] > killed_at and f["node"])
    hall_nodes = Counter(f["node"] for f in faces if f["stream"] == "hall" and f["node"])
    assert len(before) == 1, f"one person at the door before the kill: {before}"
    assert set(after) == set(before), f"the door's person became someone else on the other worker: {before} -> {after}"
    assert len(hall_nodes) == 1 and set(hall_nodes) != set(before)
