"""Voices on the feed, as a subscriber sees them from a real `streamer run` on real recorded speech:
one `speech` event per turn, in order, with the voice identity and the text the database holds."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from memory import Memory, MemoryConfig
from streamer.demo.speech import MEDIA
from support.mosquitto import Mosquitto

from .helpers import PREFIX, events, subscribed

pytestmark = pytest.mark.timeout(240)

ROOT = Path(__file__).resolve().parents[2]


def test_speech_events_arrive_in_order_with_the_stored_voices(tmp_path: Path) -> None:
    db = tmp_path / "memory.db"
    wav = MEDIA / "conversation.wav"

    async def scenario() -> list[dict]:
        with Mosquitto(tmp_path / "broker") as broker:
            async with subscribed(broker.port) as sub:
                cmd = [sys.executable, "-m", "streamer", "run", f"phone={wav}", "--db", str(db),
                       "--mqtt", broker.url, "--mqtt-prefix", PREFIX, "-q"]  # fmt: skip
                proc = await asyncio.to_thread(subprocess.run, cmd, cwd=ROOT, capture_output=True, text=True, timeout=200)
                assert proc.returncode == 0, proc.stderr
                received = await sub.barrier()
                nodes = [m for m in received if m.topic.startswith("memory/nodes/") and m.payload]
                assert nodes and all(m.json()["kind"] == "voice" for m in nodes)
                return events(received)

    got = asyncio.run(scenario())
    speech = [e for e in got if e["type"] == "speech"]
    assert len(speech) >= 4
    assert [e["seq"] for e in got] == sorted(e["seq"] for e in got)
    assert [e["t_start"] for e in speech] == sorted(e["t_start"] for e in speech)  # one stream: in spoken order
    assert all(e["stream"] == "phone" for e in speech)

    merged_into = {old: e["into"] for e in got if e["type"] == "node.merged" for old in e["from"]}

    def final(node: int | None) -> int | None:
        while node in merged_into:
            node = merged_into[node]
        return node

    with Memory(MemoryConfig(db=str(db))) as memory:
        stored = {(round(t["t_start"], 3), t["t_end"]): t for t in memory.export_voices()}
    assert len(stored) == len(speech)
    for e in speech:
        row = stored[(round(e["t_start"], 3), e["t_end"])]
        assert final(e["node"]) == row["node"] and e["text"] == row["text"]
    assert len({row["node"] for row in stored.values()} - {None}) == 2  # two real speakers
    assert "chicago" in " ".join(e["text"] or "" for e in speech).lower()
