"""Which worker analyses which camera: one lease per camera in a JetStream key-value bucket.

Every round (a fifth of the lease's time to live) a worker writes its heartbeat in `<prefix>_workers`,
reads both buckets, renews its own leases by compare-and-set on their revision, gives back what is
beyond its fair share (ceil(cameras / live workers)) and takes cameras that nobody holds, up to it.

A key is judged by how long its revision has stayed unchanged on this worker's own clock, never by
server timestamps, so clocks need not agree: a lease or heartbeat not rewritten for `ttl` seconds is
expired. Taking an expired lease is an update on the revision seen; if its owner renewed meanwhile,
the update fails and the owner keeps it. A round that cannot read the bus forgets what it had seen,
so nobody takes a camera from an owner that could not be watched for a whole `ttl`. The buckets'
own time to live only clears what dead workers left behind, so a heartbeat found again after
forgetting may be a dead worker's: the fair share a worker gives back down to counts only the
workers it has seen rewrite their heartbeat, the share it takes up to counts every unexpired one.

A worker never lets the bus end its cameras: while rounds fail it keeps them and tries again with
backoff (short enough that it renews before anyone could judge its lease expired), opens the
buckets again (a server that came back without its store gets them anew), and a lease that still
names this worker, or that vanished, is taken back without stopping the camera; for a ttl after it
can read the bus again, a worker takes no camera that has no lease, so such an owner is first. Only
a lease that another worker holds stops a camera here; it is taken again like any free one once it
is free.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

from nats.js import JetStreamContext
from nats.js.errors import BadRequestError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from ..config import CameraConfig
from .catalog import Catalog
from .connection import BusConfig, bucket, entries

log = logging.getLogger(__name__)

ROUNDS_PER_TTL = 5  # a live owner renews five times within its lease's time to live
BACKOFF_ROUNDS = 2  # failed rounds are retried at most this many rounds apart (well within the ttl)
WORKERS_KEPT_SECONDS = 60.0  # a dead worker's heartbeat key is removed by the server after this
LEASES_KEPT_SECONDS = 3600.0  # ... and a lease left by a dead worker for a removed camera after this
# JetStream's error codes for a write whose expected last revision is stale (newer servers send the
# second); nats-py's update maps both to KeyWrongLastSequenceError, its delete neither.
WRONG_LAST_SEQUENCE = (10071, 10164)


@dataclass(frozen=True)
class Holder:
    """The value of a lease and of a heartbeat: who, for operators reading the buckets."""

    worker: str
    host: str
    pid: int

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @staticmethod
    def decode(data: bytes | None) -> Holder | None:
        try:
            d = json.loads(data or b"")
            return Holder(str(d["worker"]), str(d["host"]), int(d["pid"]))
        except (ValueError, KeyError, TypeError):
            return None


def fair_share(cameras: int, workers: int) -> int:
    return math.ceil(cameras / max(workers, 1))


def preference(worker: str, camera: str) -> bytes:
    """Rendezvous order: each worker tries the free cameras in its own order, so workers that start
    together mostly reach for different ones."""
    return hashlib.blake2b(f"{worker}/{camera}".encode(), digest_size=8).digest()


class Sightings:
    """When each key's current revision was first read here (monotonic seconds), and whether this
    worker saw the key change to it (rather than found it so, on its first read or after forgetting)."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[int, float, bool]] = {}

    def see(self, revisions: dict[str, int], now: float) -> None:
        self._seen = {k: self._next(self._seen.get(k), rev, now) for k, rev in revisions.items()}

    @staticmethod
    def _next(seen: tuple[int, float, bool] | None, revision: int, now: float) -> tuple[int, float, bool]:
        if seen is None:
            return (revision, now, False)
        return seen if seen[0] == revision else (revision, now, True)

    def forget(self) -> None:
        self._seen.clear()

    def unchanged_for(self, key: str, now: float) -> float:
        seen = self._seen.get(key)
        return 0.0 if seen is None else now - seen[1]

    def seen_changing(self, key: str) -> bool:
        seen = self._seen.get(key)
        return seen is not None and seen[2]


