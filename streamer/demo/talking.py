"""Photos that talk: a speaker's mouth opens with their own recorded voice's loudness while they hold
the floor, so the demo (and the tests) show real speech on faces whose lips move with it."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import cv2
import numpy as np
import numpy.typing as npt

from ..faces.detector import FaceDetector
from .cast import Person
from .compose import Animate
from .speech import Conversation


def mouth_openness(conversation: Conversation) -> npt.NDArray[np.float32]:
    """Per 10 ms, how open a mouth is for the voice's loudness: log RMS smoothed over 50 ms (lips are
    slower than the voice), mapped to 0..1 so that the quieter quarter of speech has the mouth shut."""
    hop = conversation.rate // 100
    x = conversation.samples[: len(conversation.samples) // hop * hop].reshape(-1, hop)
    level = np.convolve(np.log10(np.sqrt((x**2).mean(axis=1)) + 1e-6), np.ones(5) / 5, mode="same")
    speech = np.zeros(len(level), bool)
    for turn in conversation.turns:
        speech[int(turn.start * 100) : int(turn.end * 100)] = True
    lo, hi = np.percentile(level[speech], [25, 99])
    return np.clip((level - lo) / (hi - lo), 0, 1).astype(np.float32)


def talking_mouths(
    cast: list[Person],
    detector: FaceDetector,
    conversation: Conversation,
    speakers: Mapping[int, str],
    recording_time: Callable[[float], float] = lambda t: t,
) -> Animate:
    """An `animate` hook for render_video: person -> the conversation's speaker they play;
    `recording_time` maps video time to the recording's time (where it plays, how often)."""
    openness = mouth_openness(conversation)
    mouths = {}
    for person in speakers:
        kps = detector.detect(cast[person].image).kps[0]
        mouths[person] = ((kps[3] + kps[4]) / 2, float(np.hypot(*(kps[4] - kps[3]))))

    def animate(person: int, t: float, sprite: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        speaker = speakers.get(person)
        local = recording_time(t)
        if speaker is None or not any(s.speaker == speaker and s.start <= local < s.end for s in conversation.turns):
            return sprite
        o = float(openness[min(len(openness) - 1, max(0, int(local * 100)))])
        if o < 0.05:
            return sprite
        (mx, my), width = mouths[person]
        out = sprite.copy()
        axes = (int(0.45 * width), max(1, int(0.4 * width * o)))
        cv2.ellipse(out, (int(mx), int(my + 0.05 * width)), axes, 0, 0, 360, (35, 25, 45), -1, cv2.LINE_AA)
        return out

    return animate
