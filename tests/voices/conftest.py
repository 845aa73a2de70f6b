"""Real models and real recorded speech, loaded once per session."""

from __future__ import annotations

import onnxruntime as ort
import pytest
from support.speech import Recording, pyannote_sample

from streamer.voices.speaker import SpeakerEmbedder
from streamer.voices.vad import load_silero


@pytest.fixture(scope="session")
def sample() -> Recording:
    return pyannote_sample()


@pytest.fixture(scope="session")
def embedder() -> SpeakerEmbedder:
    return SpeakerEmbedder()


@pytest.fixture(scope="session")
def silero() -> ort.InferenceSession:
    return load_silero()
