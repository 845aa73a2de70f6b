from __future__ import annotations

from pathlib import Path

import pytest
from support.speech import FESTIVAL_VOICES, festival_sentence

from streamer.errors import ModelError
from streamer.voices.asr import Transcriber
from streamer.voices.config import AsrConfig

SENTENCES = [
    ("Please open the kitchen window before dinner.", {"kitchen", "window", "dinner"}),
    ("The train to London leaves at seven tomorrow morning.", {"train", "london", "morning"}),
    ("My sister bought a yellow bicycle last summer.", {"sister", "yellow", "bicycle", "summer"}),
]


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    return Transcriber(AsrConfig())


def words(text: str | None) -> set[str]:
    return {w.strip(".,!?").lower() for w in (text or "").split()}


def test_transcribes_a_spoken_sentence(transcriber: Transcriber) -> None:
    text, keys = SENTENCES[0]
    [got] = transcriber.transcribe([festival_sentence(FESTIVAL_VOICES[0], text)])
    assert keys <= words(got), got


def test_short_turns_share_one_call_and_keep_their_own_words(transcriber: Transcriber) -> None:
    audio = [festival_sentence(v, text) for v, (text, _) in zip(FESTIVAL_VOICES, SENTENCES)]
    calls = transcriber.calls
    got = transcriber.transcribe(audio)
    assert transcriber.calls == calls + 1
    for (_, keys), text in zip(SENTENCES, got):
        assert keys <= words(text), got
        others = set().union(*(k for _, k in SENTENCES)) - keys
        assert not (others & words(text)), got


def test_model_dir_without_a_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no faster-whisper model"):
        Transcriber(AsrConfig(model_dir=str(tmp_path)))
