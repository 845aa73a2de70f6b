"""A worker's outbox against a real NATS server that goes away: buffered within bounds, delivered
once and in order when it is back, overflow counted."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from streamer.bus.connection import BusConfig, connect, ensure_stream
from streamer.bus.outbox import Outbox
from support.nats import NatsServer

pytestmark = pytest.mark.timeout(60)


def test_buffer_through_a_server_restart(tmp_path: Path) -> None:
    with NatsServer(tmp_path) as server:
        cfg = BusConfig(url=server.url)

        async def scenario() -> tuple[list[bytes], int]:
            nc = await connect(cfg, "test")
            js = nc.jetstream()
            await ensure_stream(js, cfg)
            outbox = Outbox(js, limit=50)
            task = asyncio.create_task(outbox.run())
            for i in range(10):
                outbox.put(cfg.obs_subject("cam"), f"{i}".encode(), f"w/cam/{i}", droppable=True)
            await asyncio.wait_for(outbox.drained(), 10)
            server.kill()
            kept = [outbox.put(cfg.obs_subject("cam"), f"{i}".encode(), f"w/cam/{i}", droppable=True) for i in range(10, 70)]
            assert outbox.put(cfg.obs_subject("cam"), b"end", "w/cam/end", droppable=False), "a stream's end is always kept"
            assert kept.count(False) == 10 and outbox.stats.overflow == 10
            await asyncio.sleep(1.0)  # publishing fails meanwhile, and is retried
            server.start()
            await asyncio.wait_for(outbox.drained(), 30)
            task.cancel()
            sub = await js.pull_subscribe(cfg.obs_subject("cam"), durable="check", stream=cfg.stream)
            got: list[bytes] = []
            while True:
                try:
                    got += [m.data for m in await sub.fetch(100, timeout=1)]
                except Exception:
                    break
            retries = outbox.stats.retries
            await nc.close()
            return got, retries

        got, retries = asyncio.run(scenario())
    # every message the buffer held, once each (resends are dropped by the server's duplicate window), in order
    assert got == [f"{i}".encode() for i in range(60)] + [b"end"]
    assert retries > 0
