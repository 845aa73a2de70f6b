"""A streamer that dies without saying goodbye leaves `offline` behind (the broker publishes its will)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from support.mosquitto import Mosquitto

from .helpers import PREFIX, subscribed

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]

# A publishing streamer in its own process, so that it can be killed -9.
CHILD = """
import asyncio, sys
from concurrent.futures import ThreadPoolExecutor
from memory import Memory, MemoryConfig
from streamer.config import MqttConfig
from streamer.publish import MemoryThreadFeed, Publisher

async def main():
    executor = ThreadPoolExecutor(1)
    memory = executor.submit(Memory, MemoryConfig(db=sys.argv[2])).result()
    pub = Publisher(MqttConfig(url=sys.argv[1], prefix=sys.argv[3], keepalive=1), MemoryThreadFeed(memory, executor))
    await pub.start()
    await asyncio.Event().wait()

asyncio.run(main())
"""


def test_last_will_marks_a_killed_streamer_offline(broker: Mosquitto, tmp_path: Path) -> None:
    async def run() -> None:
        async with subscribed(broker.port) as sub:
            child = subprocess.Popen(
                [sys.executable, "-c", CHILD, broker.url, str(tmp_path / "child.db"), PREFIX], cwd=ROOT
            )
            try:
                await sub.wait_for("online", lambda ms: any(m.topic == "status" and m.payload == b"online" for m in ms))
                os.kill(child.pid, signal.SIGKILL)
                got = await sub.wait_for("the will", lambda ms: [m.payload for m in ms if m.topic == "status"][-1] == b"offline")
                assert [m.payload for m in got if m.topic == "status"] == [b"online", b"offline"]
            finally:
                child.kill()
                child.wait()
        async with subscribed(broker.port) as fresh:
            await fresh.barrier()
            assert [m.payload for m in fresh.retained("status")] == [b"offline"]

    asyncio.run(run())
