"""Take a source's audio the way the voice path does (a thread on its AudioBuffer) and look at it."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from streamer.records import SAMPLE_RATE, AudioChunk
from streamer.sources.audio_buffer import AudioBuffer


class Listener:
    """Drains `buffer` in a thread until it is done (or `stop()`); the chunks land in `chunks`."""

    def __init__(self, buffer: AudioBuffer | None) -> None:
        assert buffer is not None, "the source has no audio buffer"
        self.buffer = buffer
        self.chunks: list[AudioChunk] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def seconds(self) -> float:
        return sum(c.seconds for c in self.chunks)

    def join(self, timeout: float = 10) -> list[AudioChunk]:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the audio buffer never ended"
        return self.chunks

    def stop(self) -> list[AudioChunk]:
        self._stop.set()
        return self.join()

    def _run(self) -> None:
        while not self._stop.is_set() and not self.buffer.done:
            chunk = self.buffer.get(0.05)
            if chunk is not None:
                self.chunks.append(chunk)


def samples(chunks: Sequence[AudioChunk]) -> npt.NDArray[np.float32]:
    return np.concatenate([c.samples for c in chunks])


def assert_well_formed(chunks: Sequence[AudioChunk], stream: str = "cam") -> None:
    """Mono float32 in [-1, 1], one stream, each chunk starting at or after the end of the last."""
    assert chunks
    for c in chunks:
        assert c.stream == stream and c.samples.dtype == np.float32 and c.samples.ndim == 1
        assert np.abs(c.samples).max(initial=0) <= 1.0
    assert all(b.t >= a.t_end - 1e-6 for a, b in zip(chunks, chunks[1:])), "audio time never goes back"


def assert_contiguous(chunks: Sequence[AudioChunk]) -> None:
    assert [b.t for b in chunks[1:]] == pytest.approx([a.t_end for a in chunks[:-1]], abs=1e-6), "gap-less"


def peak_hz(x: npt.NDArray[np.float32]) -> float:
    return float(np.argmax(np.abs(np.fft.rfft(x))) * SAMPLE_RATE / len(x))


def onset(chunks: Sequence[AudioChunk], level: float = 0.05) -> float:
    """Stream time of the first sample louder than `level`."""
    for c in chunks:
        loud = np.flatnonzero(np.abs(c.samples) > level)
        if len(loud):
            return c.t + loud[0] / SAMPLE_RATE
    raise AssertionError("no sound in the audio")
