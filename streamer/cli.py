"""The `streamer` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from memory.errors import MemoryGraphError

from . import commands
from .camera_args import cameras_from_args
from .config import Config, load_config
from .errors import StreamerError
from .source_urls import never_ends

log = logging.getLogger("streamer")


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host or "0.0.0.0", int(port)


def _api_address(text: str) -> tuple[str, int]:
    """PORT or HOST:PORT; the host defaults to 127.0.0.1 (questions stay on this machine unless asked)."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected [HOST:]PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _whep_source(text: str) -> str:
    """A WHEP endpoint as a camera source: http(s):// becomes whep(s)://, NAME= is kept."""
    name, sep, url = text.partition("=")
    if not sep or "/" in name or ":" in name:
        name, sep, url = "", "", text
    for http, whep in (("http://", "whep://"), ("https://", "wheps://")):
        if url.lower().startswith(http):
            url = whep + url[len(http) :]
    if not url.lower().startswith(("whep://", "wheps://")):
        raise argparse.ArgumentTypeError(f"expected an http(s):// or whep(s):// URL, got {text!r}")
    return name + sep + url


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config file (see configs/default.yaml)")
    p.add_argument("--db", help="memory database: a file (default ./memory.db) or postgresql://USER@HOST:PORT/NAME")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only, no progress")


def _add_pipeline(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fps", type=float, help="analysed frames per second (default 5)")
    p.add_argument("--model-dir", help="folder of an insightface model pack (default: bundled buffalo_s)")
    p.add_argument("--providers", choices=["auto", "cpu", "cuda"], help="onnxruntime execution provider")
    p.add_argument("--mqtt", metavar="URL", help="mqtt://[user:pass@]host:port or mqtts://...; default: embedded broker")
    p.add_argument("--no-mqtt", action="store_true", help="do not publish over MQTT")
    p.add_argument("--mqtt-prefix", help="MQTT topic prefix (default streamer)")
    p.add_argument("--no-voices", action="store_true", help="ignore audio: no voices, no transcripts (faces only)")
    p.add_argument("--no-asr", action="store_true", help="voices without transcripts (no speech recognition)")


def _run_args(run: argparse.ArgumentParser) -> None:
    run.add_argument("sources", nargs="*", metavar="SOURCE", help="video file, rtsp:// URL, /dev/videoN; NAME=SOURCE names it")
    run.add_argument("--realtime", action="store_true", help="pace files like a live camera")
    run.add_argument(
        "--whip", type=_host_port, metavar="HOST:PORT", help="take camera pushes at http://HOST:PORT/whip/<stream> (WHIP)"
    )
    run.add_argument("--whip-token", metavar="TOKEN", help="bearer token a WHIP push must send")
    run.add_argument(
        "--whep", type=_whep_source, action="append", default=[], metavar="URL", help="pull a stream from a WHEP URL (repeatable)"
    )
    run.add_argument("--metrics-port", type=int, metavar="PORT", help="serve Prometheus metrics on 127.0.0.1:PORT/metrics")
    run.add_argument(
        "--api", type=_api_address, metavar="[HOST:]PORT", help="answer questions (HTTP JSON API and MCP) on HOST:PORT, 127.0.0.1 by default"
    )
    run.add_argument("--api-token", metavar="TOKEN", help="bearer token the API needs (default $STREAMER_API_TOKEN); needed off localhost and for edits")
    run.add_argument(
        "--no-reload", action="store_true", help="do not follow changes of the --config file's cameras (file change, SIGHUP)"
    )
    _add_common(run)
    _add_pipeline(run)


def _worker_args(worker: argparse.ArgumentParser) -> None:
    from .bus.cli import add_bus_options  # noqa: PLC0415 (nats loads only for the bus commands)

    worker.add_argument("sources", nargs="*", metavar="SOURCE", help="video file, rtsp:// URL, /dev/videoN; NAME=SOURCE names it")
    worker.add_argument("--realtime", action="store_true", help="pace files like a live camera")
    worker.add_argument(
        "--shared", action="store_true",
        help="share the cameras with the other workers (leases); without cameras, those in the bus's <prefix>_cameras bucket",
    )  # fmt: skip
    worker.add_argument("--metrics-port", type=int, metavar="PORT", help="serve Prometheus metrics on 127.0.0.1:PORT/metrics")
    add_bus_options(worker)
    _add_common(worker)
    _add_pipeline(worker)


def _service_args(service: argparse.ArgumentParser) -> None:
    from .bus.cli import add_bus_options  # noqa: PLC0415

    add_bus_options(service)
    service.add_argument("--metrics-port", type=int, metavar="PORT", help="serve Prometheus metrics on 127.0.0.1:PORT/metrics")
    service.add_argument("--api", type=_api_address, metavar="[HOST:]PORT", help="answer questions (HTTP JSON API and MCP) on HOST:PORT")
    service.add_argument("--api-token", metavar="TOKEN", help="bearer token the API needs (default $STREAMER_API_TOKEN)")
    service.add_argument("--mqtt", metavar="URL", help="mqtt://[user:pass@]host:port or mqtts://...; default: embedded broker")
    service.add_argument("--no-mqtt", action="store_true", help="do not publish over MQTT")
    service.add_argument("--mqtt-prefix", help="MQTT topic prefix (default streamer)")
    _add_common(service)


def _demo_args(demo: argparse.ArgumentParser) -> None:
    demo.add_argument("--out", default="demo-out", help="folder for the video, database and pictures")
    _add_common(demo)
    _add_pipeline(demo)


def _export_args(export: argparse.ArgumentParser) -> None:
    export.add_argument("what", choices=["faces", "voices", "nodes", "characters", "events"])
    _add_common(export)


def _tail_args(tail: argparse.ArgumentParser) -> None:
    tail.add_argument("--mqtt", metavar="URL", help="broker to read (default: the embedded broker on 127.0.0.1)")
    tail.add_argument("--mqtt-prefix", help="MQTT topic prefix (default streamer)")
    tail.add_argument("--json", action="store_true", help="one JSON object per message")
    _add_common(tail)


def _timeline_args(picture: argparse.ArgumentParser) -> None:
    picture.add_argument("--out", default="timeline.png", help="PNG file to write")
    _add_common(picture)


def _node_args(node: argparse.ArgumentParser) -> None:
    node.add_argument("action", choices=["label", "merge", "split"])
    node.add_argument("node_id", type=int)
    node.add_argument("args", nargs="+", help="label: NAME; merge: OTHER_ID; split: TRACK_ID...")
    _add_common(node)


def _character_args(character: argparse.ArgumentParser) -> None:
    character.add_argument("action", choices=["link", "unlink"])
    character.add_argument("face", type=int, metavar="FACE", help="face node id")
    character.add_argument("voice", type=int, metavar="VOICE", help="voice node id")
    _add_common(character)


def _show_args(show: argparse.ArgumentParser) -> None:
    show.add_argument("what", choices=["clip"])
    show.add_argument("--stream", required=True, help="stream (camera) name")
    show.add_argument("--clip", type=int, required=True, metavar="N", help="clip number (stream seconds / memory.interval_seconds)")
    show.add_argument("--out", help="contact sheet PNG of the clip's faces (default clip-STREAM-N.png)")
    _add_common(show)


def _ask_args(ask: argparse.ArgumentParser) -> None:
    from .ask_args import add_questions  # noqa: PLC0415 (kept beside its command)

    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)  # options after the question
    _add_common(common)
    add_questions(ask, common)
    _add_common(ask)


