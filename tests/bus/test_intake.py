"""The memory service's intake process against a real NATS server: a part is acknowledged only once
the memory's process says it is committed (and the service says so only after its commit), no more
than a few parts wait uncommitted, and an intake that dies is reported and started again without
losing or repeating a message."""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import queue
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
from nats.js.errors import NotFoundError

from memory import Memory
from memory.config import MemoryConfig
from memory.database import open_database
from memory.records import FaceObservation, TrackEvidence
from streamer.bus.connection import BusConfig, connect, ensure_stream
from streamer.bus.intake import CONSUMER, PARTS_AHEAD, Part
from streamer.bus.intake_process import IntakeProcess
from streamer.bus.messages import FacesMsg, build, encode
from streamer.bus.service import SEQ, BusConsumer
from streamer.memory_worker import MemoryWorker
from support.nats import NatsServer
from support.ports import free_port

from .helpers import service, stop

pytestmark = pytest.mark.timeout(120)
HELD_SECONDS = 2.0  # a notice sent before the commit is acknowledged within milliseconds


def _frame(n: int) -> FacesMsg:
    """Camera `cam` of worker `w`, one face a frame, a new track every 5 frames, embedded at its start."""
    track, t = 1000 + (n - 1) // 5, n / 5
    obs = [FaceObservation("cam", track, t, 1e9 + t, (10, 10, 100, 120), 0.75, 25.0, "ortho")]  # scores exact in float32
    evidence = []
    if (n - 1) % 5 == 0:
        vec = np.random.default_rng(track % 2).standard_normal((1, 512)).astype(np.float32)
        evidence.append(TrackEvidence("cam", track, t, 1e9 + t, vec / np.linalg.norm(vec), np.array([25.0], np.float32),
                                      np.array([0.9], np.float32), np.array([True])))  # fmt: skip
    return FacesMsg("w/cam", n, "w", "cam", t, 1e9 + t, obs, evidence)


async def _publish(cfg: BusConfig, numbers: range) -> None:
    nc = await connect(cfg, "test")
    js = nc.jetstream()
    await ensure_stream(js, cfg)
    for n in numbers:
        await js.publish(cfg.obs_subject("cam"), encode(_frame(n)), headers={"Nats-Msg-Id": f"w/cam/{n}"})
    await nc.close()


def test_a_part_is_acknowledged_only_once_committed(tmp_path: Path) -> None:
    with NatsServer(tmp_path) as server:
        cfg = BusConfig(url=server.url)

        async def scenario() -> None:
            await _publish(cfg, range(1, 31))
            nc = await connect(cfg, "test")
            js = nc.jetstream()
            answers = await nc.subscribe(cfg.nodes_subject("w"))
            intake = IntakeProcess(cfg, part_rows=10)  # one face a message: parts of 10 messages
            assert await intake.start(1, 0) is None
            try:
                parts = [await intake.next() for _ in range(PARTS_AHEAD)]
                assert all(isinstance(p, Part) for p in parts)
                first = parts[0]
                assert isinstance(first, Part) and first.seqs == list(range(1, 11))
                built = [build(m) for m in first.messages if m is not None]  # the records, built in the memory's process
                assert [m.n for m in built] == list(range(1, 11))
                assert isinstance(built[0], FacesMsg) and built[0].observations == _frame(1).observations
                assert [e.track_id for e in built[0].evidence] == [1000]
                with pytest.raises(TimeoutError):  # no more than PARTS_AHEAD wait uncommitted
                    await asyncio.wait_for(intake.next(), 1.0)
                info = await js.consumer_info(cfg.stream, CONSUMER)
                assert info.ack_floor.stream_seq == 0, "acknowledged before the memory committed it"
                intake.committed(first.n, {"w": {1000: 7}})
                got = await answers.next_msg(timeout=10)
                assert json.loads(got.data) == {"1000": 7}, "the worker is sent its tracks' nodes"
                while (await js.consumer_info(cfg.stream, CONSUMER)).ack_floor.stream_seq < 10:
                    await asyncio.sleep(0.05)
                third = await intake.next()  # a part committed makes room for the next
                assert isinstance(third, Part) and third.seqs == list(range(21, 31))
                assert (await js.consumer_info(cfg.stream, CONSUMER)).ack_floor.stream_seq == 10, "only what is committed"
            finally:
                await intake.stop()
                await nc.close()

        asyncio.run(scenario())


