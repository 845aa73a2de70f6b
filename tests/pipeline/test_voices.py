"""The whole pipeline with sound: real recorded speech under real faces, through to voice identities."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from memory import Memory
from streamer.app import App, RunSummary
from streamer.config import Config, load_config
from streamer.demo.cast import Person
from streamer.demo.compose import Cut, render_video
from streamer.demo.speech import MEDIA, Conversation, floor_holders, load_conversation
from streamer.faces.models import ModelPack
from support.speech import speaker_of

pytestmark = pytest.mark.timeout(300)

E, F = 4, 5


def _config(video: Path, db: Path, **extra: Any) -> Config:
    overrides = {"cameras": [{"name": "cam", "url": str(video)}], "memory.db": str(db), "mqtt.enabled": False}
    return load_config(overrides={**overrides, **extra}, environ={})


def _run(cfg: Config, pack: ModelPack) -> RunSummary:
    return asyncio.run(App(cfg).run(pack))


@pytest.fixture(scope="module")
def conversation() -> Conversation:
    return load_conversation()


@pytest.fixture(scope="module")
def talking_heads(cast: list[Person], media_dir: Path, conversation: Conversation) -> Path:
    """Two real people in hard cuts, each shown while their own recorded voice holds the floor."""
    head = dict(zip(conversation.speakers, (E, F)))
    spans = floor_holders(conversation.turns)
    script = [Cut(head[s.speaker], 0.0 if k == 0 else s.start, spans[k + 1].start if k + 1 < len(spans) else conversation.duration)
              for k, s in enumerate(spans)]  # fmt: skip
    path = media_dir / "talking_heads.mp4"
    render_video(path, cast, script, audio=conversation.samples, audio_rate=conversation.rate)
    return path


def _voices(db: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    with Memory(_config(Path("unused"), db).memory) as memory:
        return list(memory.export_voices()), [n for n in memory.export_nodes() if n["kind"] == "voice"]


def test_each_real_speaker_gets_one_voice_identity(
    talking_heads: Path, pack: ModelPack, tmp_path: Path, conversation: Conversation
) -> None:
    db = tmp_path / "memory.db"
    summary = _run(_config(talking_heads, db), pack)
    turns, nodes = _voices(db)
    assert summary.voices["cam"].turns == len(turns) > 0

    # Speech time per (reference speaker, node): one node per speaker, no node shared by both.
    time_of: dict[str, Counter[int | None]] = defaultdict(Counter)
    for turn in turns:
        speaker, share = speaker_of(turn, conversation.turns)
        if speaker is not None and share >= 0.7:  # a turn mostly one person's (not an overlap)
            time_of[speaker][turn["node"]] += turn["t_end"] - turn["t_start"]
    assert set(time_of) == set(conversation.speakers)
    node = {speaker: counts.most_common(1)[0][0] for speaker, counts in time_of.items()}
    assert None not in node.values() and len(set(node.values())) == 2, f"got {dict(time_of)}"
    for speaker, counts in time_of.items():
        assert counts[node[speaker]] >= 0.8 * sum(counts.values()), f"{speaker}'s speech is split: {counts}"
    assert {n["id"] for n in nodes} == set(node.values()), "no voice identity beyond the two speakers"

    # Turns are cut near the reference's changes of speaker, and most speech has an identity.
    speech = sum(s.end - s.start for s in floor_holders(conversation.turns))
    assert sum(t["t_end"] - t["t_start"] for t in turns if t["node"] is not None) >= 0.7 * speech
    assert all(t["character"] is None for t in turns)

    # What was said: the transcript holds the conversation's words.
    said = " ".join(t["text"] or "" for t in turns).lower()
    assert "chicago" in said and "jersey" in said, said

    # A second run over the same file makes no new voice identity.
    _run(_config(talking_heads, db), pack)
    _, nodes_again = _voices(db)
    assert {n["id"] for n in nodes_again} == {n["id"] for n in nodes}


def test_no_voices_reads_no_audio(talking_heads: Path, pack: ModelPack, tmp_path: Path) -> None:
    db = tmp_path / "memory.db"
    cfg = _config(talking_heads, db, **{"voices.enabled": False})
    app = App(cfg)
    summary = asyncio.run(app.run(pack))
    assert summary.voices == {}
    assert sum(s.faces for s in summary.streams.values()) > 0
    turns, nodes = _voices(db)
    assert turns == [] and nodes == []


def test_voice_models_load_only_when_a_stream_has_sound(
    cast: list[Person], talking_heads: Path, pack: ModelPack, media_dir: Path, tmp_path: Path
) -> None:
    silent = media_dir / "silent_heads.mp4"
    render_video(silent, cast, [Cut(E, 0.0, 3.0), Cut(F, 3.0, 6.0)])  # no soundtrack
    app = App(_config(silent, tmp_path / "silent.db"))
    summary = asyncio.run(app.run(pack))
    assert sum(s.faces for s in summary.streams.values()) > 0
    assert app._parts.voice_models is not None and not app._parts.voice_models.loaded
    assert [v.turns for v in summary.voices.values()] in ([], [0])
    app = App(_config(talking_heads, tmp_path / "heard.db", **{"asr.enabled": False}))
    summary = asyncio.run(app.run(pack))
    assert app._parts.voice_models is not None and app._parts.voice_models.loaded and summary.voices["cam"].turns > 0


def test_an_audio_only_file_gives_voices_and_exports_them(tmp_path: Path) -> None:
    """Through the command, as a user runs it: `streamer run meeting.wav`, then `export voices`."""
    db = tmp_path / "memory.db"
    run = subprocess.run(
        [sys.executable, "-m", "streamer", "run", str(MEDIA / "conversation.wav"), "--db", str(db), "--no-mqtt", "--no-asr", "-q"],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    out = subprocess.run(
        [sys.executable, "-m", "streamer", "export", "voices", "--db", str(db)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert rows and all(set(r) == {"stream", "t_start", "t_end", "wall_time", "node", "character", "text"} for r in rows)
    assert {r["stream"] for r in rows} == {"conversation"}
    assert all(r["text"] is None for r in rows)  # --no-asr
    assert all(0 <= r["t_start"] < r["t_end"] <= 30.1 for r in rows)
    assert len({r["node"] for r in rows if r["node"] is not None}) == 2
