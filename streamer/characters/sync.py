"""Audio-visual synchrony of one speech turn: how each visible face's mouth moves with the speech.

Per face track visible for most of the turn: a mouth patch is placed at every source frame from
SCRFD's keypoints (interpolated between the 5 fps analysed frames), normalised in size, angle and
contrast; its mean absolute change between frames (worked out for each frame as soon as the
analysis has passed it, `develop`, so that no frame is kept for long) is correlated with the log
energy of the turn's audio over the same frame intervals. On real talking heads this correlates
0.18-0.48 with the person's own speech and ~0 with other speech: weak, so it is evidence to
accumulate, not a verdict.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from ..records import SAMPLE_RATE
from ..sources.grey_ring import GreyFrame
from .mouths import Sighting

log = logging.getLogger(__name__)

PATCH_SIZE = (32, 20)  # (w, h) of the normalised mouth patch
PATCH_WIDTH = 1.1  # patch extent across the face, in eye-to-mouth distances
PATCH_HEIGHT = 0.7  # and down the face (lips and the top of the chin: the jaw drops as one speaks)
PATCH_DROP = 0.15  # patch centre below the mouth corners, in eye-to-mouth distances
MIN_MOUTH_PX = 8.0  # eye-to-mouth distance, grey pixels, below which a mouth is too small to read
MAX_GAP_SECONDS = 0.5  # keypoints are interpolated across at most this gap between analysed frames
MIN_VISIBLE = 0.6  # a track must be placed on this share of the turn's frames to be scored
MIN_STEPS = 12  # frame-to-frame steps needed for a correlation (about half a second at 25 fps)
MAX_LAG = 2  # frames each way: sound and picture of a camera or file are rarely further apart
CONTRAST_FLOOR = 4.0  # grey levels added to a patch's spread before dividing: flat patches stay quiet
ENERGY_FLOOR = 1e-4  # of the turn's loudest frame interval: pauses count as quiet, not as -inf


Patch = npt.NDArray[np.float32]  # a normalised mouth patch, PATCH_SIZE


@dataclass(frozen=True)
class FrameMotion:
    """A source frame, developed once the face analysis has passed it: per track whose keypoints
    are known at the frame, how much its mouth patch changed since the frame before (NaN when the
    mouth could not be read in either). What scoring needs of a frame, a few bytes a face instead
    of the grey image."""

    t: float
    motion: dict[int, float]


@dataclass(frozen=True)
class TurnAudio:
    """A finished speech turn, as the scorer needs it."""

    turn: int  # SpeechTurn.track_id
    t_start: float  # stream time of samples[0]
    samples: npt.NDArray[np.float32]  # 16 kHz mono

    @property
    def t_end(self) -> float:
        return self.t_start + len(self.samples) / SAMPLE_RATE


def keypoints_at(sightings: Sequence[Sighting], t: float) -> npt.NDArray[np.float32] | None:
    """The track's keypoints at time t, linear between the analysed frames around it; None outside
    the track's span or across a gap longer than MAX_GAP_SECONDS."""
    times = [s.t for s in sightings]
    i = int(np.searchsorted(times, t))
    if i < len(times) and times[i] == t:
        return sightings[i].kps
    if i == 0 or i == len(times):
        return None
    a, b = sightings[i - 1], sightings[i]
    if b.t - a.t > MAX_GAP_SECONDS:
        return None
    w = (t - a.t) / (b.t - a.t)
    return (1 - w) * a.kps + w * b.kps


def mouth_patch(image: npt.NDArray[np.uint8], kps: npt.NDArray[np.float32]) -> Patch | None:
    """The mouth region, upright and PATCH_SIZE whatever the face's size and roll, zero mean and
    unit-ish contrast; `kps` in the image's pixels. None when the face is too small."""
    eyes, mouth = (kps[0] + kps[1]) / 2, (kps[3] + kps[4]) / 2
    down = mouth - eyes
    d = float(np.hypot(*down))
    if d < MIN_MOUTH_PX:
        return None
    down = down / d
    right = np.array([down[1], -down[0]], np.float32)
    w, h = PATCH_SIZE
    sx, sy = PATCH_WIDTH * d / w, PATCH_HEIGHT * d / h
    centre = mouth + PATCH_DROP * d * down
    # patch pixel (x, y) -> image point: centre + (x - w/2) sx right + (y - h/2) sy down
    m = np.array(
        [
            [sx * right[0], sy * down[0], 0.0],
            [sx * right[1], sy * down[1], 0.0],
        ],
        np.float64,
    )
    m[:, 2] = centre - m[:, 0] * (w - 1) / 2 - m[:, 1] * (h - 1) / 2
    patch = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    p = patch.astype(np.float32)
    return (p - p.mean()) / (p.std() + CONTRAST_FLOOR)


