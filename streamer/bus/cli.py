"""`streamer worker` and `streamer memory-service`: the pipeline split over NATS JetStream."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..config import Config

if TYPE_CHECKING:
    from .connection import BusConfig
from ..errors import StreamerError

log = logging.getLogger(__name__)

REPORT_EVERY_SECONDS = 10.0


def add_bus_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bus", required=True, metavar="URL", help="NATS server: nats://[USER:PASS@]HOST:PORT, tls://... (comma-separated for a cluster)")
    p.add_argument("--bus-token", metavar="TOKEN", help="NATS token (default $STREAMER_BUS_TOKEN)")
    p.add_argument("--bus-ca", metavar="FILE", help="TLS: CA certificate to verify the NATS server with")
    p.add_argument("--bus-cert", metavar="FILE", help="TLS: client certificate, for servers that verify clients")
    p.add_argument("--bus-key", metavar="FILE", help="TLS: the client certificate's key")
    p.add_argument("--bus-prefix", default="streamer", help="subject, stream and bucket prefix (default streamer)")


def bus_from_args(args: argparse.Namespace) -> BusConfig:
    from .connection import BusConfig, check_bus  # noqa: PLC0415 (nats loads only for the bus commands)

    bus = BusConfig(
        url=args.bus, token=args.bus_token or os.environ.get("STREAMER_BUS_TOKEN") or None, ca=args.bus_ca,
        cert=args.bus_cert, key=args.bus_key, prefix=args.bus_prefix,
    )  # fmt: skip
    check_bus(bus)
    return bus


def cmd_worker(args: argparse.Namespace, cfg: Config) -> int:
    from .worker import run_worker  # noqa: PLC0415 (the models' imports are heavy)

    bus = bus_from_args(args)
    # cameras from --config (or named with --shared) are shared by all workers through leases
    shared = args.shared or bool(cfg.cameras and not args.sources)
    if not cfg.cameras and not shared:
        raise StreamerError("nothing to analyse: give video files or camera URLs, cameras in --config, or --shared")
    run_worker(cfg, bus, shared=shared, realtime=args.realtime, quiet=args.quiet)
    return 0


def cmd_memory_service(args: argparse.Namespace, cfg: Config, run_app: Callable[..., Any]) -> int:
    from memory.database import shown  # noqa: PLC0415

    from ..app import App  # noqa: PLC0415
    from .metrics import ServiceCollector  # noqa: PLC0415
    from .service import BusConsumer  # noqa: PLC0415

    bus = bus_from_args(args)
    api_token = args.api_token or os.environ.get("STREAMER_API_TOKEN") or None
    if args.api is not None:
        from ..api.server import check_token  # noqa: PLC0415

        check_token(args.api[0], api_token)
    # cameras belong to workers; voices are analysed there too
    cfg = cfg.model_copy(update={"cameras": [], "voices": cfg.voices.model_copy(update={"enabled": False})})
    app = App(cfg, keep_running=True)
    metrics = ServiceCollector()
    app.collectors.append(metrics)

    async def main() -> None:
        running = asyncio.create_task(run_app(app, args.api, api_token), name="app")
        await asyncio.wait({running, asyncio.create_task(app.wait_ready())}, return_when=asyncio.FIRST_COMPLETED)
        if running.done():
            await running
            return
        consumer = BusConsumer(bus, app.worker, app.notify)
        metrics.stats = consumer.stats
        feeding = asyncio.create_task(consumer.run(), name="bus-consumer")
        reporting = asyncio.create_task(_report(consumer), name="bus-report")

        def stop() -> None:  # no message is applied once the memory starts closing
            feeding.cancel()
            app.stop()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        done, _ = await asyncio.wait({running, feeding}, return_when=asyncio.FIRST_COMPLETED)
        stop()
        reporting.cancel()
        await asyncio.gather(feeding, reporting, return_exceptions=True)
        await running
        if feeding in done and not feeding.cancelled() and feeding.exception() is not None:
            raise feeding.exception()  # type: ignore[misc]
        s = consumer.stats
        print(f"done: {s.applied} messages applied ({s.observations} faces), {s.duplicates} duplicates and "
              f"{s.malformed} malformed skipped, memory in {shown(cfg.memory.db)}", file=sys.stderr)  # fmt: skip

    asyncio.run(main())
    return 0


async def _report(consumer: Any) -> None:
    last, applied = time.monotonic(), 0
    while True:
        await asyncio.sleep(REPORT_EVERY_SECONDS)
        s, now = consumer.stats, time.monotonic()
        log.info("bus: %.0f messages/s applied, %d waiting in the stream, %d duplicates, %d malformed",
                 (s.applied - applied) / (now - last), s.pending, s.duplicates, s.malformed)  # fmt: skip
        last, applied = now, s.applied
