from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from support.speech import FESTIVAL_VOICES, Recording, festival_sentence

from streamer.errors import ModelError
from streamer.voice_analyzer import VoiceModelLoader
from streamer.voices.config import AsrConfig, VoicesConfig
from streamer.records import SAMPLE_RATE
from streamer.voices.models import CAMPP_FILE, CAMPP_SHA256, verify
from streamer.voices.speaker import RUN_SAMPLES, SpeakerEmbedder

# Single-speaker stretches of the sample (RTTM, without overlap), >= 1.5 s.
CLEAN = [(8.35, 9.92, "speaker90"), (11.03, 14.49, "speaker90"), (18.59, 21.49, "speaker90"), (14.7, 17.92, "speaker91"),
         (21.78, 27.85, "speaker91"), (28.5, 30.0, "speaker90")]  # fmt: skip


def test_same_speaker_scores_higher_on_real_conversation(sample: Recording, embedder: SpeakerEmbedder) -> None:
    crops = [sample.samples[int(a * SAMPLE_RATE) : int(b * SAMPLE_RATE)] for a, b, _ in CLEAN]
    e = embedder.embed_many(crops)
    assert e.shape == (len(CLEAN), 192) and e.dtype == np.float32
    assert np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    who = np.array([k for _, _, k in CLEAN])
    sims = e @ e.T
    iu = np.triu_indices(len(CLEAN), 1)
    same = sims[iu][(who[:, None] == who[None])[iu]]
    diff = sims[iu][(who[:, None] != who[None])[iu]]
    assert same.mean() > diff.mean() + 0.2
    assert same.min() > diff.max() - 0.05  # nearly separable even in a hard 2-person conversation


def test_festival_voices_are_different_people(embedder: SpeakerEmbedder) -> None:
    texts = ["The weather is lovely this morning in the park.", "I left my umbrella on the train yesterday evening."]
    e = {v: embedder.embed_many([festival_sentence(v, t) for t in texts]) for v in FESTIVAL_VOICES}
    for v in FESTIVAL_VOICES:
        same = float(e[v][0] @ e[v][1])
        for w in FESTIVAL_VOICES:
            if w != v:
                assert same > float(e[v][0] @ e[w][1]) + 0.2, (v, w)


def test_batched_and_single_embeddings_agree(sample: Recording, embedder: SpeakerEmbedder) -> None:
    a, b = sample.samples[8 * SAMPLE_RATE : 10 * SAMPLE_RATE], sample.samples[22 * SAMPLE_RATE : 25 * SAMPLE_RATE]
    batch = embedder.embed_many([a, b, a[:SAMPLE_RATE], b[:SAMPLE_RATE]])
    for x, row in zip([a, b, a[:SAMPLE_RATE], b[:SAMPLE_RATE]], batch):
        assert np.allclose(embedder.embed(x), row, atol=1e-5)


def test_many_equal_windows_run_in_several_batches_and_agree(sample: Recording, embedder: SpeakerEmbedder) -> None:
    # 37 windows of 1.5 s (a 28.5 s segment's sliding windows): more than one run's worth of audio
    win, hop = int(1.5 * SAMPLE_RATE), int(0.75 * SAMPLE_RATE)
    windows = [sample.samples[s : s + win] for s in range(0, 28 * SAMPLE_RATE, hop)]
    assert len(windows) * win > RUN_SAMPLES
    batch = embedder.embed_many(windows)
    for k in (0, 5, len(windows) - 1):
        assert np.allclose(embedder.embed(windows[k]), batch[k], atol=1e-5), k


def test_too_short_input_is_refused(embedder: SpeakerEmbedder) -> None:
    with pytest.raises(ValueError, match="at least 400 samples"):
        embedder.embed(np.zeros(100, dtype=np.float32))


def test_altered_model_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / CAMPP_FILE.name
    shutil.copy(CAMPP_FILE, bad)
    with bad.open("r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02")
    with pytest.raises(ModelError, match=r"^voice model campplus_cn_en_common.onnx is altered \(sha256 .*reinstall"):
        verify(bad, CAMPP_SHA256, "reinstall the streamer package")
    with pytest.raises(ModelError, match="is missing"):
        verify(tmp_path / "nothing.onnx", CAMPP_SHA256, "reinstall the streamer package")


def test_custom_model_path_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="speaker model not found"):
        SpeakerEmbedder(tmp_path / "missing.onnx")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load speaker model broken.onnx"):
        SpeakerEmbedder(broken)


def test_voice_models_wait_for_sound_but_a_missing_file_is_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="speaker model not found"):
        VoiceModelLoader(VoicesConfig(speaker_model=str(tmp_path / "missing.onnx")), AsrConfig(enabled=False))
    with pytest.raises(ModelError, match="no faster-whisper model"):
        VoiceModelLoader(VoicesConfig(), AsrConfig(model_dir=str(tmp_path)))
    loader = VoiceModelLoader(VoicesConfig(), AsrConfig(enabled=False))
    assert not loader.loaded
    models = loader.get()
    assert loader.loaded and loader.get() is models and models.transcriber is None
    assert models.embedder.embed(np.zeros(SAMPLE_RATE, np.float32)).shape == (192,)
