"""Characters on the MQTT feed, against a real mosquitto and a real Memory: character.updated events
and the retained character state, cleared when the character dissolves (payloads schema-checked)."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from .helpers import MemoryRig, events, mqtt_config, publishing, subscribed

from memory import SpeechTurn
from support.mosquitto import Mosquitto

pytestmark = pytest.mark.timeout(90)


def _new_voice(rig: MemoryRig) -> int:
    """A voice confirmed by one long turn."""
    m = rig.memory
    embedding = rig.rng.standard_normal(192).astype(np.float32)
    turn = SpeechTurn("door", m.new_track_id(), 0.0, 8.0, time.time(), embedding / np.linalg.norm(embedding), True)
    node = m.add_turn(turn)
    m.flush()
    assert node is not None
    return node


def _link(rig: MemoryRig, face: int, voice: int, tie: bool) -> None:
    (rig.memory.link if tie else rig.memory.unlink)(face, voice)
    rig.memory.flush()


def test_character_events_and_retained_state(broker: Mosquitto, rig: MemoryRig) -> None:
    async def run() -> None:
        async with subscribed(broker.port) as live, publishing(mqtt_config(broker.url), rig) as pub:
            face = await rig.new_face("door")
            voice = await rig.call(_new_voice, rig)
            await rig.label(face, "Alice")
            await rig.call(_link, rig, face, voice, True)
            pub.notify()
            topic = "memory/characters/1"
            got = await live.wait_for("the event and the character state", lambda ms: any(m.topic == topic and m.payload for m in ms)
                                      and any(e["type"] == "character.updated" for e in events(ms)))  # fmt: skip
            (updated,) = [e for e in events(got) if e["type"] == "character.updated"]
            assert (updated["character"], updated["faces"], updated["voices"], updated["label"]) == (1, [face], [voice], "Alice")
            state = next(m for m in got if m.topic == topic).json()
            assert (state["id"], state["faces"], state["voices"], state["label"], state["streams"]) == (1, [face], [voice], "Alice", ["door"])

            async with subscribed(broker.port) as fresh:  # a newcomer gets the character at once
                await fresh.barrier()
                assert [m.json()["id"] for m in fresh.retained(topic)] == [1]

            await rig.call(_link, rig, face, voice, False)
            pub.notify()
            await live.wait_for("the cleared character", lambda ms: any(m.topic == topic and not m.payload for m in ms))
            dissolved = [e for e in events(live.messages) if e["type"] == "character.updated"][-1]
            assert (dissolved["faces"], dissolved["voices"]) == ([], [])
            async with subscribed(broker.port) as fresh:
                await fresh.barrier()
                assert fresh.retained(topic) == []

    asyncio.run(run())
