"""The streamer's bus commands as real processes, and what they leave in the stream and the store."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
from prometheus_client.parser import text_string_to_metric_families

from memory import Memory
from memory.config import MemoryConfig
from memory.database import open_database


def service(url: str, db: Path | str, log: Path, extra: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "streamer", "memory-service", "--bus", url, "--db", str(db), "--no-mqtt", *extra]
    with log.open("ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)


def worker(
    url: str, *sources: str | Path, log: Path, extra: tuple[str, ...] = (), voices: bool = False
) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "streamer", "worker", "--bus", url, *map(str, sources), "--no-mqtt", "-q", *extra]
    if not voices:
        args.append("--no-voices")
    with log.open("ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    return proc.wait(30)


def scrape(port: int) -> dict[str, float]:
    """A Prometheus endpoint's unlabelled samples by name ({} while it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    return {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples if not s.labels}


def scrape_until(port: int, ready: Callable[[dict[str, float]], bool], timeout: float = 30.0) -> dict[str, float]:
    """The endpoint's samples once `ready` holds of them, or the last ones read at the timeout. A
    process counts what it did on its event loop, a moment after the store or the bus holds it."""
    deadline = time.monotonic() + timeout
    while not ready(seen := scrape(port)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return seen


def last_seq(url: str, stream: str = "STREAMER_OBS") -> int:
    async def ask() -> int:
        nc = await nats.connect(url)
        try:
            return int((await nc.jetstream().stream_info(stream)).state.last_seq)
        finally:
            await nc.close()

    return asyncio.run(ask())


def applied_seq(db: Path | str) -> int:
    """How far the memory service has committed (0 before its first commit); a file or a PostgreSQL URL."""
    if isinstance(db, Path) and not db.exists():
        return 0
    c = open_database(str(db), read_only=True)
    try:
        row = c.execute("SELECT value FROM meta WHERE key = 'bookmark.bus.seq'").fetchone()
    except c.errors:  # not created yet
        return 0
    finally:
        c.close()
    return 0 if row is None else int(row[0])


def wait_applied(db: Path | str, seq: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while applied_seq(db) < seq:
        assert proc.poll() is None, "the memory service exited"
        assert time.monotonic() < deadline, f"the memory service applied up to {applied_seq(db)} of {seq}"
        time.sleep(0.1)


def snapshot(db: Path | str) -> dict[str, Any]:
    """What the memory holds, comparable between two runs on the same messages."""
    with Memory(MemoryConfig(db=str(db))) as memory:
        nodes = [(n["id"], n["kind"], n["status"], n["n_observations"], n["n_tracks"]) for n in memory.export_nodes()]
        faces = Counter((f["stream"], round(f["t"], 3), f["node"]) for f in memory.export_faces())
        events = Counter(e.type for e in memory.events_after(0, 100_000))
    c = open_database(str(db), read_only=True)
    try:
        tracks = sorted(c.execute("SELECT id, node_id FROM tracks").fetchall())
    finally:
        c.close()
    return {"nodes": nodes, "faces": faces, "events": events, "tracks": tracks}
