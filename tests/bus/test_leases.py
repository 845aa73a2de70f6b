"""Camera leases against a real nats-server: a fair share each, a dead worker's cameras taken over,
a changed catalog followed; the cameras themselves are stand-ins that record starts and stops."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import nats
import pytest
from nats.js.errors import KeyNotFoundError

from streamer.bus.catalog import BucketCatalog, FixedCatalog
from streamer.bus.connection import BusConfig, bucket
from streamer.bus.leases import CameraLeases, Holder, fair_share
from streamer.config import CameraConfig
from streamer.errors import ConfigError
from support.nats import NatsServer

pytestmark = pytest.mark.timeout(60)

TTL = 1.0


class Worker:
    """A worker's lease loop with cameras that only record being started and stopped."""

    def __init__(self, nc: nats.NATS, cfg: BusConfig, name: str, catalog: FixedCatalog | BucketCatalog) -> None:
        self.running: set[str] = set()
        self.starts = 0
        self.leases = CameraLeases(nc.jetstream(), cfg, name, catalog, self._start, self._stop)
        self.task = asyncio.create_task(self.leases.run())

    async def _start(self, cam: CameraConfig) -> bool:
        assert cam.name not in self.running
        self.running.add(cam.name)
        self.starts += 1
        return True

    async def _stop(self, name: str) -> None:
        self.running.remove(name)

    async def kill(self) -> None:
        """Gone without a word, like SIGKILL: nothing is given back."""
        self.leases.stop()
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    async def close(self) -> None:
        await self.kill()
        for name in list(self.running):
            await self._stop(name)
        await self.leases.close()


