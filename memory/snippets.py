"""A few seconds of each voice, kept to be heard (the gallery) when `voice_snippet_seconds` > 0.

Off by default: a voice recording is personal data. Each voice node keeps one snippet, from its
longest good turn so far (the clearest sample of the voice), cut to the first
`voice_snippet_seconds` and stored as a 16 kHz mono 16-bit WAV. `memory.forget` deletes it.
"""

from __future__ import annotations

import io
import wave

import numpy as np
import numpy.typing as npt

from .store import Store

SAMPLE_RATE = 16_000


def wav_bytes(samples: npt.NDArray[np.float32]) -> bytes:
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())
    return out.getvalue()


class VoiceSnippets:
    def __init__(self, store: Store, seconds: float) -> None:
        self._store = store
        self.seconds = seconds
        self._quality = store.snippet_qualities() if seconds > 0 else {}  # node -> seconds of the turn it came from

    def offer(self, node_id: int, turn_seconds: float, samples: npt.NDArray[np.float32]) -> None:
        """A good turn of a voice; kept if it is the voice's longest so far."""
        if self.seconds <= 0 or turn_seconds <= self._quality.get(node_id, 0.0):
            return
        self._quality[node_id] = turn_seconds
        self._store.save_snippet(node_id, turn_seconds, wav_bytes(samples[: int(self.seconds * SAMPLE_RATE)]))

    def forget(self, node_ids: set[int]) -> None:
        for n in node_ids:
            self._quality.pop(n, None)