def _forget_args(forget: argparse.ArgumentParser) -> None:
    forget.add_argument("target", metavar="NODE|CHARACTER", help="a node id, or a tag like <face_3>, voice_7, <character_2>")
    _add_common(forget)


def _gallery_args(gallery: argparse.ArgumentParser) -> None:
    gallery.add_argument("--out", default="gallery", help="folder to write (default ./gallery)")
    _add_common(gallery)


def _db_args(db: argparse.ArgumentParser) -> None:
    actions = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    copy = actions.add_parser("copy", help="copy every table, ids as they are, in one transaction (the source is only read)")
    copy.add_argument("src", metavar="SRC", help="the memory to copy: a file, sqlite:///PATH or postgresql://USER@HOST:PORT/NAME")
    copy.add_argument("dst", metavar="DST", help="where to: a file (created) or an empty PostgreSQL database (tables created)")
    copy.add_argument("--replace", action="store_true", help="delete the memory DST holds first (without it, a DST holding one is refused)")
    _add_common(copy)


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "run": ("analyse videos and live cameras into the memory", _run_args),
    "worker": ("analyse cameras and publish what is seen to the bus (NATS JetStream)", _worker_args),
    "memory-service": ("the one memory: apply what workers publish on the bus, publish the feed", _service_args),
    "demo": ("build a short video of real people and watch identities form", _demo_args),
    "export": ("print stored faces, speech turns, identities, characters or events as JSON lines", _export_args),
    "tail": ("print the MQTT memory feed as it comes", _tail_args),
    "timeline": ("draw who was seen when, with each identity's best face, as a PNG", _timeline_args),
    "node": ("label, merge or split identities by hand", _node_args),
    "character": ("tie a face to a voice by hand, or untie them for good", _character_args),
    "show": ("print what memory holds about a clip", _show_args),
    "ask": ("ask the memory: who is here, when someone was last seen, what they said, search ...", _ask_args),
    "forget": ("delete a person: crops, embeddings, sightings, speech, memories (for good)", _forget_args),
    "gallery": ("write a static HTML gallery: one card per person, a page each", _gallery_args),
    "mcp": ("serve the memory's question tools to a local agent over stdio (MCP)", _add_common),
    "db": ("copy a memory to another store: a file into PostgreSQL, or back", _db_args),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with `command` (a subcommand's name) only that one gets its arguments (every
    start builds a parser: ~4 ms less CPU than all of them). Every subcommand is listed either way,
    so help and errors read the same."""
    parser = argparse.ArgumentParser(prog="streamer", description="Live face memory for cameras and videos.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (text, add_arguments) in COMMANDS.items():
        p = sub.add_parser(name, help=text)
        if command in (None, name) or command not in COMMANDS:
            add_arguments(p)
    return parser


def _command(argv: Sequence[str] | None) -> str | None:
    """The subcommand an argument list names: its first word, unless that is an option."""
    args = sys.argv[1:] if argv is None else argv
    return args[0] if args and not args[0].startswith("-") else None


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The flags as dotted config keys, cameras from the command line aside."""
    overrides: dict[str, Any] = {}
    for flag, key in (
        ("db", "memory.db"),
        ("fps", "sources.fps"),
        ("model_dir", "models.model_dir"),
        ("providers", "models.providers"),
        ("mqtt", "mqtt.url"),
        ("mqtt_prefix", "mqtt.prefix"),
        ("whip_token", "webrtc.whip_token"),
        ("metrics_port", "metrics.port"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            overrides[key] = value
    for flag, key in (("no_mqtt", "mqtt.enabled"), ("no_voices", "voices.enabled"), ("no_asr", "asr.enabled")):
        if getattr(args, flag, False):
            overrides[key] = False
    if getattr(args, "whip", None) is not None:
        overrides |= {"webrtc.whip_enabled": True, "webrtc.whip_host": args.whip[0], "webrtc.whip_port": args.whip[1]}
    return overrides


def config_from_args(args: argparse.Namespace) -> Config:
    overrides = overrides_from_args(args)
    sources = [*(getattr(args, "sources", None) or []), *(getattr(args, "whep", None) or [])]
    if sources:
        overrides["cameras"] = cameras_from_args(sources)
    return load_config(args.config, overrides)


def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    # (faiss tells at INFO which CPU builds it could not load; faster_whisper logs every window it hears)
    for noisy in ("insightface", "amqtt", "transitions", "aioice", "aiortc", "mqtt", "faiss", "faster_whisper"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def main(argv: Sequence[str] | None = None, *, program: bool = False) -> int:
    """`program`: this process is the `streamer` command itself, with argv from its command line."""
    args = build_parser(_command(argv)).parse_args(argv)
    _setup_logging(args)
    try:
        cfg = config_from_args(args)
        if args.command in LONG_RUNNING:
            from .native_memory import kept_flat  # noqa: PLC0415

            restart_args = sys.argv[1:] if program else None
            with kept_flat(restart_args, allocator=cfg.process.allocator, live=_runs_until_stopped(args, cfg)):
                return _long_running(args, cfg)
        if args.command == "demo":
            from .demo.run import run_demo

            return run_demo(args, cfg)
        if args.command == "export":
            return commands.cmd_export(args, cfg)
        if args.command == "tail":
            return commands.cmd_tail(args, cfg)
        if args.command == "timeline":
            return commands.cmd_timeline(args, cfg)
        if args.command == "character":
            return commands.cmd_character(args, cfg)
        if args.command == "show":
            return commands.cmd_show(args, cfg)
        if args.command == "ask":
            return commands.cmd_ask(args, cfg)
        if args.command == "mcp":
            return commands.cmd_mcp(cfg)
        if args.command == "forget":
            return commands.cmd_forget(args, cfg)
        if args.command == "gallery":
            return commands.cmd_gallery(args, cfg)
        if args.command == "db":
            return commands.cmd_db(args)
        return commands.cmd_node(args, cfg)
    except (StreamerError, MemoryGraphError) as e:
        print(f"streamer: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # the last line of defence: one line, details with -v
        log.debug("unexpected error", exc_info=True)
        print(f"streamer: error: {type(e).__name__}: {e} (run with -v for details)", file=sys.stderr)
        return 1


LONG_RUNNING = ("run", "worker", "memory-service")


def _runs_until_stopped(args: argparse.Namespace, cfg: Config) -> bool:
    """The memory service always; a run or a worker with a camera that never ends, a WHIP server, or
    the shared cameras of the bus."""
    if args.command == "memory-service" or cfg.webrtc.whip_enabled or getattr(args, "shared", False):
        return True
    return any(never_ends(c.url) for c in cfg.cameras if c.enabled)


def _long_running(args: argparse.Namespace, cfg: Config) -> int:
    if args.command == "run":
        return commands.cmd_run(args, cfg, overrides_from_args(args))
    from .bus.cli import cmd_memory_service, cmd_worker  # noqa: PLC0415 (the models' imports are heavy)

    if args.command == "worker":
        return cmd_worker(args, cfg)
    return cmd_memory_service(args, cfg, commands.run_app)


def entry() -> None:
    """The `streamer` command: main(), then out without tearing the interpreter down. Once main has
    returned everything is stored, closed and joined; freeing every module and native library
    (onnxruntime, FFmpeg, FAISS, OpenCV) took another 0.1-0.2 s of every run. A thread of ours
    still at work (none should be) gets the ordinary exit, which waits for it."""
    code = main(program=True)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:  # a reader gone (`| head`): what is left goes nowhere, even at the exit below
            os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
        except ValueError:  # the stream closed
            pass
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    os._exit(code)


if __name__ == "__main__":
    entry()
