"""Speaker turns: cut a VAD segment where the speaker changes, and embed each turn."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..records import SAMPLE_RATE
from .config import TurnConfig
from .speaker import SpeakerEmbedder
from .vad import SpeechSegment

log = logging.getLogger(__name__)

QUIET_FRAME = SAMPLE_RATE // 50  # 20 ms: resolution of the search for a quiet cut point


@dataclass
class Turn:
    t_start: float  # stream time, seconds
    t_end: float
    samples: npt.NDArray[np.float32]  # (n,) 16 kHz mono
    embedding: npt.NDArray[np.float32] | None  # (d,) unit vector; None: too short to embed
    good: bool  # long and clean enough to create or reshape a voice identity

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def quietest_point(samples: npt.NDArray[np.float32], a: int, b: int) -> int:
    """Sample index in [a, b) at the centre of the lowest-energy 20 ms frame (a pause, if there is one)."""
    a, b = max(a, 0), min(b, len(samples))
    n = (b - a) // QUIET_FRAME
    if n < 2:
        return (a + b) // 2
    energy = (samples[a : a + n * QUIET_FRAME].reshape(n, QUIET_FRAME) ** 2).sum(axis=1)
    return a + int(np.argmin(energy)) * QUIET_FRAME + QUIET_FRAME // 2


class TurnSplitter:
    """`split(segment)` -> turns in time order. Windows of window_seconds every hop_seconds are
    embedded; two windows that touch (one starts where the other ends) and score below
    change_threshold mark a speaker change, cut at the quietest point near their boundary."""

    def __init__(self, cfg: TurnConfig, embedder: SpeakerEmbedder) -> None:
        self.cfg = cfg
        self.embedder = embedder
        self._win = int(cfg.window_seconds * SAMPLE_RATE)
        self._hop = int(cfg.hop_seconds * SAMPLE_RATE)
        self._touch = -(-self._win // self._hop)  # window i touches window i + _touch

    def split(self, seg: SpeechSegment) -> list[Turn]:
        x = seg.samples
        starts = np.arange(0, len(x) - self._win + 1, self._hop)
        windows = self.embedder.embed_many([x[s : s + self._win] for s in starts]) if len(starts) else np.empty((0, 0))
        k = self._touch
        touching = (windows[:-k] * windows[k:]).sum(axis=1) if len(starts) > k else np.empty(0)
        bounds = [0, *self._cuts(x, starts, touching), len(x)]
        bounds = self._cap(x, bounds)
        return [self._turn(seg, starts, windows, a, b) for a, b in zip(bounds[:-1], bounds[1:])]

    def _cuts(self, x: npt.NDArray[np.float32], starts: npt.NDArray[np.int64], touching: npt.NDArray[np.float32]) -> list[int]:
        """Cut points: the least similar boundaries first, at least one window apart."""
        chosen: list[int] = []
        for i in np.argsort(touching):
            if touching[i] >= self.cfg.change_threshold:
                break
            boundary = int(starts[i]) + self._win
            if all(abs(boundary - c) >= self._win for c in chosen):
                chosen.append(boundary)
        return sorted(quietest_point(x, c - self._hop // 2, c + self._hop // 2) for c in chosen)

    def _cap(self, x: npt.NDArray[np.float32], bounds: list[int]) -> list[int]:
        """Cut turns longer than max_turn_seconds at the quietest point between half the cap and the cap."""
        cap = int(self.cfg.max_turn_seconds * SAMPLE_RATE)
        out = [bounds[0]]
        for b in bounds[1:]:
            while b - out[-1] > cap:
                out.append(quietest_point(x, out[-1] + cap // 2, out[-1] + cap))
            out.append(b)
        return out

    def _turn(
        self, seg: SpeechSegment, starts: npt.NDArray[np.int64], windows: npt.NDArray[np.float32], a: int, b: int
    ) -> Turn:
        cfg = self.cfg
        keep = np.ones(b - a, dtype=bool)
        # Overlapped speech: a window inside the turn that fits neither touching neighbour is left out.
        inside = [i for i, s in enumerate(starts) if s >= a and s + self._win <= b]
        k = self._touch
        for i in inside:
            if i - k in inside and i + k in inside:
                if max(windows[i] @ windows[i - k], windows[i] @ windows[i + k]) < cfg.overlap_threshold:
                    keep[starts[i] - a : starts[i] - a + self._win] = False
        samples = seg.samples[a:b]
        clean = samples[keep]
        embedding = self.embedder.embed(clean) if len(clean) >= cfg.min_embed_seconds * SAMPLE_RATE else None
        good = embedding is not None and len(clean) >= cfg.min_good_seconds * SAMPLE_RATE
        if not keep.all():
            log.debug("turn at %.2f s: %.2f s of overlapped speech left out", seg.t_start + a / SAMPLE_RATE, (~keep).sum() / SAMPLE_RATE)
        t0 = seg.t_start + a / SAMPLE_RATE
        return Turn(t0, t0 + len(samples) / SAMPLE_RATE, samples.copy(), embedding, good)
