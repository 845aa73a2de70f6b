"""Audio that arrives with a WebRTC stream, kept as 16 kHz mono for a voice pipeline."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import av
import numpy as np
import numpy.typing as npt

AUDIO_RATE = 16000
CHUNK_SAMPLES = 320  # 20 ms, the usual WebRTC packet length
BUFFER_SECONDS = 30.0


@dataclass(frozen=True)
class AudioChunk:
    t: float  # seconds from the connection's first audio sample, by RTP timestamp
    wall_time: float  # unix seconds when it arrived, to line it up with video frames
    samples: npt.NDArray[np.int16]  # (CHUNK_SAMPLES,) mono at AUDIO_RATE


class AudioBuffer:
    """The last `seconds` of audio as fixed-size chunks; the oldest fall out, nobody has to read them."""

    def __init__(self, seconds: float = BUFFER_SECONDS) -> None:
        self.chunks: deque[AudioChunk] = deque(maxlen=int(seconds * AUDIO_RATE / CHUNK_SAMPLES))
        self._resampler: av.AudioResampler | None = None

    def new_connection(self) -> None:
        """A new peer's audio starts its own clock; nothing is carried over from the last one."""
        self._resampler = None

    def add(self, frame: av.AudioFrame) -> None:
        if self._resampler is None:
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=AUDIO_RATE, frame_size=CHUNK_SAMPLES)
        wall = time.time()
        for out in self._resampler.resample(frame):
            t = float(out.time) if out.time is not None else 0.0
            self.chunks.append(AudioChunk(t, wall, out.to_ndarray().reshape(-1).astype(np.int16, copy=False)))