Start = Callable[[CameraConfig], Awaitable[bool]]  # False: the camera could not be opened
Stop = Callable[[str], Awaitable[None]]


class CameraLeases:
    """Run `run()` beside the worker's app; `start` and `stop` open and close a camera there."""

    def __init__(self, js: JetStreamContext, cfg: BusConfig, worker: str, catalog: Catalog, start: Start, stop: Stop) -> None:
        self._js = js
        self._cfg = cfg
        self._catalog = catalog
        self._start = start
        self._stop = stop
        self.me = Holder(worker, socket.gethostname(), os.getpid())
        self.owned: dict[str, tuple[int, CameraConfig]] = {}  # camera -> (lease revision, what was started)
        self.live_workers = 0
        self.takeovers = 0  # leases taken that another worker had not given back
        self._leases: KeyValue | None = None
        self._workers: KeyValue | None = None
        self._lease_seen = Sightings()
        self._beat_seen = Sightings()
        self._stopped = False
        self.failed_rounds = 0  # in a row: the bus (or its buckets) could not be reached
        self._back_at = -math.inf  # when the first round after failed ones read the bus (monotonic)
        self.retaken = 0  # leases this worker held and took back after losing track of them

    @property
    def state(self) -> str:
        """For operators: how the leases stand, as of the last round."""
        if self.failed_rounds:
            return f"bus unreachable for {self.failed_rounds} rounds, keeping {len(self.owned)} cameras"
        return f"holding {len(self.owned)} cameras of {self.live_workers} live workers"

    @property
    def round_seconds(self) -> float:
        return self._cfg.lease_ttl / ROUNDS_PER_TTL

    async def run(self) -> None:
        while not self._stopped:
            started = time.monotonic()
            try:
                await self._open()
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the bus is away: keep the cameras, watch again from scratch once it is back
                self._failed(e)
            else:
                if self.failed_rounds:
                    log.info("bus: camera leases renewed again after %d failed rounds; %s", self.failed_rounds, self.state)
                self.failed_rounds = 0
            wait = self.round_seconds * min(2**self.failed_rounds / 2, BACKOFF_ROUNDS) if self.failed_rounds else self.round_seconds
            await asyncio.sleep(max(0.0, wait - (time.monotonic() - started)))

    async def _open(self) -> None:
        if self._leases is None or self._workers is None:
            self._leases = await bucket(self._js, f"{self._cfg.prefix}_leases", LEASES_KEPT_SECONDS)
            self._workers = await bucket(self._js, f"{self._cfg.prefix}_workers", WORKERS_KEPT_SECONDS)

    def _failed(self, e: Exception) -> None:
        self.failed_rounds += 1
        self._lease_seen.forget()
        self._beat_seen.forget()
        self._leases = self._workers = None  # opened again: the server may have come back without them
        message = "bus: camera leases not renewed (%s: %s); %s, trying again"
        log.log(logging.WARNING if self.failed_rounds == 1 else logging.DEBUG, message, type(e).__name__, e, self.state)

    def stop(self) -> None:
        """No round after the current one. Cancel the task as well: this flag is for a cancellation that
        a client call swallowed (asyncio.wait_for in Python 3.11 can lose one that races its result)."""
        self._stopped = True

    async def round(self) -> None:
        assert self._leases is not None and self._workers is not None
        await self._workers.put(self.me.worker, self.me.encode())
        beats, leases = await entries(self._workers), await entries(self._leases)
        catalog = await self._catalog.cameras()
        now, ttl = time.monotonic(), self._cfg.lease_ttl
        if self.failed_rounds:
            self._back_at = now
        self._beat_seen.see({k: e.revision or 0 for k, e in beats.items()}, now)
        self._lease_seen.see({k: e.revision or 0 for k, e in leases.items()}, now)
        # a heartbeat not yet seen changing may be a dead worker's, found again after forgetting: it
        # holds back taking cameras, never gives one away
        live = {w for w in beats if self._beat_seen.unchanged_for(w, now) < ttl} | {self.me.worker}
        beating = {w for w in live if w == self.me.worker or self._beat_seen.seen_changing(w)}
        self.live_workers = len(beating)
        target, keep = fair_share(len(catalog), len(live)), fair_share(len(catalog), len(beating))

        for name, (revision, cam) in list(self.owned.items()):
            if catalog.get(name) != cam:  # removed from the catalog, or changed: closed (and taken again below)
                await self.give_back(name)
                continue
            renewed = await self._renew(name, revision, leases.get(name))
            if renewed is None:
                log.warning("camera %s: the lease went to another worker; stopping it here", name)
                del self.owned[name]
                await self._stop(name)
            else:
                self.owned[name] = (renewed, cam)

        mine = sorted(self.owned, key=lambda n: preference(self.me.worker, n), reverse=True)
        for name in mine[: max(0, len(self.owned) - keep)]:
            log.info("camera %s: given back for a fair share (%d cameras, %d workers)", name, len(catalog), len(beating))
            await self.give_back(name)

        # back from a failure, a camera without a lease is left a ttl to an owner whose lease the server lost
        unleased_free = now - self._back_at >= ttl
        free = [
            n for n in catalog
            if n not in self.owned and (unleased_free if n not in leases else self._lease_seen.unchanged_for(n, now) >= ttl)
        ]  # fmt: skip
        for name in sorted(free, key=lambda n: preference(self.me.worker, n)):
            if len(self.owned) >= target:
                break
            entry = leases.get(name)
            try:
                if entry is None:
                    revision = await self._leases.create(name, self.me.encode())
                else:
                    revision = await self._leases.update(name, self.me.encode(), last=entry.revision)
            except KeyWrongLastSequenceError:
                continue  # another worker was faster, or the owner renewed after all
            self.owned[name] = (revision, catalog[name])
            held = None if entry is None else Holder.decode(entry.value)
            if held == self.me:  # its own, from a take whose answer was lost
                self.retaken += 1
            elif held is not None:
                self.takeovers += 1
            over = "" if held is None or held == self.me else f" over from worker {held.worker} ({held.host} pid {held.pid})"
            log.info("camera %s: taken%s", name, over)
            try:
                opened = await self._start(catalog[name])
            except Exception:  # a camera that fails to open must not stop the rounds: it goes back
                log.exception("camera %s: not started", name)
                opened = False
            if not opened:
                await self.give_back(name)

    async def _renew(self, name: str, revision: int, entry: KeyValue.Entry | None) -> int | None:
        """The lease's new revision, or None if another worker holds it. A lease whose revision this
        worker lost track of (an update the server applied but whose answer was lost) still names it,
        and one the server no longer has names nobody: both are taken back."""
        assert self._leases is not None
        try:
            return await self._leases.update(name, self.me.encode(), last=revision)
        except KeyWrongLastSequenceError:
            pass
        try:
            if entry is None:
                revision = await self._leases.create(name, self.me.encode())
            elif Holder.decode(entry.value) == self.me:
                revision = await self._leases.update(name, self.me.encode(), last=entry.revision)
            else:
                return None
        except KeyWrongLastSequenceError:
            return None  # taken meanwhile
        self.retaken += 1
        log.info("camera %s: lease taken back", name)
        return revision

    async def give_back(self, name: str) -> None:
        """Close the camera here (its last messages on the bus first), then free its lease."""
        revision, _ = self.owned.pop(name)
        await self._stop(name)
        await self._free(name, revision)

    async def _free(self, name: str, revision: int) -> None:
        """Deletes the lease if it is still at `revision`; one rewritten since is another worker's now."""
        assert self._leases is not None
        try:
            await self._leases.delete(name, last=revision)
        except (KeyWrongLastSequenceError, KeyNotFoundError):
            pass
        except BadRequestError as e:  # nats-py's delete reports a stale revision only as this
            if e.err_code not in WRONG_LAST_SEQUENCE:
                raise

    async def close(self) -> None:
        """On a clean stop, after the app closed its cameras: free every lease and the heartbeat now,
        so others take over at once rather than after the time to live."""
        try:
            await self._open()
        except Exception:  # the bus is away: the leases run out by themselves
            return
        assert self._leases is not None and self._workers is not None
        for name, (revision, _) in list(self.owned.items()):
            await self._free(name, revision)
        self.owned.clear()
        await self._workers.delete(self.me.worker)
