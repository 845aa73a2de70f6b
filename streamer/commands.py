"""What each `streamer` subcommand does, once streamer.cli has parsed its arguments and built the config."""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from .config import Config
from .errors import StreamerError

if TYPE_CHECKING:
    from memory import Memory

    from .app import App, RunSummary


@contextmanager
def stored_memory(cfg: Config) -> Iterator[Memory]:
    """The memory of an existing database file (a command that reads or edits one never creates it)."""
    from memory import Memory
    from memory.database import exists, shown

    if not exists(cfg.memory.db):
        raise StreamerError(f"memory database not found: {shown(cfg.memory.db)}")
    with Memory(cfg.memory) as memory:
        yield memory


def cmd_run(args: argparse.Namespace, cfg: Config, overrides: dict[str, Any]) -> int:
    """`overrides`: the flags as config keys, applied again whenever a followed config file changes."""
    import asyncio
    import signal

    with _kept_for_good():
        if cfg.models.model_dir is None:
            from .faces.bundled import check_soon

            check_soon()  # the model files hashed on the other core while the imports below load
        from memory.database import shown

        from .app import App, install_signal_handlers
        from .progress import Progress
        from .reload import CameraReloader
        from .source_urls import never_ends

    if not cfg.cameras and not cfg.webrtc.whip_enabled:
        raise StreamerError("nothing to analyse: give a video file or camera URL, cameras in --config, or --whip")
    api_token = args.api_token or os.environ.get("STREAMER_API_TOKEN") or None
    if args.api is not None:
        from .api.server import check_token  # noqa: PLC0415

        check_token(args.api[0], api_token)
    # Cameras from a file that has a live one: the run lasts until a signal, so follow the file meanwhile.
    follow = bool(args.config and not args.sources and not args.no_reload)
    follow = follow and any(never_ends(c.url) for c in cfg.cameras if c.enabled)  # not only files
    # pushes may come at any time: a WHIP server keeps the run up until a signal
    app = App(
        cfg, realtime=args.realtime, progress=Progress(enabled=not args.quiet), keep_running=follow or cfg.webrtc.whip_enabled
    )

    async def main() -> None:
        install_signal_handlers(app)
        reloading: asyncio.Task[None] | None = None
        if follow:
            reloader = CameraReloader(app, args.config, overrides)
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reloader.request)
            reloading = asyncio.create_task(reloader.run(), name="reload")
        try:
            with _log_beside_bars(args.quiet):
                summary = await run_app(app, args.api, api_token)
        finally:
            if reloading is not None:
                reloading.cancel()
                await asyncio.gather(reloading, return_exceptions=True)
        faces = sum(s.faces for s in summary.streams.values())
        turns = sum(v.turns for v in summary.voices.values())
        heard = f", {turns} speech turns" if summary.voices else ""
        print(f"done: {faces} faces{heard}, {summary.identities} identities, memory in {shown(cfg.memory.db)}", file=sys.stderr)

    asyncio.run(main())
    return 0


