"""The character commands on a real memory file: export characters, character link/unlink, show clip."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
from support.realfaces import FaceBank
from support.scenario import Clock, Scene
from support.talk import Talk

from memory import Memory, MemoryConfig
from streamer.cli import main

SPEAKS = 0.3


@pytest.fixture
def db(cfg: MemoryConfig, bank: FaceBank) -> dict[str, int]:
    """A file where a (labelled Alice) speaks on screen with b beside her, and voice 2 speaks off screen."""
    clock = Clock()
    with Memory(cfg, clock=clock) as memory:
        scene = Scene(memory, clock, bank)
        a, b = bank.distinct()[:2]
        talk = Talk(scene)
        for text in ("Hello.", "Nice to see you.", "Shall we?"):
            talk.turn([a, b], speaker=1, sync={a: SPEAKS, b: 0.0}, text=text)
        talk.turn([], speaker=2, seconds=7.0, text="Welcome to the show.")
        memory.label(talk.faces[a], "Alice")  # type: ignore[arg-type]
        memory.end_stream("door")
        return {"a": talk.faces[a], "b": talk.faces[b], "v1": talk.voices[1], "v2": talk.voices[2]}  # type: ignore[dict-item]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_export_characters_and_link_by_hand(cfg: MemoryConfig, db: dict[str, int], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "export", "characters", "--db", cfg.db)
    assert code == 0
    (line,) = [json.loads(x) for x in out.splitlines()]
    assert set(line) == {"id", "label", "faces", "voices", "first_seen", "last_seen", "streams"}
    assert (line["label"], line["faces"], line["voices"], line["streams"]) == ("Alice", [db["a"]], [db["v1"]], ["door"])
    assert line["first_seen"] <= line["last_seen"]
    code, out, _ = run(capsys, "export", "voices", "--db", cfg.db)
    assert [(v["node"], v["character"]) for v in map(json.loads, out.splitlines())] == [(db["v1"], line["id"])] * 3 + [(db["v2"], None)]
    code, out, _ = run(capsys, "export", "faces", "--db", cfg.db)
    assert {(f["node"], f["character"]) for f in map(json.loads, out.splitlines())} == {(db["a"], line["id"]), (db["b"], None)}

    assert run(capsys, "character", "link", str(db["b"]), str(db["v2"]), "--db", cfg.db)[0] == 0
    assert run(capsys, "character", "unlink", str(db["a"]), str(db["v1"]), "--db", cfg.db)[0] == 0
    code, out, _ = run(capsys, "export", "characters", "--db", cfg.db)
    (line,) = [json.loads(x) for x in out.splitlines()]
    assert (line["faces"], line["voices"], line["label"]) == ([db["b"]], [db["v2"]], None)

    code, _, err = run(capsys, "character", "link", str(db["a"]), str(db["b"]), "--db", cfg.db)
    assert code == 2 and err.count("\n") == 1 and "joins a face node to a voice node" in err
    code, _, err = run(capsys, "character", "link", "9999", str(db["v1"]), "--db", cfg.db)
    assert code == 2 and err == "streamer: error: no node 9999\n"


def test_show_clip(cfg: MemoryConfig, db: dict[str, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sheet = tmp_path / "sheet.png"
    code, out, _ = run(capsys, "show", "clip", "--db", cfg.db, "--stream", "door", "--clip", "0", "--out", str(sheet))
    assert code == 0
    alice = "Alice (<character_1>)"
    assert f"  {alice} and <face_{db['b']}> were seen and <voice_{db['v2']}> was heard in camera 'door' from " in out
    assert f'  {alice} says: "Nice to see you."' in out and f'<voice_{db["v2"]}> says: "Welcome to the show."' in out
    assert f"  {alice} is Alice" in out  # a semantic memory
    assert f"  <face_{db['a']}> Alice, <character_1>\n" in out and f"  <face_{db['b']}>\n" in out
    assert f"contact sheet: {sheet}" in out
    assert f'<voice_{db["v1"]}> Alice, <character_1>: "Shall we?"' in out  # the speech turns, by voice
    picture = cv2.imread(str(sheet))
    assert picture is not None and picture.shape[0] == 2 * (112 + 22)  # one row per face
    code, _, err = run(capsys, "show", "clip", "--db", cfg.db, "--stream", "door", "--clip", "5")
    assert code == 2 and err == "streamer: error: no clip 5 of stream 'door' in the memory\n"
