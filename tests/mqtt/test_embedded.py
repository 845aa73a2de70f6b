"""With no broker url the streamer runs its own (amqtt, MQTT 3.1.1) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamer.errors import PublishError
from streamer.publish import Publisher
from streamer.publish.broker import DRAIN_SECONDS, SHUTDOWN_SECONDS, EmbeddedBroker
from support.ports import free_port

from .helpers import MemoryRig, events, mqtt_config, publishing, seqs, subscribed

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]


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


def test_what_goes_in_process_reaches_subscribers_over_tcp_retained_state_and_goodbye_included(rig: MemoryRig) -> None:
    """The publisher hands messages to its embedded broker in process; real clients connected over
    TCP get them as from any broker: events in order, identity states live and retained (a merged-away
    node's cleared), the stream status retained, and `offline` before the broker closes at stop."""
    port = free_port()

    async def run() -> None:
        pub = Publisher(mqtt_config(None, embedded_port=port), rig.feed())
        await pub.start()
        async with subscribed(port) as live:
            try:
                await live.wait_for("online", lambda ms: any(m.topic == "status" and m.payload == b"online" for m in ms))
                alice, other = await rig.new_face("door"), await rig.new_face("hall")
                await rig.label(alice, "Alice")
                await rig.merge(alice, other)
                pub.publish_stream_status("door", {"state": "live"})
                pub.notify()
                got = await live.wait_for(
                    "the cleared node", lambda ms: any(m.topic == f"memory/nodes/{other}" and not m.payload for m in ms)
                )
                total = await rig.last_seq()
                got = await live.wait_for("every event", lambda ms: len(seqs(ms)) >= total)
                assert seqs(got) == list(range(1, total + 1))
                assert await rig.feed().published_seq() == total  # marked once the broker had taken them
                async with subscribed(port) as late:
                    await late.barrier()
                    # (amqtt 0.12 also sends a newcomer the retained messages of the other clients' filters
                    # before it subscribes, so with `live` subscribed they come twice)
                    assert {m.payload for m in late.retained("status")} == {b"online"}
                    assert {m.json()["label"] for m in late.retained(f"memory/nodes/{alice}")} == {"Alice"}
                    assert late.retained(f"memory/nodes/{other}") == []
                    assert {m.json()["state"] for m in late.retained("streams/door/status")} == {"live"}
                    assert events(late.messages) == []  # events are not retained
            finally:
                await pub.stop()
            got = await live.wait_for("offline", lambda ms: [m.payload for m in ms if m.topic == "status"][-1:] == [b"offline"])
            assert [m.payload for m in got if m.topic == "status"] == [b"online", b"offline"]

    asyncio.run(run())


def test_publishing_into_the_embedded_broker_loads_no_mqtt_client(tmp_path: Path) -> None:
    """aiomqtt and paho are for a broker of the user's (--mqtt) only: ~15 ms of every start saved."""
    code = f"""
import asyncio, sys
from concurrent.futures import ThreadPoolExecutor
from memory import Memory, MemoryConfig
from streamer.config import MqttConfig
from streamer.publish import MemoryThreadFeed, Publisher

async def main():
    executor = ThreadPoolExecutor(1)
    memory = executor.submit(Memory, MemoryConfig(db=sys.argv[1])).result()
    pub = Publisher(MqttConfig(embedded_port={free_port()}), MemoryThreadFeed(memory, executor))
    await pub.start()
    pub.publish_stream_status("door", {{"state": "live"}})
    await pub.stop()
    executor.submit(memory.close).result()
    print(sorted(m for m in sys.modules if m.split(".")[0] in ("aiomqtt", "paho")))

asyncio.run(main())
"""
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.db")], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"



async def _chatty_client(port: int, name: bytes, quiet: asyncio.Event) -> None:
    """A raw MQTT 3.1.1 client that sends PINGREQ after PINGREQ until told to be quiet."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    connect = bytes([0, 4]) + b"MQTT" + bytes([4, 2, 0, 60, 0, len(name)]) + name
    writer.write(bytes([0x10, len(connect)]) + connect)
    assert (await reader.readexactly(4))[:2] == bytes([0x20, 2])  # CONNACK
    while not quiet.is_set():
        writer.write(bytes([0xC0, 0]))
        await asyncio.sleep(0)
    writer.close()


def test_clients_sending_as_the_broker_closes_do_not_hold_the_stop() -> None:
    """amqtt 0.12 on Python 3.11 loses the cancellation of a session's reader when a packet comes in
    just as it closes the session, and then waits for ever (every time with three busy clients): the
    streamer would never exit. Its stop gives the shutdown SHUTDOWN_SECONDS and goes on."""
    port = free_port()

    async def run() -> float:
        broker = EmbeddedBroker(port)
        await broker.start()
        quiet = asyncio.Event()
        clients = [asyncio.create_task(_chatty_client(port, b"chatty%d" % i, quiet)) for i in range(3)]
        await asyncio.sleep(0.3)
        started = time.monotonic()
        await asyncio.wait_for(broker.stop(), DRAIN_SECONDS + SHUTDOWN_SECONDS + 10)
        took = time.monotonic() - started
        quiet.set()
        await asyncio.gather(*clients, return_exceptions=True)
        return took

    assert asyncio.run(run()) < DRAIN_SECONDS + SHUTDOWN_SECONDS + 1
