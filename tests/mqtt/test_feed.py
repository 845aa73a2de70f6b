"""The feed against a real mosquitto and a real Memory: status, events, identities, restarts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from streamer.publish import Publisher
from streamer.publish.payloads import source_status
from streamer.sources.state import SourceState, SourceStats
from support.mosquitto import Mosquitto

from .helpers import MemoryRig, events, mqtt_config, publishing, seqs, subscribed

pytestmark = pytest.mark.timeout(90)


def test_status_is_retained_online_then_offline(broker: Mosquitto, rig: MemoryRig) -> None:
    async def run() -> None:
        async with publishing(mqtt_config(broker.url), rig):
            async with subscribed(broker.port) as sub:
                got = await sub.wait_for("retained online", lambda ms: bool(sub.retained("status")))
                assert [m.payload for m in got if m.topic == "status"] == [b"online"]
        async with subscribed(broker.port) as sub:
            await sub.barrier()
            assert [m.payload for m in sub.retained("status")] == [b"offline"]

    asyncio.run(run())


def test_events_in_order_and_identities_retained_and_cleared(broker: Mosquitto, rig: MemoryRig) -> None:
    async def run() -> None:
        async with subscribed(broker.port) as live, publishing(mqtt_config(broker.url), rig) as pub:
            alice, other = await rig.new_face("door"), await rig.new_face("hall")
            await rig.label(alice, "Alice")
            await rig.merge(alice, other)
            pub.notify()
            got = await live.wait_for("the merge event", lambda ms: any(e["type"] == "node.merged" for e in events(ms)))
            assert seqs(got) == list(range(1, len(seqs(got)) + 1))
            merged = next(e for e in events(got) if e["type"] == "node.merged")
            assert merged["into"] == alice and merged["from"] == [other]
            labelled = [e for e in events(got) if e["type"] == "node.labelled"]
            assert [(e["node"], e["label"]) for e in labelled] == [(alice, "Alice")]
            # The merged-away identity's retained topic is cleared after the merge event.
            cleared = await live.wait_for(
                "the cleared topic", lambda ms: any(m.topic == f"memory/nodes/{other}" and not m.payload for m in ms)
            )
            merge_at = next(i for i, m in enumerate(cleared) if m.topic == "memory/events" and m.json()["seq"] == merged["seq"])
            clear_at = next(i for i, m in enumerate(cleared) if m.topic == f"memory/nodes/{other}" and not m.payload)
            assert merge_at < clear_at

            async with subscribed(broker.port) as fresh:  # a newcomer sees no ghost
                await fresh.barrier()
                nodes = {m.topic: m.json() for m in fresh.messages if m.topic.startswith("memory/nodes/")}
                assert list(nodes) == [f"memory/nodes/{alice}"]
                assert nodes[f"memory/nodes/{alice}"]["label"] == "Alice"
                assert all(m.retain for m in fresh.messages if m.topic.startswith("memory/nodes/"))

    asyncio.run(run())


def test_no_event_lost_across_a_broker_restart(tmp_path: Path, rig: MemoryRig) -> None:
    """Memory keeps producing while the broker is down for 3 s; every seq arrives, in order."""
    with Mosquitto(tmp_path / "broker", persistence=True) as broker:

        async def produce(pub: Publisher) -> None:
            node = await rig.new_face()
            for i in range(200):
                await rig.label(node, f"name {i}")
                pub.notify()
                await asyncio.sleep(0.01)

        async def run() -> tuple[list[int], int]:
            async with subscribed(broker.port, session="restart-test") as sub, publishing(
                mqtt_config(broker.url), rig
            ) as pub:
                producer = asyncio.create_task(produce(pub))
                await sub.wait_for("some events", lambda ms: len(seqs(ms)) >= 20)
                await asyncio.to_thread(broker.stop)
                await asyncio.sleep(3)
                await asyncio.to_thread(broker.start)
                await producer
                total = await rig.last_seq()
                got = await sub.wait_for("every event", lambda ms: set(seqs(ms)) >= set(range(1, total + 1)))
                await sub.barrier()
                assert await rig.feed().published_seq() == total
                return seqs(got), total

        received, total = asyncio.run(run())
    first_seen = list(dict.fromkeys(received))  # duplicates are allowed (at least once), gaps and reordering are not
    assert first_seen == list(range(1, total + 1))


def test_a_restarted_streamer_resumes_after_the_last_acknowledged_event(broker: Mosquitto, rig: MemoryRig) -> None:
    async def run() -> None:
        async with subscribed(broker.port) as sub:
            async with publishing(mqtt_config(broker.url), rig) as pub:
                node = await rig.new_face()
                await rig.label(node, "one")
                pub.notify()
                first = await rig.last_seq()
                await sub.wait_for("the first events", lambda ms: first in seqs(ms))
            await rig.label(node, "two")  # written while no publisher runs
            await rig.label(node, "three")
            last = await rig.last_seq()
            async with publishing(mqtt_config(broker.url), rig):
                await sub.wait_for("the later events", lambda ms: last in seqs(ms))
                got = await sub.barrier()
                assert seqs(got) == list(range(1, last + 1))  # none twice: the cursor survived the restart

    asyncio.run(run())


def test_retained_state_is_republished_after_the_broker_lost_it(broker: Mosquitto, rig: MemoryRig) -> None:
    async def run() -> None:
        async with publishing(mqtt_config(broker.url), rig) as pub:
            node = await rig.new_face()
            pub.publish_stream_status("door", {"state": "live"})
            await asyncio.to_thread(broker.restart)  # no persistence: the retained messages are gone
            async with subscribed(broker.port) as sub:
                await sub.wait_for(
                    "the node and stream topics again",
                    lambda ms: {f"memory/nodes/{node}", "streams/door/status", "status"} <= {m.topic for m in ms},
                )
            async with subscribed(broker.port) as fresh:
                await fresh.barrier()
                assert {m.topic for m in fresh.messages if m.retain} >= {f"memory/nodes/{node}", "streams/door/status"}
                assert [m.payload for m in fresh.retained("status")] == [b"online"]

    asyncio.run(run())


def test_stream_status_latest_wins_and_faces_flow(broker: Mosquitto, rig: MemoryRig) -> None:
    async def run() -> None:
        async with subscribed(broker.port) as sub, publishing(mqtt_config(broker.url), rig) as pub:
            await sub.wait_for("online", lambda ms: any(m.topic == "status" for m in ms))
            for state in (SourceState.CONNECTING, SourceState.LIVE):
                pub.publish_stream_status("door", source_status(SourceStats(state=state, fps_in=25.0, fps_sampled=5.0)))
            pub.publish_faces("door", [{"track": 7, "bbox": [10, 10, 60, 80], "node": None, "det_score": 0.9}])
            got = await sub.wait_for("a faces message", lambda ms: any(m.topic == "streams/door/faces" for m in ms))
            faces = next(m.json() for m in got if m.topic == "streams/door/faces")
            assert faces["faces"][0]["track"] == 7 and faces["stream"] == "door"
            await sub.wait_for(
                "the live status",
                lambda ms: any(m.topic == "streams/door/status" and m.json()["state"] == "live" for m in ms),
            )
        async with subscribed(broker.port) as fresh:
            await fresh.barrier()
            assert [m.json()["state"] for m in fresh.retained("streams/door/status")] == ["live"]

    asyncio.run(run())


def test_crops_only_when_asked(broker: Mosquitto, rig: MemoryRig) -> None:
    async def run() -> None:
        async with subscribed(broker.port) as sub, publishing(mqtt_config(broker.url), rig) as pub:
            node = await rig.new_face()
            pub.notify()
            got = await sub.wait_for("the node", lambda ms: any(m.topic == f"memory/nodes/{node}" for m in ms))
            assert "crop_jpeg" not in next(m.json() for m in got if m.topic == f"memory/nodes/{node}")
        async with subscribed(broker.port) as sub, publishing(mqtt_config(broker.url), rig, crops=True):
            got = await sub.wait_for(
                "the node with its crop",
                lambda ms: any(m.topic == f"memory/nodes/{node}" and b"crop_jpeg" in m.payload for m in ms),
            )
            payload = next(m.json() for m in got if m.topic == f"memory/nodes/{node}" and b"crop_jpeg" in m.payload)
            assert payload["crop_jpeg"] == await rig.crop_b64(node)

    asyncio.run(run())
