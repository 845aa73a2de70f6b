"""The `streamer` command as a user meets it: bad input gives one clear line and a non-zero exit."""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from streamer.camera_args import cameras_from_args, stream_name_for
from streamer.cli import COMMANDS, build_parser

pytestmark = pytest.mark.timeout(120)


def streamer(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streamer", *args], cwd=cwd, capture_output=True, text=True, timeout=100)


def _assert_one_line_error(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, proc.stderr
    assert needle in errors[0], proc.stderr


@pytest.fixture(scope="module")
def truncated_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bad")
    good = d / "good.mp4"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "2",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", str(good)],
        check=True,
    )
    bad = d / "truncated.mp4"
    data = good.read_bytes()
    bad.write_bytes(data[: len(data) // 3])
    return bad


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda d: "missing.mp4", "media file not found: missing.mp4"),  # voices on: audio files count too
        (lambda d: (d / "notes.mp4").write_text("just text") and "notes.mp4", "notes.mp4"),
        (lambda d: "foo://camera/1", "unsupported source 'foo://camera/1'"),
    ],
)
def test_bad_sources(tmp_path: Path, make, needle: str) -> None:  # type: ignore[no-untyped-def]
    src = make(tmp_path)
    proc = streamer("run", src, "--no-mqtt", "--db", "m.db", cwd=tmp_path)
    _assert_one_line_error(proc, needle)


def test_truncated_mp4(tmp_path: Path, truncated_mp4: Path) -> None:
    proc = streamer("run", str(truncated_mp4), "--no-mqtt", "--db", "m.db", "-q", cwd=tmp_path)
    _assert_one_line_error(proc, "truncated.mp4")


