"""The pipeline split over a real NATS server: workers and the memory service as real processes on
videos of real people."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

import nats
import pytest
from nats.js.errors import NoStreamResponseError

from memory import Memory
from memory.config import MemoryConfig
from streamer.demo.cast import Person
from streamer.demo.compose import Appearance, render_video
from support.nats import NatsServer
from support.postgres import PostgresServer

from .helpers import applied_seq, last_seq, service, snapshot, stop, wait_applied, worker

pytestmark = pytest.mark.timeout(120)

A, B, C = 0, 1, 6
DOOR = [Appearance(A, 0, 5, 0.5)]
HALL = [Appearance(A, 0, 5, 0.5), Appearance(C, 5, 10, 0.5)]
ENTER_LEAVE = [Appearance(A, 0, 5, 0.25), Appearance(B, 2, 8, 0.75), Appearance(C, 8, 12, 0.5), Appearance(A, 12, 16, 0.5)]


@pytest.fixture(scope="module")
def videos(cast: list[Person], media_dir: Path) -> dict[str, Path]:
    paths = {name: media_dir / f"bus_{name}.mp4" for name in ("door", "hall", "enter_leave")}
    render_video(paths["door"], cast, DOOR, seed=3)
    render_video(paths["hall"], cast, HALL, seed=4)
    render_video(paths["enter_leave"], cast, ENTER_LEAVE)
    return paths


def _nodes_by_stream(db: Path) -> dict[str, list[tuple[float, int | None]]]:
    with Memory(MemoryConfig(db=str(db))) as memory:
        out: dict[str, list[tuple[float, int | None]]] = {}
        for f in memory.export_faces():
            out.setdefault(f["stream"], []).append((f["t"], f["node"]))
        confirmed = [n for n in memory.export_nodes() if n["kind"] == "face" and n["status"] == "confirmed"]
    out["_confirmed"] = [(0.0, n["id"]) for n in confirmed]
    return out


def test_a_person_crossing_from_one_worker_to_another_is_one_identity(videos: dict[str, Path], tmp_path: Path) -> None:
    db = tmp_path / "memory.db"
    with NatsServer(tmp_path) as server:
        svc = service(server.url, db, tmp_path / "service.log")
        try:
            door = worker(server.url, f"door={videos['door']}", log=tmp_path / "door.log")
            assert door.wait(60) == 0, (tmp_path / "door.log").read_text()[-2000:]
            hall = worker(server.url, f"hall={videos['hall']}", log=tmp_path / "hall.log")
            assert hall.wait(60) == 0, (tmp_path / "hall.log").read_text()[-2000:]
            wait_applied(db, last_seq(server.url), svc)
        finally:
            assert stop(svc) == 0, (tmp_path / "service.log").read_text()[-2000:]
    seen = _nodes_by_stream(db)
    door_nodes = Counter(n for _, n in seen["door"] if n is not None)
    a = door_nodes.most_common(1)[0][0]
    assert set(door_nodes) == {a}
    hall_a = Counter(n for t, n in seen["hall"] if t < 4.8 and n is not None)
    hall_c = Counter(n for t, n in seen["hall"] if t > 5.2 and n is not None)
    assert set(hall_a) == {a}, f"the person from the door camera is a new identity in the hall: {hall_a}"
    assert len(hall_c) == 1 and a not in hall_c
    assert len(seen["_confirmed"]) == 2


def _presences(db: Path) -> dict[tuple[str, int], list[str]]:
    """The committed person.* events of each (stream, node), in order."""
    if not db.exists():
        return {}
    out: dict[tuple[str, int], list[str]] = {}
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as c:
            for stream, type_, data in c.execute("SELECT stream, type, data FROM events WHERE type LIKE 'person.%' ORDER BY seq"):
                out.setdefault((stream, json.loads(data)["node"]), []).append(type_)
    except sqlite3.OperationalError:  # not created yet
        pass
    return out


def _decisions(events: Counter[str]) -> Counter[str]:
    return Counter({t: n for t, n in events.items() if t.startswith(("node.", "clip.")) and t != "node.updated"})


async def _publish_garbage(url: str) -> None:
    """Once the service has made the stream (it starts slowly on a busy machine)."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    deadline = time.monotonic() + 60
    while True:
        try:
            await js.publish("streamer.obs.cam", b"\x00not ours")
            break
        except NoStreamResponseError:
            assert time.monotonic() < deadline, "the memory service made no stream"
            await asyncio.sleep(0.2)
    await nc.close()


