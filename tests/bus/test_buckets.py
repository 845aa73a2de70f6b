"""A key-value bucket read whole (streamer.bus.connection.entries) against a real nats-server, as
every lease round reads two: each read sees every key, deleted keys are left out, and the reads
leave no consumers behind on the server."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import nats
import pytest

from streamer.bus.connection import bucket, entries
from support.nats import NatsServer

pytestmark = pytest.mark.timeout(60)

READS = 500  # the server refuses a stream's 1001st consumer: one left per read would not go unseen


def test_every_read_sees_every_key_and_leaves_no_consumer(tmp_path: Path) -> None:
    async def scenario() -> None:
        with NatsServer(tmp_path) as server:
            nc = await nats.connect(server.url)
            js = nc.jetstream()
            assert await entries(await bucket(js, "empty")) == {}
            kv = await bucket(js, "workers")
            await kv.put("dead", b"{}")
            await kv.put("gone", b"{}")
            await kv.delete("gone")
            seen: Counter[tuple[str, ...]] = Counter()
            for _ in range(READS):
                await kv.put("me", b"{}")  # as a round does: its own heartbeat just before it reads
                seen[tuple(sorted(await entries(kv)))] += 1
            assert seen == {("dead", "me"): READS}
            deadline = time.monotonic() + 30
            while (left := (await js.stream_info("KV_workers")).state.consumer_count) > 0:
                assert time.monotonic() < deadline, f"{left} consumers of the reads left on the server"
                await asyncio.sleep(0.2)
            await nc.close()

    asyncio.run(scenario())
