"""Decoded audio frames to AudioChunks: 16 kHz mono float32, stamped with stream time."""

from __future__ import annotations

import av
import numpy as np
import numpy.typing as npt

from ..records import SAMPLE_RATE, AudioChunk
from .clock import MAX_LIVE_JUMP_SECONDS, StreamClock

# PTS this close to where the last chunk ended continue it: resampler delay and rounding, not a gap.
CONTIGUOUS_SECONDS = 0.02


def new_resampler() -> av.AudioResampler:
    return av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)


class AudioChunker:
    """Resamples one stream's decoded audio and stamps each chunk through the source's clock.

    Chunks follow each other without gaps or overlaps: a chunk whose PTS lands within
    CONTIGUOUS_SECONDS of the last one's end continues it; one that overlaps it loses the samples
    already delivered; a real gap (lost packets, a reconnect) shows as a jump forward in time.
    """

    def __init__(self, stream: str, clock: StreamClock, *, live: bool) -> None:
        self.stream = stream
        self._clock = clock
        self._live = live
        self._resampler: av.AudioResampler | None = None
        self._end: float | None = None  # stream time where the last chunk ended
        self._end_wall = 0.0

    def new_segment(self) -> None:
        """A new connection: its audio may come in another format; what the old resampler held is lost."""
        self._resampler = None

    def chunks(self, frame: av.AudioFrame | None, wall: float) -> list[AudioChunk]:
        """The chunks for one decoded frame; None flushes what the resampler still holds (end of file)."""
        if frame is None:
            resampled = self._resampler.resample(None) if self._resampler is not None else []
        else:
            resampled = self._resample(frame)
        out = []
        for res in resampled:
            chunk = self._stamp(res.to_ndarray().reshape(-1), res.time, wall)
            if chunk is not None:
                out.append(chunk)
        return out

    def _resample(self, frame: av.AudioFrame) -> list[av.AudioFrame]:
        if self._resampler is None:
            self._resampler = new_resampler()
        try:
            return self._resampler.resample(frame)
        except ValueError:  # the rate or layout changed mid-stream: start over with the new format
            self._resampler = new_resampler()
            return self._resampler.resample(frame)

    def _stamp(self, samples: npt.NDArray[np.float32], pts: float | None, wall: float) -> AudioChunk | None:
        end = self._end
        mapped = self._clock.audio_t(pts, wall) if pts is not None else None
        if end is None:
            t = mapped if mapped is not None else self._clock.audio_t(0.0, wall)
        elif mapped is None or abs(mapped - end) <= CONTIGUOUS_SECONDS or self._jumped(mapped, wall):
            t = end
        elif mapped < end:  # overlaps what was delivered: keep only the new samples
            samples = samples[round((end - mapped) * SAMPLE_RATE) :]
            if not len(samples):
                return None
            t = end
        else:
            t = mapped
        self._end, self._end_wall = t + len(samples) / SAMPLE_RATE, wall
        return AudioChunk(self.stream, t, wall, np.ascontiguousarray(samples, dtype=np.float32))

    def _jumped(self, mapped: float, wall: float) -> bool:
        """A live stream's PTS running far ahead of the wall clock: a discontinuity, not silence."""
        assert self._end is not None
        return self._live and (mapped - self._end) - (wall - self._end_wall) > MAX_LIVE_JUMP_SECONDS
