"""The feed as a subscriber sees it from a real `streamer run` process on a video of a real person:
killed with SIGKILL, the broker's will says offline; restarted on the same memory, the streamer
publishes what the killed one had stored but not sent, and no event is missing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from memory import Memory, MemoryConfig
from streamer.demo.cast import Person
from streamer.demo.compose import Appearance, render_video
from support.mosquitto import Mosquitto

from .helpers import PREFIX, events, seqs, subscribed

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
KEEPALIVE = 2


def _streamer(video: Path, db: Path, broker: Mosquitto) -> subprocess.Popen[bytes]:
    env = {**os.environ, "STREAMER_MQTT__KEEPALIVE": str(KEEPALIVE)}
    cmd = [sys.executable, "-m", "streamer", "run", f"hall={video}", "--realtime", "--db", str(db),
           "--mqtt", broker.url, "--mqtt-prefix", PREFIX, "-q"]  # fmt: skip
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_killed_streamer_goes_offline_and_a_restart_loses_no_event(
    cast: list[Person], media_dir: Path, tmp_path: Path
) -> None:
    video = media_dir / "feed_two_people.mp4"
    render_video(video, cast, [Appearance(1, 0, 6, 0.3), Appearance(6, 2, 6, 0.7)])
    db = tmp_path / "memory.db"

    async def scenario() -> None:
        with Mosquitto(tmp_path / "broker") as broker:
            async with subscribed(broker.port) as sub:
                first = _streamer(video, db, broker)
                try:
                    got = await sub.wait_for(
                        "both people", lambda ms: sum(e["type"] == "person.appeared" for e in events(ms)) >= 2
                    )
                    appeared = [e["node"] for e in events(got) if e["type"] == "person.appeared"]
                    assert all(any(m.topic == f"memory/nodes/{n}" and m.retain is False for m in got) for n in appeared)
                    killed_at = time.monotonic()
                    os.kill(first.pid, signal.SIGKILL)
                    await sub.wait_for("the will", lambda ms: [m.payload for m in ms if m.topic == "status"][-1:] == [b"offline"])
                    assert time.monotonic() - killed_at < 1.5 * KEEPALIVE + 2
                finally:
                    first.kill()
                    first.wait()
                second = _streamer(video, db, broker)
                try:
                    assert second.wait(120) == 0, second.stderr.read().decode() if second.stderr else ""
                    await sub.barrier()
                finally:
                    second.kill()
                    second.wait()
                with Memory(MemoryConfig(db=str(db))) as memory:
                    stored = [e.seq for e in memory.events_after(0, limit=100_000)]
                received = sorted(set(seqs(sub.messages)))
                assert received == stored == list(range(1, len(stored) + 1))  # every event, none missing
                assert [m.payload for m in sub.messages if m.topic == "status"][-1] == b"offline"  # a clean exit too
            async with subscribed(broker.port) as fresh:  # a robot that connects later sees the identities
                await fresh.barrier()
                for node in appeared:
                    (state,) = fresh.retained(f"memory/nodes/{node}")
                    assert state.json()["id"] == node and state.json()["status"] == "confirmed"
                assert [m.payload for m in fresh.retained("status")] == [b"offline"]

    asyncio.run(scenario())
