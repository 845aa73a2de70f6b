"""With no broker url the streamer runs its own (amqtt, MQTT 3.1.1) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from streamer.errors import PublishError
from streamer.publish import Publisher
from support.mosquitto import free_port

from .helpers import MemoryRig, events, mqtt_config, publishing, subscribed

pytestmark = pytest.mark.timeout(60)


def test_a_local_client_subscribes_with_no_setup(rig: MemoryRig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="streamer")
    port = free_port()

    async def run() -> None:
        async with publishing(mqtt_config(None, embedded_port=port), rig) as pub:
            async with subscribed(port) as sub:
                await sub.wait_for("online", lambda ms: any(m.topic == "status" and m.payload == b"online" for m in ms))
                node = await rig.new_face()
                await rig.label(node, "Alice")
                pub.notify()
                got = await sub.wait_for("the label", lambda ms: any(e["type"] == "node.labelled" for e in events(ms)))
                assert [e["seq"] for e in events(got)] == list(range(1, len(events(got)) + 1))
                await sub.wait_for(
                    "the node", lambda ms: any(m.topic == f"memory/nodes/{node}" and b"Alice" in m.payload for m in ms)
                )

    asyncio.run(run())
    assert f"embedded MQTT broker listening on mqtt://127.0.0.1:{port}" in caplog.text


def test_a_taken_port_is_one_line_that_says_what_to_do(rig: MemoryRig) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PublishError) as e:
            asyncio.run(Publisher(mqtt_config(None, embedded_port=port), rig.feed()).start())
    message = str(e.value)
    assert message.startswith(f"port {port} is in use:") and "--mqtt" in message and "--no-mqtt" in message
    assert "\n" not in message


def test_disabled_publishes_nothing_and_binds_nothing(rig: MemoryRig) -> None:
    port = free_port()

    async def run() -> None:
        async with publishing(mqtt_config(None, embedded_port=port, enabled=False), rig) as pub:
            pub.notify()
            pub.publish_stream_status("door", {"state": "live"})
            pub.publish_faces("door", [{"track": 1, "bbox": [0, 0, 1, 1], "node": None}])
            with socket.socket() as s:
                s.bind(("127.0.0.1", port))  # nobody listens there
            assert not pub.connected

    asyncio.run(run())
