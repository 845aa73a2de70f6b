from __future__ import annotations

import numpy as np
import onnxruntime as ort
from support.speech import FESTIVAL_VOICES, Recording, festival_sentence

from streamer.records import SAMPLE_RATE
from streamer.voices.config import TurnConfig, VadConfig
from streamer.voices.speaker import SpeakerEmbedder
from streamer.voices.turns import Turn, TurnSplitter
from streamer.voices.vad import SpeechSegment, StreamingVad


def turns_of(x: np.ndarray, splitter: TurnSplitter, silero: ort.InferenceSession) -> list[Turn]:
    vad = StreamingVad(VadConfig(), silero)
    segments = vad.feed(x, 0.0) + vad.flush()
    return [turn for seg in segments for turn in splitter.split(seg)]


def test_turns_cut_near_the_reference_speaker_changes(
    sample: Recording, embedder: SpeakerEmbedder, silero: ort.InferenceSession
) -> None:
    turns = turns_of(sample.samples, TurnSplitter(TurnConfig(), embedder), silero)
    bounds = [t.t_start for t in turns] + [t.t_end for t in turns]
    # RTTM changes with at least 2 s of one speaker on each side: 90 -> 91 at 14.49, 91 -> 90 at 27.85.
    for change in (14.49, 27.85):
        assert min(abs(b - change) for b in bounds) <= 0.75, change  # one hop of the sliding window
    assert all(a.t_end <= b.t_start + 1e-6 for a, b in zip(turns, turns[1:]))
    # Turns lying inside one reference speaker's stretch go to that speaker's side of the embedding space.
    long_90 = next(t for t in turns if t.t_start >= 10.5 and t.t_end <= 14.8 and t.good)
    long_91 = next(t for t in turns if t.t_start >= 21.7 and t.t_end <= 28.6 and t.good)
    assert long_90.embedding is not None and long_91.embedding is not None
    assert float(long_90.embedding @ long_91.embedding) < 0.4


def test_change_between_two_people_without_a_pause(embedder: SpeakerEmbedder, silero: ort.InferenceSession) -> None:
    a = festival_sentence(FESTIVAL_VOICES[0], "We walked along the river until the sun went down behind the hills.")
    b = festival_sentence(FESTIVAL_VOICES[2], "Then everybody went home and had a long and quiet dinner together.")
    x = np.concatenate([a, b])
    seg = SpeechSegment(100.0, 100.0 + len(x) / SAMPLE_RATE, x)  # one segment holding both voices
    turns = TurnSplitter(TurnConfig(), embedder).split(seg)
    assert len(turns) == 2
    assert abs(turns[1].t_start - (100.0 + len(a) / SAMPLE_RATE)) <= 0.5
    assert all(t.good and t.embedding is not None for t in turns)
    assert np.array_equal(np.concatenate([t.samples for t in turns]), x)


def test_long_turn_is_capped_at_a_quiet_point(embedder: SpeakerEmbedder) -> None:
    parts = [festival_sentence(FESTIVAL_VOICES[1], f"This is sentence number {n} of a long monologue.") for n in range(4)]
    pause = np.zeros(SAMPLE_RATE // 5, dtype=np.float32)
    x = np.concatenate([p for part in parts for p in (part, pause)])
    cfg = TurnConfig(max_turn_seconds=5)
    turns = TurnSplitter(cfg, embedder).split(SpeechSegment(0.0, len(x) / SAMPLE_RATE, x))
    assert len(turns) >= 2 and all(t.duration <= 5 for t in turns)
    for t in turns[1:]:  # cut inside a pause, not through a word
        i = int(round(t.t_start * SAMPLE_RATE))
        assert np.abs(x[i - 80 : i + 80]).max() < 0.01


def test_short_turn_is_matched_but_not_good(sample: Recording, embedder: SpeakerEmbedder) -> None:
    splitter = TurnSplitter(TurnConfig(), embedder)
    x = sample.samples[int(6.75 * SAMPLE_RATE) : int(7.45 * SAMPLE_RATE)]  # 0.7 s
    [turn] = splitter.split(SpeechSegment(6.75, 7.45, x))
    assert turn.embedding is not None and not turn.good
    y = x[: int(0.3 * SAMPLE_RATE)]
    [tiny] = splitter.split(SpeechSegment(6.75, 7.05, y))
    assert tiny.embedding is None and not tiny.good