async def until(check: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def reconnecting(server: NatsServer) -> nats.NATS:
    """A client that rides out the server going away and coming back, as a worker's does."""
    return await nats.connect(server.url, reconnect_time_wait=0.2, max_reconnect_attempts=-1)


def cams(*names: str) -> list[CameraConfig]:
    return [CameraConfig(name=n, url=f"rtsp://127.0.0.1:1/{n}") for n in names]


def test_fair_share() -> None:
    assert [fair_share(5, w) for w in (0, 1, 2, 3, 5, 8)] == [5, 5, 3, 2, 1, 1]


def test_files_are_not_shared() -> None:
    with pytest.raises(ConfigError, match="shared cameras must be live.*: door"):
        FixedCatalog([CameraConfig(name="door", url="door.mp4")])


def test_workers_share_the_cameras_and_take_over_from_a_dead_one(tmp_path: Path) -> None:
    async def scenario() -> None:
        with NatsServer(tmp_path) as server:
            nc = await nats.connect(server.url)
            cfg = BusConfig(server.url, lease_ttl=TTL)
            catalog = FixedCatalog(cams("a", "b", "c", "d"))
            one = Worker(nc, cfg, "one", catalog)
            await until(lambda: one.running == {"a", "b", "c", "d"}, 5, "the only worker to take every camera")
            two = Worker(nc, cfg, "two", catalog)
            await until(lambda: len(one.running) == 2 and len(two.running) == 2, 10, "two cameras each")
            assert one.running.isdisjoint(two.running)
            kv = await bucket(nc.jetstream(), "streamer_leases")
            for name in two.running:
                holder = Holder.decode((await kv.get(name)).value)
                assert holder is not None and holder.worker == "two"
            await one.kill()
            took = await until(lambda: len(two.running) == 4, 10, "the dead worker's cameras taken over")
            assert took >= TTL * 0.8, "taken before the lease's time to live was over"
            assert two.leases.takeovers == 2
            three = Worker(nc, cfg, "three", catalog)  # joins, then leaves cleanly: handed over without waiting
            await until(lambda: len(three.running) == 2 and len(two.running) == 2, 10, "a newcomer's fair share")
            left = set(three.running)
            await three.close()
            for name in left:  # a clean stop frees its leases at once: nobody waits for them to expire
                with pytest.raises(KeyNotFoundError):
                    await kv.get(name)
            with pytest.raises(KeyNotFoundError):
                await (await bucket(nc.jetstream(), "streamer_workers")).get("three")
            await until(lambda: len(two.running) == 4, 10, "a leaving worker's cameras")
            await two.close()
            await nc.close()

    asyncio.run(scenario())


def test_a_dead_workers_heartbeat_found_again_takes_no_camera_away(tmp_path: Path) -> None:
    """After rounds that could not read the bus, the survivor of a takeover finds the dead worker's
    heartbeat again (the bucket keeps it for a minute): it cannot tell it from a live one yet, but a
    camera given back to it would go unanalysed until that heartbeat expired."""

    async def scenario() -> None:
        with NatsServer(tmp_path) as server:
            nc = await reconnecting(server)
            cfg = BusConfig(server.url, lease_ttl=TTL)
            catalog = FixedCatalog(cams("a", "b"))
            one = Worker(nc, cfg, "one", catalog)
            await until(lambda: len(one.running) == 2, 5, "the first worker's cameras")
            two = Worker(nc, cfg, "two", catalog)
            await until(lambda: len(one.running) == len(two.running) == 1, 10, "a camera each")
            await one.kill()
            await until(lambda: len(two.running) == 2, 10, "the dead worker's camera taken over")
            server.kill()
            await until(lambda: two.leases.failed_rounds >= 1, 20, "a failed round")
            server.start()
            await until(lambda: two.leases.failed_rounds == 0, 20, "rounds that read the bus again")
            await asyncio.sleep(3 * TTL)  # longer than the dead heartbeat, found again, looks alive
            assert two.running == {"a", "b"} and two.starts == 2, "a camera was given back and taken again"
            assert two.leases.live_workers == 1 and two.leases.takeovers == 1
            await asyncio.wait_for(two.close(), 20)
            await asyncio.wait_for(nc.close(), 20)

    asyncio.run(scenario())


def test_a_lease_rewritten_by_another_is_left_to_it_at_the_close(tmp_path: Path) -> None:
    """A clean stop frees only the leases still as this worker last wrote them: one rewritten since
    (another worker's now, or a renewal whose reply was lost to a reconnect) stays, and the stop ends."""

    async def scenario() -> None:
        with NatsServer(tmp_path) as server:
            nc = await reconnecting(server)
            cfg = BusConfig(server.url, lease_ttl=TTL)
            one = Worker(nc, cfg, "one", FixedCatalog(cams("a", "b")))
            await until(lambda: len(one.running) == 2, 5, "the worker's cameras")
            await one.kill()
            leases = await nc.jetstream().key_value(f"{cfg.prefix}_leases")
            theirs = await leases.put("a", b'{"worker": "two"}')
            await asyncio.wait_for(one.leases.close(), 20)
            assert (await leases.get("a")).revision == theirs
            with pytest.raises(KeyNotFoundError):
                await leases.get("b")
            await asyncio.wait_for(nc.close(), 20)

    asyncio.run(scenario())


def test_cameras_from_the_bucket_follow_its_changes(tmp_path: Path) -> None:
    async def scenario() -> None:
        with NatsServer(tmp_path) as server:
            nc = await nats.connect(server.url)
            js = nc.jetstream()
            cameras = await bucket(js, "streamer_cameras")
            await cameras.put("door", json.dumps({"url": "rtsp://127.0.0.1:1/door"}).encode())
            await cameras.put("film", json.dumps({"url": "film.mp4"}).encode())  # not live: skipped
            await cameras.put("junk", b"{not json")
            catalog = BucketCatalog(cameras)
            catalog.refresh_seconds = 0.0
            w = Worker(nc, BusConfig(server.url, lease_ttl=TTL), "w", catalog)
            await until(lambda: w.running == {"door"}, 5, "the bucket's live camera")
            await cameras.put("hall", json.dumps({"url": "rtsp://127.0.0.1:1/hall", "fps": 2}).encode())
            await until(lambda: w.running == {"door", "hall"}, 5, "a camera added to the bucket")
            await cameras.delete("door")
            await until(lambda: w.running == {"hall"}, 5, "a camera removed from the bucket")
            assert w.leases.owned["hall"][1].fps == 2
            await w.close()
            await nc.close()

    asyncio.run(scenario())


def test_a_restarted_bus_moves_no_camera(tmp_path: Path) -> None:
    """Nobody could watch anybody while the server was away: every lease stays with its owner."""

    async def scenario() -> None:
        with NatsServer(tmp_path) as server:
            nc = await reconnecting(server)
            cfg = BusConfig(server.url, lease_ttl=TTL)
            catalog = FixedCatalog(cams("a", "b", "c", "d"))
            one = Worker(nc, cfg, "one", catalog)
            await until(lambda: len(one.running) == 4, 5, "the first worker's cameras")
            two = Worker(nc, cfg, "two", catalog)
            await until(lambda: len(one.running) == len(two.running) == 2, 10, "two cameras each")
            before = (set(one.running), set(two.running))
            server.kill()
            await asyncio.sleep(3 * TTL)  # longer than a lease lives
            assert (one.running, two.running) == before, "cameras stay where they are while the bus is away"
            server.start()
            await until(lambda: nc.is_connected, 10, "the reconnection")
            revisions = {n: r for n, (r, _) in one.leases.owned.items()}
            await until(lambda: all(one.leases.owned[n][0] > r for n, r in revisions.items()), 10, "renewals after the restart")
            await asyncio.sleep(3 * TTL)
            assert (one.running, two.running) == before
            assert one.leases.takeovers == two.leases.takeovers == 0
            await asyncio.wait_for(one.close(), 20)
            await asyncio.wait_for(two.close(), 20)
            await asyncio.wait_for(nc.close(), 20)

    asyncio.run(scenario())


def test_a_bus_back_without_its_store_ends_no_camera(tmp_path: Path) -> None:
    """The server is away for longer than a lease lives and comes back without what it stored (the
    buckets are gone): the owner keeps its cameras running all along, reports the failed rounds and
    takes its leases back; a worker started while the server was away waits for it, then gets its share."""

    async def scenario() -> None:
        with NatsServer(tmp_path) as server:
            nc = await reconnecting(server)
            cfg = BusConfig(server.url, lease_ttl=TTL)
            catalog = FixedCatalog(cams("a", "b"))
            one = Worker(nc, cfg, "one", catalog)
            await until(lambda: len(one.running) == 2, 5, "the worker's cameras")
            server.kill()
            shutil.rmtree(server.store)
            late = Worker(nc, cfg, "late", catalog)
            await until(lambda: one.leases.failed_rounds >= 1 and late.leases.failed_rounds >= 1, 20, "failed rounds")
            assert "bus unreachable" in one.leases.state
            await asyncio.sleep(3 * TTL)  # longer than a lease lives
            assert one.running == {"a", "b"} and late.running == set()
            server.start()
            await until(lambda: one.leases.failed_rounds == 0 and one.leases.retaken >= 1, 20, "the leases taken back")
            await until(lambda: len(one.running) == len(late.running) == 1, 20, "a camera each")
            assert one.starts == 2, "a camera of the first worker was stopped and started again"
            assert not one.task.done() and not late.task.done()
            kv = await bucket(nc.jetstream(), "streamer_leases")
            held = {name: Holder.decode((await kv.get(name)).value) for name in ("a", "b")}
            assert {h.worker for h in held.values() if h is not None} == {"one", "late"}
            await asyncio.wait_for(one.close(), 20)
            await asyncio.wait_for(late.close(), 20)
            await asyncio.wait_for(nc.close(), 20)

    asyncio.run(scenario())