def develop(
    frames: Sequence[GreyFrame], sightings: dict[int, list[Sighting]], last: dict[int, Patch]
) -> tuple[list[FrameMotion], dict[int, Patch]]:
    """The mouth motion of each track at each frame (in time order, following the frame whose mouth
    patches are `last`; empty: none), from the sightings around them. Returns it with the last
    frame's patches, to carry on from at the next call."""
    out = []
    for f in frames:
        patches: dict[int, Patch] = {}
        motion: dict[int, float] = {}
        for track, seen in sightings.items():
            kps = keypoints_at(seen, f.t)
            if kps is None:
                continue
            patch = mouth_patch(f.image, f.to_image(kps))
            before = last.get(track)
            motion[track] = np.nan if patch is None or before is None else float(np.abs(patch - before).mean())
            if patch is not None:
                patches[track] = patch
        out.append(FrameMotion(f.t, motion))
        last = patches
    return out, last


def speech_energy(turn: TurnAudio, times: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """Log energy of the turn's audio between consecutive `times` (one value per step)."""
    edges = np.clip(np.round((times - turn.t_start) * SAMPLE_RATE).astype(np.int64), 0, len(turn.samples))
    x2 = np.concatenate([[0.0], np.cumsum(turn.samples.astype(np.float64) ** 2)])
    n = np.maximum(np.diff(edges), 1)
    power = (x2[edges[1:]] - x2[edges[:-1]]) / n
    floor = ENERGY_FLOOR * max(float(power.max(initial=0.0)), 1e-12)
    return np.log(power + floor).astype(np.float32)


def lagged_correlations(
    motion: npt.NDArray[np.float32], energy: npt.NDArray[np.float32], max_lag: int = MAX_LAG
) -> dict[int, float]:
    """Pearson correlation of motion[k + lag] with energy[k] for each lag in -max_lag..max_lag (a
    positive lag: the picture trails the sound), over steps where the mouth was placed; a lag with
    fewer than MIN_STEPS such steps, or a constant series, is left out."""
    out = {}
    n = len(energy)
    for lag in range(-max_lag, max_lag + 1):
        k = np.arange(max(0, -lag), min(n, n - lag))
        m, e = motion[k + lag], energy[k]
        ok = ~np.isnan(m)
        if ok.sum() < MIN_STEPS:
            continue
        m, e = m[ok], e[ok]
        if m.std() < 1e-6 or e.std() < 1e-6:
            out[lag] = 0.0  # a still mouth (or a flat voice) moves with nothing
            continue
        out[lag] = float(np.corrcoef(m, e)[0, 1])
    return out


def turn_correlations(turn: TurnAudio, frames: Sequence[FrameMotion], max_lag: int = MAX_LAG) -> dict[int, dict[int, float]]:
    """Per face track placed on most of the turn's frames: its correlation at each lag (see
    `lagged_correlations`). `frames` are the turn's frames, in time order, each developed after the
    one before it; empty when none is visible."""
    if len(frames) < MIN_STEPS + 1:
        return {}
    energy = speech_energy(turn, np.array([f.t for f in frames], np.float64))
    out = {}
    for track in dict.fromkeys(track for f in frames for track in f.motion):
        placed = sum(track in f.motion for f in frames)
        if placed < MIN_VISIBLE * len(frames):
            continue
        motion = np.array([f.motion.get(track, np.nan) for f in frames[1:]], np.float32)
        curve = lagged_correlations(motion, energy, max_lag)
        if curve:
            out[track] = curve
    return out