def test_invalid_config_value(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("sources:\n  fps: -1\n")
    proc = streamer("run", "x.mp4", "--config", "c.yaml", cwd=tmp_path)
    _assert_one_line_error(proc, "invalid config value sources.fps: Input should be greater than 0")


def test_export_of_a_missing_database(tmp_path: Path) -> None:
    _assert_one_line_error(streamer("export", "faces", "--db", "none.db", cwd=tmp_path), "memory database not found: none.db")


def test_a_file_that_is_not_a_memory_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    (tmp_path / "other.db").write_text("precious data")
    proc = streamer("export", "nodes", "--db", "other.db", cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert (tmp_path / "other.db").read_text() == "precious data"


def test_run_and_export_on_a_real_video(tmp_path: Path, cast, media_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from streamer.demo.compose import Appearance, render_video

    video = media_dir / "cli_one_person.mp4"
    render_video(video, cast, [Appearance(2, 0, 4, 0.5)])
    proc = streamer("run", f"lobby={video}", "--no-mqtt", "--db", "m.db", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    faces = [json.loads(line) for line in streamer("export", "faces", "--db", "m.db", cwd=tmp_path).stdout.splitlines()]
    assert faces and set(faces[0]) == {"stream", "t", "wall_time", "bbox", "det_score", "quality", "face_type", "node", "character"}
    assert {f["stream"] for f in faces} == {"lobby"}
    assert all(len(f["bbox"]) == 4 and all(isinstance(v, int) for v in f["bbox"]) for f in faces)
    ts = [f["t"] for f in faces]
    assert ts == sorted(ts) and ts[-1] < 4.0
    nodes = {f["node"] for f in faces} - {None}
    assert len(nodes) == 1
    exported = [json.loads(line) for line in streamer("export", "nodes", "--db", "m.db", cwd=tmp_path).stdout.splitlines()]
    assert [n["id"] for n in exported] == list(nodes)
    (node,) = nodes
    labelled = streamer("node", "label", str(node), "Ada", "Lovelace", "--db", "m.db", cwd=tmp_path)
    assert labelled.returncode == 0, labelled.stderr
    exported = [json.loads(line) for line in streamer("export", "nodes", "--db", "m.db", cwd=tmp_path).stdout.splitlines()]
    assert exported[0]["label"] == "Ada Lovelace"
    events = [json.loads(line) for line in streamer("export", "events", "--db", "m.db", cwd=tmp_path).stdout.splitlines()]
    assert events[-1]["type"] == "node.labelled" and events[-1]["node"] == node
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    missing = streamer("node", "label", "999", "Nobody", "--db", "m.db", cwd=tmp_path)
    _assert_one_line_error(missing, "999")
    drawn = streamer("timeline", "--db", "m.db", "--out", "t.png", cwd=tmp_path)
    assert drawn.returncode == 0 and "1 identities" in drawn.stdout
    import cv2

    picture = cv2.imread(str(tmp_path / "t.png"))
    assert picture is not None and picture.shape[1] == 900


# The command's entry with a main that leaves a thread at work (it ends once the interpreter exits)
# and still holds output in the buffer when the reader of its stdout has gone.
_READER_GONE = """
import sys, threading
from streamer import cli

def main(**_):
    threading.Thread(target=threading.main_thread().join).start()
    print("first", flush=True)
    sys.stdin.readline()  # the reader has gone
    print("second")  # buffered: the reader's absence shows when it is flushed
    return 0

cli.main = main
cli.entry()
"""


def test_a_reader_gone_is_quiet_with_a_thread_still_at_work() -> None:
    """`streamer ... | head -1`: no "Exception ignored ... BrokenPipeError" at the exit, and exit 0."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # stdout buffered, as in a shell
    read, write = os.pipe()
    child = subprocess.Popen([sys.executable, "-c", _READER_GONE], stdin=subprocess.PIPE, stdout=write, stderr=subprocess.PIPE, env=env)
    os.close(write)
    with os.fdopen(read) as reader:  # `head -1`
        assert reader.readline() == "first\n"
    assert child.stdin is not None
    child.stdin.write(b"\n")
    child.stdin.flush()
    _, err = child.communicate(timeout=60)
    assert (child.returncode, err.decode()) == (0, "")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_a_parser_built_for_one_command_reads_as_the_whole_one() -> None:
    """A start builds only its command's arguments; the help of every command and of the whole
    reads the same as with all of them built."""
    whole = build_parser()
    assert list(_subcommands(whole)) == list(COMMANDS)
    for name, full in _subcommands(whole).items():
        one = build_parser(name)
        assert one.format_help() == whole.format_help()
        assert _subcommands(one)[name].format_help() == full.format_help()
    assert build_parser("nope").format_help() == whole.format_help()


def test_help_and_bad_input_through_the_command(tmp_path: Path) -> None:
    top = streamer("--help", cwd=tmp_path)
    assert top.returncode == 0 and all(name in top.stdout for name in COMMANDS)
    run = streamer("run", "--help", cwd=tmp_path)
    assert run.returncode == 0 and "--no-voices" in run.stdout and "--realtime" in run.stdout
    ask = streamer("ask", "who-is-here", "--help", cwd=tmp_path)
    assert ask.returncode == 0 and "--since" in ask.stdout
    bad = streamer("run", "--bogus", cwd=tmp_path)
    assert bad.returncode == 2 and "unrecognized arguments: --bogus" in bad.stderr
    unknown = streamer("nope", cwd=tmp_path)
    assert unknown.returncode == 2 and "invalid choice: 'nope'" in unknown.stderr


def test_stream_names() -> None:
    assert stream_name_for("rtsp://user:pw@10.0.0.5:554/live/ch1") == "10_0_0_5_live_ch1"
    assert stream_name_for("/videos/front door.mp4") == "front_door"
    cams = cameras_from_args(["door=rtsp://h/x", "/a/clip.mp4", "/b/clip.mp4"])
    assert [c["name"] for c in cams] == ["door", "clip", "clip-2"]


def test_a_folder_of_photos(tmp_path: Path) -> None:
    import cv2

    from streamer.demo.cast import shipped_photos

    photos = tmp_path / "photos"
    photos.mkdir()
    group = cv2.imread(str(shipped_photos()[0]))  # six different people
    cv2.imwrite(str(photos / "group.jpg"), group)
    cv2.imwrite(str(photos / "mirrored.png"), group[:, ::-1])
    (photos / "notes.txt").write_text("not media")
    proc = streamer("run", "photos", "--no-mqtt", "--db", "m.db", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    faces = [json.loads(line) for line in streamer("export", "faces", "--db", "m.db", cwd=tmp_path).stdout.splitlines()]
    by_photo: dict[str, list[int]] = {}
    for f in faces:
        by_photo.setdefault(f["stream"], []).append(f["node"])
    assert set(by_photo) == {"group", "mirrored"}
    assert None not in by_photo["group"] and len(set(by_photo["group"])) == 6  # a photo's faces are confirmed at once
    assert sorted(by_photo["mirrored"]) == sorted(by_photo["group"])  # the mirrored photo: the same six people
    nodes = [json.loads(line) for line in streamer("export", "nodes", "--db", "m.db", cwd=tmp_path).stdout.splitlines()]
    assert len(nodes) == 6 and {n["status"] for n in nodes} == {"confirmed"}


def test_a_taken_mqtt_port_does_not_stop_the_analysis(tmp_path: Path, cast, media_dir: Path) -> None:  # type: ignore[no-untyped-def]
    import os
    import socket

    from streamer.demo.compose import Appearance, render_video

    video = media_dir / "cli_port_taken.mp4"
    render_video(video, cast, [Appearance(2, 0, 2, 0.5)])
    with socket.socket() as taken:  # another broker, or another streamer, holds the port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "streamer", "run", str(video), "--db", "m.db", "-q"],
            cwd=tmp_path, capture_output=True, text=True, timeout=100,
            env={**os.environ, "STREAMER_MQTT__EMBEDDED_PORT": str(port)},
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"port {port} is in use: pass --mqtt" in proc.stderr and "going on without the MQTT feed" in proc.stderr
    assert streamer("export", "faces", "--db", "m.db", cwd=tmp_path).stdout.strip()


def test_a_folder_of_many_photos_of_few_people(tmp_path: Path, cast) -> None:  # type: ignore[no-untyped-def]
    """More photos than are analysed at once: each person still gets one identity, across photos."""
    import cv2

    photos = tmp_path / "album"
    photos.mkdir()
    people = cast[:4]
    for i, person in enumerate(people):
        framed = cv2.copyMakeBorder(person.image, 60, 60, 60, 60, cv2.BORDER_CONSTANT, value=(90, 90, 90))
        cv2.imwrite(str(photos / f"p{i}_a.jpg"), framed)
        cv2.imwrite(str(photos / f"p{i}_b.jpg"), framed[:, ::-1])
        cv2.imwrite(str(photos / f"p{i}_c.png"), cv2.convertScaleAbs(cv2.resize(framed, None, fx=0.7, fy=0.7), alpha=0.7))
    proc = streamer("run", "album", "--no-mqtt", "--db", "m.db", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "files: 100%" in proc.stderr  # one bar for the whole album, not one per photo
    faces = [json.loads(line) for line in streamer("export", "faces", "--db", "m.db", cwd=tmp_path).stdout.splitlines()]
    nodes: dict[str, set[int | None]] = {}
    for f in faces:
        nodes.setdefault(f["stream"].split("_")[0], set()).add(f["node"])
    assert len(faces) == 12
    assert all(len(n) == 1 and None not in n for n in nodes.values()), nodes
    assert len({next(iter(n)) for n in nodes.values()}) == 4


def test_a_run_freezes_what_its_start_loaded_and_collects_after_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The start's objects are frozen (no collection walks them again), and collection is back on for
    the run itself: a run of days makes cyclic garbage."""
    from streamer.app import App
    from streamer.cli import main

    clip = tmp_path / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "1", str(clip)],
        check=True,
    )
    at_start: dict[str, int | bool] = {}
    run = App.run

    async def run_seen(app: App, *args: Any, **kwargs: Any) -> Any:
        at_start.update(collecting=gc.isenabled(), frozen=gc.get_freeze_count())
        return await run(app, *args, **kwargs)

    monkeypatch.setattr(App, "run", run_seen)
    gc.unfreeze()
    try:
        assert main(["run", str(clip), "-q", "--no-mqtt", "--no-voices", "--db", str(tmp_path / "m.db")]) == 0
    finally:
        gc.unfreeze()
    assert at_start["collecting"] is True
    assert at_start["frozen"] > 0