def test_memory_service_killed_mid_stream_loses_nothing_and_applies_nothing_twice(
    videos: dict[str, Path], tmp_path: Path
) -> None:
    killed_db, once_db = tmp_path / "killed.db", tmp_path / "once.db"
    log = tmp_path / "service.log"
    with NatsServer(tmp_path) as server:
        svc = service(server.url, killed_db, log)
        asyncio.run(_publish_garbage(server.url))
        cam = worker(server.url, f"cam={videos['enter_leave']}", log=tmp_path / "worker.log", extra=("--realtime",))
        try:
            deadline = time.monotonic() + 60
            while applied_seq(killed_db) < 20 or not _presences(killed_db):  # mid-stream, someone present
                assert time.monotonic() < deadline and svc.poll() is None, log.read_text()[-2000:]
                time.sleep(0.05)
            stop(svc, signal.SIGKILL)
            at_kill = applied_seq(killed_db)
            time.sleep(2.0)  # the worker goes on publishing meanwhile
            svc = service(server.url, killed_db, log)
            assert cam.wait(60) == 0, (tmp_path / "worker.log").read_text()[-2000:]
            total = last_seq(server.url)
            assert at_kill < total - 10, "the service was not killed mid-stream"
            wait_applied(killed_db, total, svc)
        finally:
            assert stop(svc) == 0, log.read_text()[-2000:]
        # the same messages, applied by a service that is never interrupted
        once = service(server.url, once_db, tmp_path / "once.log")
        try:
            wait_applied(once_db, total, once)
        finally:
            assert stop(once) == 0
    assert "1 malformed" in (tmp_path / "once.log").read_text(), "the foreign message is counted"
    killed, uninterrupted = snapshot(killed_db), snapshot(once_db)
    assert killed["faces"] == uninterrupted["faces"], "faces lost or recorded twice"
    assert killed["tracks"] == uninterrupted["tracks"]
    assert killed["nodes"] == uninterrupted["nodes"]
    # identity and clip events are the same; presence (person.*) and node.updated follow the memory's
    # own clock, so a live run and a replay of the same messages announce them differently
    assert _decisions(killed["events"]) == _decisions(uninterrupted["events"])
    assert len([n for n in killed["nodes"] if n[1] == "face" and n[2] == "confirmed"]) == 3
    # the presences on at the kill went on in the restarted service: nobody was announced twice
    for (stream, node), types in _presences(killed_db).items():
        assert all(a != b for a, b in zip(types, types[1:])), f"{stream} {node}: {types}"


def test_a_memory_service_on_postgresql_gives_what_one_on_a_file_gives(
    videos: dict[str, Path], tmp_path: Path, postgres: PostgresServer
) -> None:
    """`streamer memory-service --db postgresql://...` fed by a worker; then a service on an SQLite
    file applies the same messages from the stream: the same identities, faces, tracks and events."""
    on_postgres, on_file = postgres.database(), tmp_path / "memory.db"
    with NatsServer(tmp_path) as server:
        svc = service(server.url, on_postgres, tmp_path / "service.log")
        try:
            hall = worker(server.url, f"hall={videos['hall']}", log=tmp_path / "hall.log")
            assert hall.wait(60) == 0, (tmp_path / "hall.log").read_text()[-2000:]
            total = last_seq(server.url)
            wait_applied(on_postgres, total, svc)
        finally:
            assert stop(svc) == 0, (tmp_path / "service.log").read_text()[-2000:]
        replay = service(server.url, on_file, tmp_path / "replay.log")
        try:
            wait_applied(on_file, total, replay)
        finally:
            assert stop(replay) == 0, (tmp_path / "replay.log").read_text()[-2000:]
    pg, file = snapshot(on_postgres), snapshot(on_file)
    assert pg["faces"] == file["faces"] and sum(pg["faces"].values()) > 0
    assert pg["tracks"] == file["tracks"]
    assert pg["nodes"] == file["nodes"]
    assert _decisions(pg["events"]) == _decisions(file["events"])
    assert len([n for n in pg["nodes"] if n[1] == "face" and n[2] == "confirmed"]) == 2  # the two people in the hall
