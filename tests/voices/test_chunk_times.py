"""The chunk times a stream's voice path keeps to date its turns: the turn's own chunk, and only the
recent stretch of stream a turn can still start in."""

from __future__ import annotations

import itertools

import numpy as np

from streamer.records import SAMPLE_RATE, AudioChunk
from streamer.sources.audio_buffer import AudioBuffer
from streamer.voice_analyzer import VoiceAnalyzer, VoiceModelLoader
from streamer.voices.chunk_times import CHUNK_TIMES_SLACK_SECONDS, ChunkTimes
from streamer.voices.config import AsrConfig, VoicesConfig


class NoTurns:
    """The memory port of a stream that never speaks: any call is a failure of the test."""

    def turns(self, *args: object) -> tuple[list[int | None], bool]:
        raise AssertionError("silence made a speech turn")

    def speaker_evidence(self, *args: object) -> bool:
        raise AssertionError("silence made speaker evidence")

    def transcribed(self, *args: object) -> bool:
        raise AssertionError("silence was transcribed")


def test_a_turn_is_dated_by_the_chunk_it_starts_in() -> None:
    times = ChunkTimes()
    for k in range(10):  # decoded in bursts: wall time does not follow stream time
        times.add(0.5 * k, 1000.0 + 0.01 * k + (5.0 if k >= 6 else 0.0))
    assert times.wall_at(1.2) == 1000.02 + 0.2
    assert times.wall_at(3.1) == 1005.06 + 0.1
    times.forget_before(2.2)
    assert times.wall_at(2.2) == 1000.04 + 0.2  # the chunk holding the time stays
    assert times.wall_at(1.0) == 1000.04 - 1.0  # before the oldest kept: from the oldest


def test_a_long_stream_keeps_only_the_stretch_a_turn_can_start_in() -> None:
    cfg = VoicesConfig()
    audio = AudioBuffer(max_seconds=1000.0, drop_oldest=False)
    quiet = np.random.default_rng(0).normal(0.0, 1e-4, SAMPLE_RATE).astype(np.float32)
    seconds = 300
    for k in range(seconds):
        assert audio.put(AudioChunk("cam", float(k), 1000.0 + k, quiet))
    audio.close()
    voice = VoiceAnalyzer("cam", audio, cfg, VoiceModelLoader(cfg, AsrConfig(enabled=False)), NoTurns(), None,
                          lambda: None, itertools.count(1))  # fmt: skip
    voice.start()
    voice.finish(timeout=120)
    assert not voice.running and voice.failed is None
    assert voice.stats.audio_seconds == seconds
    kept = cfg.vad.max_segment_seconds + CHUNK_TIMES_SLACK_SECONDS
    assert kept <= voice.chunk_times.span() <= kept + 1.0  # a count alone kept all 300 s
