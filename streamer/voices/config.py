"""Settings of the voice path (VAD, speaker turns, speaker embedding) and of transcription.

The defaults were measured on real speech; tools/bench_voices.py reruns the measurements.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from memory.config import StrictModel


class VadConfig(StrictModel):
    threshold: float = Field(
        0.5, gt=0.15, lt=1, description="Silero speech probability that starts speech; it ends below threshold - 0.15."
    )
    min_silence_ms: int = Field(
        100, ge=32, le=2000, description="Silence that ends a segment (300 ms merged different speakers' turns)."
    )
    min_speech_ms: int = Field(250, ge=0, le=5000, description="Shorter segments are dropped as noise.")
    pad_ms: int = Field(30, ge=0, le=500, description="Audio kept on each side of a segment.")
    max_segment_seconds: float = Field(
        30.0, ge=5, le=300, description="A segment with no pause is closed after this long (bounds memory and delay)."
    )


class TurnConfig(StrictModel):
    window_seconds: float = Field(1.5, ge=0.5, le=5, description="Sliding window embedded to find speaker changes.")
    hop_seconds: float = Field(0.75, ge=0.1, le=5, description="Step between sliding windows.")
    change_threshold: float = Field(
        0.3, gt=-1, lt=1, description="Cut where the cosine of two touching windows falls below this."
    )
    overlap_threshold: float = Field(
        0.4, gt=-1, lt=1, description="A window below this cosine to both neighbours is left out of the turn's embedding."
    )
    max_turn_seconds: float = Field(15.0, ge=2, le=60, description="Longer turns are cut at their quietest point.")
    min_embed_seconds: float = Field(0.5, ge=0.1, le=5, description="Shorter turns get no embedding.")
    min_good_seconds: float = Field(
        1.0, ge=0.1, le=10, description="Shorter turns may be matched but never create or reshape a voice identity."
    )

    @model_validator(mode="after")
    def _check(self) -> TurnConfig:
        if self.hop_seconds > self.window_seconds:
            raise ValueError("voices.turns.hop_seconds must not exceed voices.turns.window_seconds")
        if self.min_good_seconds < self.min_embed_seconds:
            raise ValueError("voices.turns.min_good_seconds must be at least voices.turns.min_embed_seconds")
        return self


class VoicesConfig(StrictModel):
    enabled: bool = Field(True, description="Analyse the audio of sources that have it (--no-voices turns it off).")
    buffer_seconds: float = Field(
        30.0, ge=1, le=600, description="Decoded audio held per stream; a live source drops the oldest beyond it."
    )
    speaker_model: str | None = Field(
        None, description="A CAM++-style ONNX speaker model (input 'feats' (B, T, 80), output 'embs'); None: the bundled one."
    )
    threads: int = Field(1, ge=1, le=64, description="onnxruntime threads for the speaker model (2 were not faster).")
    vad: VadConfig = Field(default_factory=VadConfig)
    turns: TurnConfig = Field(default_factory=TurnConfig)


class AsrConfig(StrictModel):
    enabled: bool = Field(True, description="Transcribe speech turns (--no-asr turns it off).")
    model_dir: str | None = Field(
        None, description="A faster-whisper (CTranslate2) model folder; None: the bundled whisper tiny.en."
    )
    language: str | None = Field(None, description="Language code; None: English for .en models, else detected.")
    beam_size: int = Field(1, ge=1, le=10, description="Beam search width (5 loops on hard audio and is 5x slower).")
    cpu_threads: int = Field(1, ge=1, le=64, description="CTranslate2 threads.")
    queue_size: int = Field(64, ge=1, le=10_000, description="Turns waiting for ASR; beyond it the oldest are dropped.")
    batch_seconds: float = Field(
        24.0, ge=1, le=29, description="Audio (turns + gaps) put into one call; whisper reads 30 s windows."
    )
    gap_seconds: float = Field(0.6, ge=0.1, le=3, description="Silence placed between turns grouped into one call.")
