"""Voices over a real nats-server: a worker with voices on analyses two real people under the bundled
recorded conversation; the memory service ends up with the two voices and the turns with their words.
Both processes serve their bus health as Prometheus metrics."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from memory import Memory
from memory.config import MemoryConfig
from streamer.demo.cast import Person
from streamer.demo.compose import Appearance, render_video
from streamer.demo.speech import load_conversation
from support.nats import NatsServer
from support.ports import free_port
from support.speech import speaker_of

from .helpers import last_seq, scrape, scrape_until, service, stop, wait_applied, worker

pytestmark = pytest.mark.timeout(180)

E, F = 4, 5


def test_speech_turns_voices_and_texts_reach_the_memory_service(cast: list[Person], media_dir: Path, tmp_path: Path) -> None:
    conv = load_conversation()
    video = media_dir / "bus_conversation.mp4"
    render_video(video, cast, [Appearance(E, 0, conv.duration, 0.3), Appearance(F, 0, conv.duration, 0.7)],
                 audio=conv.samples, audio_rate=conv.rate)  # fmt: skip
    db, logs = tmp_path / "memory.db", [tmp_path / "service.log", tmp_path / "worker.log"]
    service_port, worker_port = free_port(), free_port()
    with NatsServer(tmp_path) as server:
        svc = service(server.url, db, logs[0], extra=("--metrics-port", str(service_port)))
        try:
            cam = worker(server.url, f"talk={video}", log=logs[1], voices=True, extra=("--metrics-port", str(worker_port)))
            seen: dict[str, float] = {}
            while seen.get("streamer_bus_published_total", 0) == 0:  # the worker's health, while it runs
                assert cam.poll() is None, f"the worker ended before its metrics were read: {logs[1].read_text()[-2000:]}"
                seen = scrape(worker_port)
                time.sleep(0.2)
            assert seen["streamer_bus_dropped_total"] == 0 and seen["streamer_bus_buffered"] >= 0
            assert cam.wait(150) == 0, logs[1].read_text()[-2000:]
            total = last_seq(server.url)
            wait_applied(db, total, svc)
            health = scrape_until(service_port, lambda h: h.get("streamer_bus_applied_total", 0) >= total)
            assert health["streamer_bus_applied_total"] == total, "every message applied once"
            assert health["streamer_bus_malformed_total"] == health["streamer_bus_duplicates_total"] == 0
            assert health["streamer_bus_consumer_lag"] == 0 and health["streamer_bus_intake_restarts_total"] == 0
            assert health["streamer_bus_applied_observations_total"] > 0
            # each message's wait from the bus to its commit is counted once, none of them a minute long
            assert health["streamer_bus_commit_latency_seconds_count"] == total
            assert 0 < health["streamer_bus_commit_latency_seconds_sum"] < 60 * total
        finally:
            assert stop(svc) == 0, logs[0].read_text()[-2000:]
    with Memory(MemoryConfig(db=str(db))) as memory:
        turns = list(memory.export_voices())
        voices = [n["id"] for n in memory.export_nodes() if n["kind"] == "voice"]
    # speech time per (reference speaker, voice node): one voice each, none shared
    time_of: defaultdict[str, Counter[int | None]] = defaultdict(Counter)
    for turn in turns:
        speaker, share = speaker_of(turn, conv.turns)
        if speaker is not None and share >= 0.7:
            time_of[speaker][turn["node"]] += turn["t_end"] - turn["t_start"]
    assert set(time_of) == set(conv.speakers)
    node = {speaker: counts.most_common(1)[0][0] for speaker, counts in time_of.items()}
    assert None not in node.values() and len(set(node.values())) == 2, f"got {dict(time_of)}"
    assert set(voices) == set(node.values()), "no voice identity beyond the two speakers"
    said = " ".join(t["text"] or "" for t in turns).lower()
    assert "chicago" in said and "jersey" in said, said
    assert sum(t["text"] is not None for t in turns) >= 0.8 * len(turns), "most turns carry their words"
