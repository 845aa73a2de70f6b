"""Home Assistant MQTT discovery against a real mosquitto and a real Memory: the configs Home
Assistant reads (with its required keys), the states, and removal when a person is merged or forgotten."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import numpy as np
import pytest

from memory.records import FaceObservation, TrackEvidence
from streamer.publish.homeassistant import HomeAssistant
from streamer.publish.topics import Topics
from support.mosquitto import Mosquitto

from .helpers import CROP_JPEG, DIM, PREFIX, MemoryRig, Received, mqtt_config, publishing, subscribed

pytestmark = pytest.mark.timeout(90)

DISCOVERY = f"{PREFIX}/ha"  # under the test subscriber's prefix, so it receives the configs too
NODE_ID = HomeAssistant(Topics(PREFIX), DISCOVERY).node_id
REQUIRED = {"name", "unique_id", "state_topic", "availability_topic", "device", "value_template"}


def present_face(rig: MemoryRig, stream: str) -> int:
    """A new person, confirmed (seen over 0.6 s, as the streamer would) and present in `stream`."""
    m = rig.memory
    track = m.new_track_id()
    base = rig.rng.standard_normal(DIM).astype(np.float32)
    now = time.time()
    for i in range(3):
        emb = base + 0.05 * rig.rng.standard_normal((1, DIM)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        m.record_faces([FaceObservation(stream, track, 0.3 * i, now + 0.3 * i, (10, 10, 90, 110), 0.9, 25.0, "ortho")])
        m.identify_track(TrackEvidence(stream, track, 0.3 * i, now + 0.3 * i, emb, np.full(1, 25.0, np.float32),
                                       np.full(1, 0.9, np.float32), np.ones(1, bool), CROP_JPEG, 25.0))  # fmt: skip
    m.flush()
    node = m.node_of_track(track)
    assert node is not None and m.node(node).status.value == "confirmed"
    return int(node)


def latest(messages: list[Received], topic: str) -> Received | None:
    found = [m for m in messages if m.topic == topic]
    return found[-1] if found else None


def config(kind: str, object_id: str) -> str:
    return f"ha/{kind}/{NODE_ID}/{object_id}/config"


def has(topic: str, check: Any = bool) -> Any:
    return lambda ms: (m := latest(ms, topic)) is not None and check(m)


def test_discovery_states_and_removal(broker: Mosquitto, rig: MemoryRig) -> None:
    async def run() -> None:
        cfg = mqtt_config(broker.url, homeassistant=True, homeassistant_prefix=DISCOVERY)
        async with subscribed(broker.port) as sub, publishing(cfg, rig) as pub:
            pub.publish_stream_status("door", {"state": "live"})
            await sub.wait_for("the door camera's sensor", has(config("sensor", "camera_door_people")))
            camera = latest(sub.messages, config("sensor", "camera_door_people")).json()  # type: ignore[union-attr]
            assert REQUIRED <= camera.keys() and camera["unique_id"] == f"{NODE_ID}_camera_door_people"
            assert camera["device"]["identifiers"] and camera["device"]["name"] == "Camera door"
            assert camera["availability_topic"] == f"{PREFIX}/status" and camera["unit_of_measurement"] == "people"
            state_topic = camera["state_topic"].removeprefix(PREFIX + "/")
            await sub.wait_for("nobody at the door", has(state_topic, lambda m: m.json()["count"] == 0))

            alice = await rig.call(present_face, rig, "door")
            await rig.label(alice, "Alice")
            stranger = await rig.call(present_face, rig, "door")
            carol = await rig.call(present_face, rig, "hall")
            await rig.label(carol, "Carol")
            pub.notify()
            got = await sub.wait_for("two people at the door", has(state_topic, lambda m: m.json()["count"] == 2))
            assert latest(got, state_topic).json()["names"] == sorted(["Alice", f"<face_{stranger}>"])  # type: ignore[union-attr]
            for key, name in ((f"face_{alice}", "Alice"), (f"face_{carol}", "Carol")):
                await sub.wait_for(f"{name}'s entities", has(config("sensor", f"{key}_last_seen")))
                presence = latest(sub.messages, config("binary_sensor", f"{key}_presence")).json()  # type: ignore[union-attr]
                seen = latest(sub.messages, config("sensor", f"{key}_last_seen")).json()  # type: ignore[union-attr]
                for entity in (presence, seen):
                    assert REQUIRED <= entity.keys() and entity["device"]["name"] == name
                    assert entity["device"]["identifiers"] == [f"{NODE_ID}_{key}"]
                assert presence["device_class"] == "presence" and (presence["payload_on"], presence["payload_off"]) == ("ON", "OFF")
                assert seen["device_class"] == "timestamp" and presence["unique_id"] != seen["unique_id"]
                state = latest(sub.messages, presence["state_topic"].removeprefix(PREFIX + "/"))
                assert state is not None and state.json()["present"] == "ON"
                assert datetime.fromisoformat(state.json()["last_seen"]).tzinfo is not None
            assert latest(sub.messages, config("binary_sensor", f"face_{stranger}_presence")) is None  # no label, no entity

            await rig.merge(alice, carol)  # Carol was Alice all along: her entities go
            pub.notify()
            await sub.wait_for("Carol's entities removed", has(config("binary_sensor", f"face_{carol}_presence"), lambda m: m.payload == b""))
            await sub.wait_for("Carol's last seen removed", has(config("sensor", f"face_{carol}_last_seen"), lambda m: m.payload == b""))

            await rig.call(rig.memory.forget, str(alice))
            pub.notify()
            await sub.wait_for("Alice's entities removed", has(config("binary_sensor", f"face_{alice}_presence"), lambda m: m.payload == b""))
            got = await sub.wait_for("Alice gone from the door", has(state_topic, lambda m: m.json()["count"] == 1))
            assert latest(got, state_topic).json()["names"] == [f"<face_{stranger}>"]  # type: ignore[union-attr]
            # the feed itself: node.forgotten (checked against its schema on arrival), her retained topic cleared
            forgotten = [m.json() for m in got if m.topic == "memory/events" and m.json()["type"] == "node.forgotten"]
            assert [(e["nodes"], e["former"]) for e in forgotten] == [([alice], [carol])]
            await sub.wait_for("Alice's node topic cleared", has(f"memory/nodes/{alice}", lambda m: m.payload == b""))

        async with subscribed(broker.port) as fresh:  # what Home Assistant finds when it (re)starts
            retained = [m for m in await fresh.barrier() if m.retain]
            assert {m.topic for m in retained if m.topic.startswith("ha/")} == {config("sensor", "camera_door_people"),
                                                                                 config("sensor", "camera_hall_people")}  # fmt: skip
            assert {m.topic for m in retained if m.topic.startswith("memory/nodes/")} == {f"memory/nodes/{stranger}"}

    asyncio.run(run())


def test_people_present_before_the_connection_are_announced(broker: Mosquitto, rig: MemoryRig) -> None:
    async def run() -> None:
        bob = await rig.call(present_face, rig, "door")
        await rig.label(bob, "Bob")
        cfg = mqtt_config(broker.url, homeassistant=True, homeassistant_prefix=DISCOVERY)
        async with subscribed(broker.port) as sub, publishing(cfg, rig):
            await sub.wait_for("Bob's entities", has(config("binary_sensor", f"face_{bob}_presence")))
            got = await sub.wait_for("Bob's state", has(f"homeassistant/people/face_{bob}"))
            state = latest(got, f"homeassistant/people/face_{bob}")
            assert state is not None and state.json()["label"] == "Bob" and state.json()["last_seen"] is not None

    asyncio.run(run())


def test_off_by_default(broker: Mosquitto, rig: MemoryRig) -> None:
    async def run() -> None:
        async with subscribed(broker.port) as sub, publishing(mqtt_config(broker.url, homeassistant_prefix=DISCOVERY), rig) as pub:
            bob = await rig.call(present_face, rig, "door")
            await rig.label(bob, "Bob")
            pub.publish_stream_status("door", {"state": "live"})
            pub.notify()
            await sub.wait_for("the stream status", has("streams/door/status"))
            await sub.wait_for("Bob's label", lambda ms: any(m.topic == "memory/events" and m.json()["type"] == "node.labelled" for m in ms))
            assert not [m for m in await sub.barrier() if m.topic.startswith(("ha/", "homeassistant/"))]

    asyncio.run(run())
