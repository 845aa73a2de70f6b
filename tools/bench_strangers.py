"""What strangers cost the memory's process: bytes held per expired node, live and after a restart,
before and after a retention pass.

    python tools/bench_strangers.py                 # 3,000 strangers
    python tools/bench_strangers.py --strangers 500

A replay of a busy door: one stranger after another, each one track of two good faces (seen too
briefly to be confirmed) with a crop, a second of stream apart, fed through `record_faces` and
`identify_track` with `tick` after each, as the service does; all of them expire. The faces are
random 512-d unit vectors (nobody matches anybody: every track makes a node of its own). Python's
allocations are counted with tracemalloc (numpy's arrays included); the figures are bytes per
stranger:

- live: what the process holds more after the strangers than after a warm-up of `--warmup` of
  them (rows, tracks still in memory, bookkeeping), within the first hour of the replay, so neither
  retention nor the idle-track sweep has run;
- restart: what opening the file holds more than opening an empty one, per expired node in the file;
- file: the bytes of the SQLite file's pages in use, per stranger;
- after the retention pass (the clock a retention period later): the same again.

Memory is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sqlite3
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from memory import FaceObservation, Memory, MemoryConfig, NodeKind, TrackEvidence

DIM = 512
START = 1_700_000_000.0
DAY = 86400.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def feed(memory: Memory, clock: Clock, rng: np.random.Generator, n: int, t: float) -> float:
    """n strangers, one a second of stream (and of clock); returns the stream time reached."""
    crop = bytes(rng.integers(0, 256, 3000, dtype=np.uint8))  # a crop's size; its bytes go to the file
    for _ in range(n):
        track = memory.new_track_id()
        centre = rng.standard_normal(DIM)
        faces = centre + 0.5 * rng.standard_normal((2, DIM))
        faces = (faces / np.linalg.norm(faces, axis=1, keepdims=True)).astype(np.float32)
        for i, face in enumerate(faces):
            wall, at = clock.now + 0.2 * i, t + 0.2 * i
            memory.record_faces([FaceObservation("door", track, at, wall, (10, 10, 90, 110), 0.85, 25.0, "ortho")])
            memory.identify_track(TrackEvidence("door", track, at, wall, face[None, :], np.array([25.0], np.float32),
                                                np.array([0.85], np.float32), np.array([True]),
                                                crop if i == 0 else None, 25.0))  # fmt: skip
        clock.now += 1.0
        t += 1.0
        memory.tick()
    return t


def in_use(path: str) -> int:
    """Bytes of an SQLite file's pages in use (free pages left out: SQLite reuses them)."""
    with sqlite3.connect(path) as db:
        pages, free, size = (db.execute(f"PRAGMA {k}").fetchone()[0] for k in ("page_count", "freelist_count", "page_size"))
    return int((pages - free) * size)


def opened(cfg: MemoryConfig, clock: Clock) -> tuple[Memory, int]:
    """The memory on a file, and the bytes opening it holds."""
    before = traced()
    memory = Memory(cfg, clock=clock)
    return memory, traced() - before


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--strangers", type=int, default=3000)
    p.add_argument("--warmup", type=int, default=300)
    args = p.parse_args()
    if args.warmup + args.strangers > 3300:
        p.error("--warmup + --strangers must stay within 3,300 (an hour of the replay, one a second, before the idle-track sweep)")
    logging.basicConfig(level=logging.WARNING)
    rng = np.random.default_rng(0)
    n = args.warmup + args.strangers
    with tempfile.TemporaryDirectory() as tmp:
        clock = Clock()
        tracemalloc.start()
        empty, empty_bytes = opened(MemoryConfig(db=str(Path(tmp) / "empty.db")), clock)
        empty.close()
        cfg = MemoryConfig(db=str(Path(tmp) / "memory.db"))
        with Memory(cfg, clock=clock) as memory:
            t = feed(memory, clock, rng, args.warmup, 0.0)
            warm = traced()
            t = feed(memory, clock, rng, args.strangers, t)
            clock.now += cfg.provisional_ttl_seconds + 1
            memory.tick()
            memory.flush()
            live = (traced() - warm) / args.strangers
            expired = sum(1 for _ in memory.nodes(NodeKind.FACE, include_inactive=True))
        file_bytes = in_use(cfg.db) - in_use(str(Path(tmp) / "empty.db"))
        memory, restart_bytes = opened(cfg, clock)
        restart = (restart_bytes - empty_bytes) / n
        memory.mark_published(memory.last_event_seq())  # the feed went out, as in a service with its broker up
        memory.flush()
        before_pass = traced()
        clock.now += cfg.retention_days * DAY + 3600
        cpu = time.process_time()
        pruned = memory.prune()
        memory.flush()
        cpu = time.process_time() - cpu
        released = (before_pass - traced()) / n
        memory.close()
        file_after = in_use(cfg.db) - in_use(str(Path(tmp) / "empty.db"))
        memory, pruned_bytes = opened(cfg, clock)
        after = (pruned_bytes - empty_bytes) / n
        left = sum(1 for _ in memory.nodes(NodeKind.FACE, include_inactive=True))
        memory.close()
        tracemalloc.stop()
    print(f"{n} strangers ({args.warmup} of them a warm-up), {expired} face nodes, all expired")
    print(f"live: {live:,.0f} B per stranger held after they expired")
    print(f"restart: {restart:,.0f} B per expired node in the file ({restart_bytes - empty_bytes:,} B over an empty memory)")
    print(f"file: {file_bytes / n:,.0f} B per stranger in use ({file_bytes:,} B over an empty memory)")
    print(f"retention pass ({cpu:.2f} s CPU, traced): {pruned}")
    print(f"  released {released:,.0f} B per stranger in the running process; {left} nodes left in the file")
    print(f"  restart after it: {after:,.0f} B per stranger ({pruned_bytes - empty_bytes:,} B over an empty memory)")
    print(f"  file after it: {file_after / n:,.0f} B per stranger in use ({file_after:,} B over an empty memory)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
