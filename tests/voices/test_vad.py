from __future__ import annotations

import numpy as np
import onnxruntime as ort
from support.speech import Recording

from streamer.records import SAMPLE_RATE
from streamer.voices.config import VadConfig
from streamer.voices.vad import SpeechSegment, StreamingVad

FRAME = 0.01


def feed_in_pieces(vad: StreamingVad, x: np.ndarray, t0: float = 0.0, seed: int = 0) -> list[SpeechSegment]:
    rng = np.random.default_rng(seed)
    out, i = [], 0
    while i < len(x):
        n = int(rng.integers(50, 4000))  # decoders hand over chunks of any size
        out += vad.feed(x[i : i + n], t0 + i / SAMPLE_RATE)
        i += n
    return out


def mask(spans: list[tuple[float, float]], seconds: float) -> np.ndarray:
    m = np.zeros(int(seconds / FRAME), dtype=bool)
    for a, b in spans:
        m[int(a / FRAME) : int(b / FRAME)] = True
    return m


def test_finds_the_reference_speech(sample: Recording, silero: ort.InferenceSession) -> None:
    vad = StreamingVad(VadConfig(), silero)
    segments = feed_in_pieces(vad, sample.samples) + vad.flush()
    ref = mask([(s.start, s.end) for s in sample.spans], 30)
    hyp = mask([(s.t_start, s.t_end) for s in segments], 30)
    assert (ref & ~hyp).sum() / ref.sum() < 0.03, "missed speech"
    assert (hyp & ~ref).sum() / ref.sum() < 0.03, "false alarm"
    assert all(a.t_end <= b.t_start for a, b in zip(segments, segments[1:]))
    for s in segments:
        assert len(s.samples) == round((s.t_end - s.t_start) * SAMPLE_RATE)
        start = int(round(s.t_start * SAMPLE_RATE))
        assert np.array_equal(s.samples, sample.samples[start : start + len(s.samples)])
    assert abs(segments[0].t_start - sample.spans[0].start) < 0.1  # first onset at 6.69 s


def test_silence_gives_nothing(silero: ort.InferenceSession) -> None:
    vad = StreamingVad(VadConfig(), silero)
    quiet = np.random.default_rng(1).normal(0, 0.003, 10 * SAMPLE_RATE).astype(np.float32)
    assert feed_in_pieces(vad, quiet) + vad.flush() == []


def test_gap_in_stream_time_closes_the_segment(sample: Recording, silero: ort.InferenceSession) -> None:
    # Speech from 21.8 s on; drop 3 s of audio in the middle of it, as a live source falling behind does.
    x = sample.samples
    cut_a, cut_b = 24 * SAMPLE_RATE, 27 * SAMPLE_RATE
    vad = StreamingVad(VadConfig(), silero)
    out = feed_in_pieces(vad, x[20 * SAMPLE_RATE : cut_a], t0=20.0)
    out += feed_in_pieces(vad, x[cut_b:], t0=27.0, seed=1) + vad.flush()
    assert not any(s.t_start < 26.9 and s.t_end > 24.1 for s in out), "a segment spans the dropped audio"
    before = [s for s in out if s.t_end <= 24.0 + 1e-6]
    after = [s for s in out if s.t_start >= 27.0 - 1e-6]
    assert before and after
    assert before[-1].t_end > 23.9  # the open segment was closed at the gap, not lost
    start = int(round(after[0].t_start * SAMPLE_RATE))
    assert np.array_equal(after[0].samples, x[start : start + len(after[0].samples)])


def test_long_speech_is_closed_at_max_segment(sample: Recording, silero: ort.InferenceSession) -> None:
    vad = StreamingVad(VadConfig(max_segment_seconds=5), silero)
    out = feed_in_pieces(vad, sample.samples) + vad.flush()
    assert max(s.t_end - s.t_start for s in out) <= 5 + 0.1