@contextmanager
def _kept_for_good() -> Iterator[None]:
    """For imports whose objects live as long as the process: no collection while they load (40-80 ms
    of a run's start, on the main thread), and none scans them again once frozen. Collection is back
    on after, for the cyclic garbage of a run of days."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _log_beside_bars(quiet: bool) -> AbstractContextManager[object]:
    """Log lines printed above the progress bars, not through them; a quiet run draws no bars."""
    if quiet:
        return nullcontext()
    from tqdm.contrib.logging import logging_redirect_tqdm  # noqa: PLC0415

    return logging_redirect_tqdm()


async def run_app(app: App, api: tuple[str, int] | None = None, token: str | None = None) -> RunSummary:
    if api is not None:
        from .api.server import run_with_api  # noqa: PLC0415

        return await run_with_api(app, *api, token, run_app)
    if not app.cfg.webrtc.whip_enabled:
        return await app.run()
    from .whip_server import run_with_whip  # aiortc loads only for those who take pushes

    return await run_with_whip(app)


def cmd_export(args: argparse.Namespace, cfg: Config) -> int:
    with stored_memory(cfg) as memory:
        rows: Any = {
            "faces": memory.export_faces,
            "voices": memory.export_voices,
            "nodes": memory.export_nodes,
            "characters": memory.export_characters,
            "events": lambda: (e.to_json_dict() for e in memory.events_after(0, limit=1 << 62)),
        }[args.what]()
        try:  # `| head`: the command's entry leaves quietly on the broken pipe
            for row in rows:
                sys.stdout.write(json.dumps(row) + "\n")
            sys.stdout.flush()
        finally:
            if hasattr(rows, "close"):
                rows.close()
    return 0


def cmd_tail(args: argparse.Namespace, cfg: Config) -> int:
    import asyncio

    from .tail import tail

    try:
        asyncio.run(tail(cfg.mqtt, as_json=args.json))
    except KeyboardInterrupt:
        pass
    return 0


def cmd_timeline(args: argparse.Namespace, cfg: Config) -> int:
    from .report import timeline_png

    with stored_memory(cfg) as memory:
        drawn = timeline_png(memory, args.out)
    print(f"{args.out}: {drawn} identities")
    return 0


def cmd_node(args: argparse.Namespace, cfg: Config) -> int:
    with stored_memory(cfg) as memory:
        if args.action == "label":
            memory.label(args.node_id, " ".join(args.args))
            print(f"node {args.node_id} labelled {' '.join(args.args)!r}")
        elif args.action == "merge":
            kept = memory.merge(args.node_id, _int(args.args[0]))
            print(f"merged into node {kept}")
        else:
            new = memory.split(args.node_id, [_int(a) for a in args.args])
            print(f"tracks moved to new node {new}")
    return 0


def cmd_character(args: argparse.Namespace, cfg: Config) -> int:
    with stored_memory(cfg) as memory:
        if args.action == "link":
            memory.link(args.face, args.voice)
            character = memory.character_of(args.face)
            print(f"face {args.face} and voice {args.voice} are character {character.id if character else '?'}")
        else:
            memory.unlink(args.face, args.voice)
            print(f"face {args.face} and voice {args.voice} untied; they will not be tied again automatically")
    return 0


def cmd_show(args: argparse.Namespace, cfg: Config) -> int:
    from .show import show_clip

    with stored_memory(cfg) as memory:
        lines = show_clip(memory, args.stream, args.clip, args.out or f"clip-{args.stream}-{args.clip}.png")
    print("\n".join(lines))
    return 0


def cmd_forget(args: argparse.Namespace, cfg: Config) -> int:
    from memory.forget import parse_target  # noqa: PLC0415

    parse_target(args.target)  # a bad target says so before the file is opened
    with stored_memory(cfg) as memory:
        done = memory.forget(args.target)
    print(f"forgot {args.target}: nodes {', '.join(map(str, done.nodes))}, {done.tracks} tracks, {done.observations} faces, "
          f"{done.turns} speech turns, {done.crops} crops, {done.memories_deleted} memories deleted and "
          f"{done.memories_redacted} redacted")  # fmt: skip
    return 0


def cmd_gallery(args: argparse.Namespace, cfg: Config) -> int:
    from .gallery.site import write_site  # noqa: PLC0415

    pages = write_site(cfg.memory.db, args.out)
    print(f"{args.out}: {pages} people")
    return 0


def cmd_ask(args: argparse.Namespace, cfg: Config) -> int:
    from .ask import ask  # noqa: PLC0415

    print("\n".join(ask(args, cfg.memory.db)))
    return 0


def cmd_mcp(cfg: Config) -> int:
    from .api.mcp import run_stdio  # noqa: PLC0415

    run_stdio(cfg.memory.db)
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from memory.database import shown  # noqa: PLC0415
    from memory.transfer import copy_memory  # noqa: PLC0415

    with _table_bars(sys.stderr.isatty() and not args.quiet) as progress:
        copied = copy_memory(args.src, args.dst, replace=args.replace, progress=progress)
    print(f"copied {copied.rows} rows ({copied.tables} tables) from {shown(args.src)} to {shown(args.dst)}")
    return 0


@contextmanager
def _table_bars(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """One bar on a terminal for the table being copied (the tables go one after the other)."""
    if not enabled:
        yield None
        return
    from tqdm import tqdm  # noqa: PLC0415

    bars: list[tqdm[Any]] = []  # made at the first table: a copy refused at once draws none

    def show(table: str, done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, desc=table, unit="row", file=sys.stderr, dynamic_ncols=True))
        elif bars[0].desc != table:
            bars[0].reset(total=total)
            bars[0].set_description_str(table, refresh=False)
        bars[0].n = done
        bars[0].refresh()

    try:
        yield show
    finally:
        for bar in bars:
            bar.close()


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise StreamerError(f"expected a number, got {text!r}") from None
