"""`streamer worker`: the app with its memory on the bus, its cameras either its own (named on the
command line) or shared with the other workers through leases (streamer.bus.leases)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from ..app import App, RunSummary
from ..config import CameraConfig, Config
from ..errors import ShuttingDown, StreamerError
from ..opening import open_camera
from ..progress import Progress
from .catalog import BucketCatalog, Catalog, FixedCatalog, shareable
from .connection import BusConfig, bucket, connect, ensure_stream
from .leases import CameraLeases, Start, Stop
from .metrics import WorkerCollector
from .remote import BusMemory, WorkerFeed

log = logging.getLogger(__name__)


def run_worker(cfg: Config, bus: BusConfig, *, shared: bool, realtime: bool, quiet: bool) -> None:
    # files among shared cameras are refused before anything starts
    fixed = FixedCatalog(cfg.cameras) if shared and cfg.cameras else None
    asyncio.run(_main(cfg, bus, fixed, shared=shared, realtime=realtime, quiet=quiet))


async def _main(cfg: Config, bus: BusConfig, fixed: Catalog | None, *, shared: bool, realtime: bool, quiet: bool) -> None:
    nc = await connect(bus, "streamer-worker")
    js = nc.jetstream()
    await ensure_stream(js, bus)
    remote = await BusMemory(nc, js, bus).start()
    live = shared or any(shareable(c) for c in cfg.cameras if c.enabled)
    app = App(
        cfg.model_copy(update={"cameras": []}) if shared else cfg, realtime=realtime, progress=Progress(enabled=not quiet),
        keep_running=live, remote=remote, remote_feed=WorkerFeed(),
    )  # fmt: skip
    leases = None
    if shared:
        catalog = fixed or BucketCatalog(await bucket(js, f"{bus.prefix}_cameras"))
        leases = CameraLeases(js, bus, remote.worker_id, catalog, _opener(app, remote), _closer(app, remote, bus.lease_ttl))
    app.collectors.append(WorkerCollector(remote.outbox, leases))
    running = asyncio.create_task(app.run(), name="app")
    leasing = None if leases is None else asyncio.create_task(_lease_when_ready(app, leases), name="leases")

    def stop() -> None:  # no camera is taken once the app starts closing
        if leases is not None and leasing is not None:
            leases.stop()
            leasing.cancel()
        app.stop()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    try:
        await asyncio.wait({running} | ({leasing} if leasing else set()), return_when=asyncio.FIRST_COMPLETED)
        stop()
        if leasing is not None:
            await asyncio.gather(leasing, return_exceptions=True)
        summary = await running
        if leases is not None:  # its cameras are closed and their messages acknowledged: others go on now
            await leases.close()
    finally:
        await nc.close()
    _report(summary, remote)


async def _lease_when_ready(app: App, leases: CameraLeases) -> None:
    """Heartbeats start once the models are loaded: a worker counts towards the fair share only when
    it can take cameras."""
    await app.wait_ready()
    await leases.run()


def _opener(app: App, remote: BusMemory) -> Start:
    async def start(cam: CameraConfig) -> bool:
        # the worker that had it may have died mid-clip, and this worker's stream time starts from zero
        await remote.end_stream(cam.name, still=False)
        try:
            source = await asyncio.to_thread(open_camera, cam, app.cfg, realtime=app.realtime)
        except StreamerError as e:
            log.error("camera %s not started: %s", cam.name, e)
            return False
        try:
            app.add_source(source)
        except ShuttingDown:
            await source.close()
            return False
        return True

    return start


def _closer(app: App, remote: BusMemory, wait: float) -> Stop:
    async def stop(name: str) -> None:
        await app.remove_source(name)
        # the stream's end reaches the bus before another worker's first frames of it
        try:
            await asyncio.wait_for(remote.outbox.drained(), wait)
        except asyncio.TimeoutError:
            log.warning("camera %s: its last messages are still waiting for the bus", name)

    return stop


def _report(summary: RunSummary, remote: BusMemory) -> None:
    s = remote.outbox.stats
    faces = sum(a.faces for a in summary.streams.values())
    print(
        f"done: {faces} faces, {s.published} messages acknowledged by the bus ({s.bytes / 1e6:.1f} MB), "
        f"{s.overflow} frames dropped (buffer full)",
        file=sys.stderr,
    )
