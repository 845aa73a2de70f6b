"""Streaming voice activity detection: Silero VAD on 32 ms chunks, state carried across chunks."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from ..errors import ModelError
from ..onnx_options import session_options
from ..records import SAMPLE_RATE
from .config import VadConfig
from .models import silero_file

log = logging.getLogger(__name__)

CHUNK = 512  # samples per model step at 16 kHz (32 ms): the only size Silero accepts
CONTEXT = 64  # samples of the previous chunk the model sees in front of each chunk
GAP_TOLERANCE = 0.05  # seconds: a chunk starting further than this from where the last one ended is a gap


@dataclass
class SpeechSegment:
    t_start: float  # stream time of samples[0], seconds
    t_end: float
    samples: npt.NDArray[np.float32]  # (n,) 16 kHz mono, padded on both sides

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def load_silero() -> ort.InferenceSession:
    """One session can serve every stream's StreamingVad (each keeps its own state)."""
    path = silero_file()
    try:
        return ort.InferenceSession(str(path), sess_options=session_options(threads=1), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own untyped errors for a corrupt file
        raise ModelError(f"cannot load VAD model {path.name}: {str(e).splitlines()[0]}") from None


class _Samples:
    """Growing audio store addressed by absolute sample index; the prefix before `start` can be dropped."""

    def __init__(self) -> None:
        self._data = np.zeros(SAMPLE_RATE * 4, dtype=np.float32)
        self.start = 0  # absolute index of _data[0]
        self.end = 0  # absolute index one past the last sample

    def append(self, samples: npt.NDArray[np.float32]) -> None:
        used = self.end - self.start
        if used + len(samples) > len(self._data):
            grown = np.zeros(max(2 * len(self._data), used + len(samples)), dtype=np.float32)
            grown[:used] = self._data[:used]
            self._data = grown
        self._data[used : used + len(samples)] = samples
        self.end += len(samples)

    def get(self, a: int, b: int) -> npt.NDArray[np.float32]:
        return self._data[max(a, self.start) - self.start : b - self.start].copy()

    def drop_before(self, index: int) -> None:
        cut = min(max(index, self.start), self.end) - self.start
        if cut > len(self._data) // 2:  # compact only now and then: moving the tail costs a copy
            self._data[: self.end - self.start - cut] = self._data[cut : self.end - self.start]
            self.start += cut


class StreamingVad:
    """Feed 16 kHz float32 chunks of any length with their stream time; get back finished segments.

    Hysteresis as in Silero's own iterator: speech starts at a chunk scoring >= threshold and ends
    after min_silence of chunks scoring < threshold - 0.15. A chunk that does not follow on from the
    previous one (dropped audio on a live source, a restarted stream) closes the open segment and
    resets the model state.
    """

    def __init__(self, cfg: VadConfig, session: ort.InferenceSession | None = None) -> None:
        self.cfg = cfg
        self._session = session or load_silero()
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)
        self._min_silence = cfg.min_silence_ms * SAMPLE_RATE // 1000
        self._min_speech = cfg.min_speech_ms * SAMPLE_RATE // 1000
        self._pad = cfg.pad_ms * SAMPLE_RATE // 1000
        self._max_segment = int(cfg.max_segment_seconds * SAMPLE_RATE)
        self.speech_seconds = 0.0  # total length of the segments returned
        self._reset()

    def _reset(self) -> None:
        self._t0: float | None = None  # stream time of absolute sample 0
        self._audio = _Samples()
        self._done = 0  # samples already scored by the model
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, CONTEXT), dtype=np.float32)
        self._speech_start: int | None = None
        self._silence_start: int | None = None

    def feed(self, samples: npt.NDArray[np.float32], t: float) -> list[SpeechSegment]:
        """Segments that ended within or before these samples; `t` is the stream time of samples[0]."""
        out: list[SpeechSegment] = []
        if self._t0 is not None and abs(t - (self._t0 + self._audio.end / SAMPLE_RATE)) > GAP_TOLERANCE:
            log.debug("audio gap at %.3f s: VAD state reset", t)
            out += self.flush()
        if self._t0 is None:
            self._t0 = t
        self._audio.append(np.asarray(samples, dtype=np.float32).reshape(-1))
        while self._audio.end - self._done >= CHUNK:
            out += self._step(self._done)
            self._done += CHUNK
        keep = self._done - self._pad - CONTEXT if self._speech_start is None else self._speech_start - self._pad
        self._audio.drop_before(keep)
        return out

    def flush(self) -> list[SpeechSegment]:
        """Close the open segment (end of stream, or before a gap) and reset the state."""
        out = []
        if self._speech_start is not None:
            end = self._silence_start if self._silence_start is not None else self._done
            out += self._emit(self._speech_start, end)
        self._reset()
        return out

    def _step(self, i: int) -> list[SpeechSegment]:
        x = np.concatenate([self._context, self._audio.get(i, i + CHUNK)[None, :]], axis=1)
        prob, self._state = self._session.run(None, {"input": x, "state": self._state, "sr": self._sr})
        self._context = x[:, -CONTEXT:]
        p = float(prob[0, 0])
        if p >= self.cfg.threshold:
            self._silence_start = None
            if self._speech_start is None:
                self._speech_start = i
        elif self._speech_start is not None and p < self.cfg.threshold - 0.15:
            if self._silence_start is None:
                self._silence_start = i
            if i + CHUNK - self._silence_start >= self._min_silence:
                out = self._emit(self._speech_start, self._silence_start)
                self._speech_start = self._silence_start = None
                return out
        if self._speech_start is not None and i + CHUNK - self._speech_start >= self._max_segment:
            out = self._emit(self._speech_start, i + CHUNK)
            self._speech_start, self._silence_start = i + CHUNK, None
            return out
        return []

    def _emit(self, start: int, end: int) -> list[SpeechSegment]:
        if end - start < self._min_speech:
            return []
        a, b = max(start - self._pad, self._audio.start), min(end + self._pad, self._audio.end)
        assert self._t0 is not None
        seg = SpeechSegment(self._t0 + a / SAMPLE_RATE, self._t0 + b / SAMPLE_RATE, self._audio.get(a, b))
        self.speech_seconds += seg.duration
        return [seg]