def test_an_intake_that_dies_is_reported_and_started_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with NatsServer(tmp_path) as server:
        cfg = BusConfig(url=server.url)

        async def scenario() -> None:
            await _publish(cfg, range(1, 21))
            worker = MemoryWorker(Memory(MemoryConfig(db=str(tmp_path / "memory.db"))))
            consumer = BusConsumer(cfg, worker, lambda: None)
            feeding = asyncio.create_task(consumer.run())
            try:
                while consumer.stats.applied < 20:
                    assert not feeding.done(), feeding
                    await asyncio.sleep(0.05)
                (intake,) = [p for p in multiprocessing.active_children() if p.name == "streamer-intake"]
                intake.kill()
                await _publish(cfg, range(21, 41))
                while consumer.stats.applied < 40:
                    assert not feeding.done(), feeding
                    await asyncio.sleep(0.05)
            finally:
                feeding.cancel()
                await asyncio.gather(feeding, return_exceptions=True)
            assert consumer.stats.intake_restarts == 1
            assert consumer.stats.duplicates == 0 and consumer.stats.observations == 40
            assert await worker.call(Memory.bookmark, SEQ) == "40"
            assert not [p for p in multiprocessing.active_children() if p.name == "streamer-intake"], "stopped with the service"
            await asyncio.to_thread(worker.close)

        with caplog.at_level(logging.ERROR, logger="streamer.bus.service"):
            asyncio.run(scenario())
        assert "the intake process exited with code -9" in caplog.text


def test_the_service_has_a_message_acknowledged_only_once_committed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The service's side of the first test: each commit of the memory waits until the test has
    watched the consumer for HELD_SECONDS, nothing is acknowledged meanwhile, and once the message is
    acknowledged another connection sees its commit."""
    holding = threading.Event()  # on once the service is up: its start-up commits pass
    held: queue.Queue[threading.Event] = queue.Queue()
    flush = Memory.flush

    def held_flush(memory: Memory) -> None:
        if holding.is_set():
            go = threading.Event()
            held.put(go)
            go.wait(60)
        flush(memory)

    monkeypatch.setattr(Memory, "flush", held_flush)
    db = tmp_path / "memory.db"
    with NatsServer(tmp_path) as server:
        cfg = BusConfig(url=server.url)

        async def acknowledged(js: Any) -> int:
            return int((await js.consumer_info(cfg.stream, CONSUMER)).ack_floor.stream_seq)

        async def scenario() -> None:
            worker = MemoryWorker(Memory(MemoryConfig(db=str(db))))
            consumer = BusConsumer(cfg, worker, lambda: None)
            feeding = asyncio.create_task(consumer.run())
            nc = await connect(cfg, "test")
            js = nc.jetstream()
            try:
                while True:  # until the intake has made its consumer: the service is up
                    assert not feeding.done(), feeding
                    try:
                        await acknowledged(js)
                        break
                    except NotFoundError:
                        await asyncio.sleep(0.05)
                holding.set()
                await _publish(cfg, range(1, 2))
                while await acknowledged(js) < 1:
                    assert not feeding.done(), feeding
                    try:
                        go = held.get_nowait()
                    except queue.Empty:
                        await asyncio.sleep(0.05)
                        continue
                    watched = time.monotonic()
                    while time.monotonic() - watched < HELD_SECONDS:
                        assert await acknowledged(js) == 0, "acknowledged while the memory's commit waits"
                        await asyncio.sleep(0.05)
                    go.set()
                reader = open_database(str(db), read_only=True)
                committed = reader.scalar(f"SELECT value FROM meta WHERE key = 'bookmark.{SEQ}'")
                reader.close()
                assert committed == "1", "acknowledged before the memory committed it"
            finally:
                holding.clear()
                while not held.empty():
                    held.get_nowait().set()
                feeding.cancel()
                await asyncio.gather(feeding, return_exceptions=True)
                await nc.close()
            await asyncio.to_thread(worker.close)

        asyncio.run(scenario())


def test_the_intake_leaves_with_a_killed_service_and_with_a_stopped_one(tmp_path: Path) -> None:
    with NatsServer(tmp_path) as server:
        away = f"nats://127.0.0.1:{free_port()}"  # an intake waiting for a bus that is not there
        for i, (url, sig) in enumerate([(server.url, signal.SIGKILL), (server.url, signal.SIGTERM), (away, signal.SIGTERM)]):
            log = tmp_path / f"service-{i}.log"
            svc = service(url, tmp_path / "memory.db", log)
            try:
                deadline = time.monotonic() + 60
                while not (intakes := _intakes(svc.pid)):
                    assert time.monotonic() < deadline and svc.poll() is None, log.read_text()[-2000:]
                    time.sleep(0.05)
                (intake,) = intakes
                code = stop(svc, sig)
            finally:
                stop(svc)
            intake.wait(30)  # psutil.TimeoutExpired if it stayed behind
            assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 0), log.read_text()[-2000:]


def _intakes(pid: int) -> list[psutil.Process]:
    """The service's spawned children but multiprocessing's resource tracker."""
    return [p for p in psutil.Process(pid).children() if "spawn_main" in " ".join(p.cmdline())]
