"""Latency of the MQTT feed: an identity decision written to memory -> a subscriber holding its event.

Runs a local mosquitto, a real Memory on its own thread (as the streamer does), the publisher and a
subscriber in one process. Each decision is `identify_track` for a new face, then `flush` (events are
published once committed) and `notify()`, as the pipeline does. The clock starts when
`identify_track` returns and stops when the subscriber receives the event. Goal: p95 <= 50 ms.

    python tools/bench_mqtt.py [--decisions 500] [--rate 50]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import logging
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import aiomqtt
import numpy as np

from memory import Memory, MemoryConfig, TrackEvidence
from streamer.config import MqttConfig
from streamer.publish import MemoryThreadFeed, Publisher

PREFIX = "bench"
DIM = 512


def _load_mosquitto_helper() -> ModuleType:
    """The tests' mosquitto runner, loaded by path: tests/ is not a package to import from."""
    path = Path(__file__).resolve().parents[1] / "tests" / "support" / "mosquitto.py"
    spec = importlib.util.spec_from_file_location("mosquitto_helper", path)
    assert spec is not None and spec.loader is not None
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def decide(memory: Memory, rng: np.random.Generator, last: int) -> tuple[float, list[int]]:
    """On the memory thread: one identity decision (a new face); returns when it was made and the
    seqs of the events it wrote after seq `last`."""
    emb = rng.standard_normal((3, DIM)).astype(np.float32)
    emb = emb[:1] + 0.05 * emb  # three views of one face
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    ev = TrackEvidence("bench", memory.new_track_id(), 0.0, time.time(), emb,
                       np.full(3, 25.0, np.float32), np.full(3, 0.9, np.float32), np.ones(3, bool))  # fmt: skip
    memory.identify_track(ev)
    decided = time.perf_counter()
    memory.flush()
    return decided, [e.seq for e in memory.events_after(last, 1000)]


async def bench(decisions: int, rate: float, folder: Path) -> list[float]:
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memory")
    memory = executor.submit(Memory, MemoryConfig(db=str(folder / "memory.db"))).result()
    rng = np.random.default_rng(0)
    loop = asyncio.get_running_loop()
    sent: dict[int, float] = {}
    received: dict[int, float] = {}
    with _load_mosquitto_helper().Mosquitto(folder / "broker") as broker:
        async with aiomqtt.Client("127.0.0.1", broker.port) as sub:
            await sub.subscribe(f"{PREFIX}/memory/events", qos=1)

            async def listen() -> None:
                async for m in sub.messages:
                    received[json.loads(m.payload)["seq"]] = time.perf_counter()  # type: ignore[arg-type]

            listener = asyncio.create_task(listen())
            pub = Publisher(MqttConfig(url=broker.url, prefix=PREFIX), MemoryThreadFeed(memory, executor))
            await pub.start()
            last = 0
            for _ in range(decisions):
                decided, seqs = await loop.run_in_executor(executor, decide, memory, rng, last)
                pub.notify()
                sent.update((s, decided) for s in seqs)
                last = max(seqs, default=last)
                await asyncio.sleep(1 / rate)
            deadline = time.monotonic() + 10
            while set(sent) - set(received) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            await pub.stop()
            listener.cancel()
    executor.submit(memory.close).result()
    executor.shutdown()
    missing = set(sent) - set(received)
    if missing:
        raise SystemExit(f"{len(missing)} of {len(sent)} events never arrived")
    return [(received[s] - sent[s]) * 1000 for s in sorted(sent)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--decisions", type=int, default=500)
    p.add_argument("--rate", type=float, default=50.0, help="decisions per second")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        ms = np.array(asyncio.run(bench(args.decisions, args.rate, Path(tmp))))
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    print(f"{len(ms)} events, decision -> subscriber over loopback mosquitto (QoS 1):")
    print(f"  p50 {p50:.2f} ms  p95 {p95:.2f} ms  p99 {p99:.2f} ms  max {ms.max():.2f} ms  (goal p95 <= 50 ms)")


if __name__ == "__main__":
    main()
