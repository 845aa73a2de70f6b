"""Voice snippets (opt-in): the longest good turn's first seconds kept as WAV, heard in the gallery
(Chromium loads it), never kept by default, gone with `forget`; kept and replaced on both stores."""

from __future__ import annotations

import asyncio
import io
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from support.chromium_tab import chromium
from support.postgres import STORES

from memory import Memory, MemoryConfig, SpeechTurn
from memory.database import open_database
from memory.query import MemoryQuery
from streamer.gallery.data import GalleryData
from streamer.gallery.site import write_site
from support.speech import SAMPLE_RATE, pyannote_sample


def turns(memory: Memory, lengths: list[float]) -> int:
    """Good turns of one real speaker of the recorded conversation, cut to the given lengths; returns the voice."""
    rec = pyannote_sample()
    span = max((s for s in rec.spans if s.speaker == rec.speakers[0]), key=lambda s: s.end - s.start)
    audio = rec.samples[int(span.start * SAMPLE_RATE) : int(span.end * SAMPLE_RATE)]
    voice = np.random.default_rng(3).standard_normal(192).astype(np.float32)
    voice /= np.linalg.norm(voice)
    node = None
    t, now = 0.0, time.time()
    for seconds in lengths:
        samples = audio[: int(seconds * SAMPLE_RATE)]
        assert len(samples) == int(seconds * SAMPLE_RATE), "the recording's longest turn is too short for this test"
        node = memory.add_turn(SpeechTurn("room", memory.new_track_id(), t, t + seconds, now + t, voice, True, audio=samples))
        t += seconds + 1.0
    memory.flush()
    assert node is not None
    return node


def snippets(db: Path | str) -> list[tuple[int, float, bytes]]:
    con = open_database(str(db), read_only=True)
    try:
        return list(con.execute("SELECT node_id, quality, wav FROM voice_snippets").fetchall())
    finally:
        con.close()


def test_off_by_default(tmp_path: Path) -> None:
    with Memory(MemoryConfig(db=str(tmp_path / "m.db"))) as memory:
        turns(memory, [3.0, 4.0])
    assert snippets(tmp_path / "m.db") == []


@pytest.mark.timeout(120)
def test_longest_turn_kept_heard_in_the_gallery_and_forgotten(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with Memory(MemoryConfig(db=str(db), voice_snippet_seconds=2.0)) as memory:
        voice = turns(memory, [2.5, 4.0, 3.0])  # the 4 s turn is the one kept
    [(node, quality, wav)] = snippets(db)
    assert node == voice and quality == pytest.approx(4.0)
    with wave.open(io.BytesIO(wav)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getnframes()) == (SAMPLE_RATE, 1, 2 * SAMPLE_RATE)
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32767.0
    assert float(np.abs(pcm).max()) > 0.01  # real speech, not silence

    site = tmp_path / "site"
    write_site(db, site)
    assert (site / "voices" / f"{voice}.wav").read_bytes() == wav

    async def listen() -> None:
        async with chromium(tmp_path / "profile") as tab:
            await tab.open((site / "index.html").as_uri())
            for _ in range(100):  # metadata loads after the page
                if await tab.js("document.querySelector('audio').readyState >= 1"):
                    break
                await asyncio.sleep(0.1)
            assert await tab.js("document.querySelector('audio').duration") == pytest.approx(2.0, abs=0.01)

    asyncio.run(listen())
    with Memory(MemoryConfig(db=str(db), voice_snippet_seconds=2.0)) as memory:
        assert memory.forget(str(voice)).snippets == 1
    assert snippets(db) == []
    write_site(db, site)
    assert not list((site / "voices").iterdir())


@pytest.mark.parametrize("cfg", STORES, indirect=True)
def test_a_longer_turn_replaces_the_snippet_and_forget_takes_it(cfg: MemoryConfig) -> None:
    cfg = cfg.model_copy(update={"voice_snippet_seconds": 2.0})
    with Memory(cfg) as memory:
        voice = turns(memory, [2.5, 4.0, 3.0])
        with MemoryQuery(cfg.db) as query:
            wav = GalleryData(query).snippet(voice)  # as the live gallery serves it
        assert wav is not None and snippets(cfg.db) == [(voice, pytest.approx(4.0), wav)]
        assert memory.forget(str(voice)).snippets == 1
    assert snippets(cfg.db) == []
