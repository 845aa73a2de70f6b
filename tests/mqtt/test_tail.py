"""`streamer tail` against a real broker: readable lines, or JSON lines with --json."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Awaitable, Callable

import pytest

from streamer.errors import PublishError
from streamer.publish import Publisher
from streamer.tail import tail
from support.mosquitto import Mosquitto
from support.ports import free_port

from .helpers import WAIT, MemoryRig, mqtt_config, publishing

pytestmark = pytest.mark.timeout(60)


async def _wait_line(out: io.StringIO, task: asyncio.Task[None], text: str) -> None:
    async def seen() -> None:
        while text not in out.getvalue():
            if task.done():
                task.result()
            await asyncio.sleep(0.02)

    await asyncio.wait_for(seen(), WAIT)


async def _tail_while(
    broker: Mosquitto, rig: MemoryRig, as_json: bool, work: Callable[[Publisher], Awaitable[None]], done: str
) -> list[str]:
    """Tails the feed of a running publisher: once tail shows the retained status (it is subscribed),
    runs `work`, then returns the lines up to one containing `done`."""
    out = io.StringIO()
    async with publishing(mqtt_config(broker.url), rig) as pub:
        task = asyncio.create_task(tail(mqtt_config(broker.url), as_json=as_json, out=out))
        try:
            await _wait_line(out, task, "online")
            await work(pub)
            await _wait_line(out, task, done)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return out.getvalue().splitlines()


def test_tail_prints_one_readable_line_per_message(broker: Mosquitto, rig: MemoryRig) -> None:
    async def work(pub: Publisher) -> None:
        node = await rig.new_face("door")
        await rig.label(node, "Alice")
        pub.publish_stream_status("door", {"state": "live", "fps_in": 25.0, "fps_analysed": 5.0})
        pub.notify()

    lines = asyncio.run(_tail_while(broker, rig, False, work, "node.labelled"))
    assert any(line.endswith(" status online") for line in lines)
    created = next(line for line in lines if " memory/events #1 " in line)
    assert created.split(" ", 1)[1] == "memory/events #1 node.created face_1 in door"
    assert any(line.endswith("memory/events #2 node.labelled face_1 (Alice)") for line in lines)
    assert all(line[:8].count(":") == 2 for line in lines)  # HH:MM:SS first


def test_tail_json_lines(broker: Mosquitto, rig: MemoryRig) -> None:
    async def work(pub: Publisher) -> None:
        await rig.new_face("door")
        pub.notify()

    records = [json.loads(line) for line in asyncio.run(_tail_while(broker, rig, True, work, '"node.created"'))]
    event = next(r for r in records if r["topic"] == "test/memory/events")
    assert event["payload"]["type"] == "node.created" and event["payload"]["seq"] == 1
    assert {"topic": "test/status", "retain": True, "payload": "online"} in records


def test_tail_without_a_broker_is_one_line() -> None:
    port = free_port()
    with pytest.raises(PublishError) as e:
        asyncio.run(tail(mqtt_config(f"mqtt://127.0.0.1:{port}"), as_json=False, out=io.StringIO()))
    assert f"127.0.0.1:{port}" in str(e.value) and "\n" not in str(e.value)
