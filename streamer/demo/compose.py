"""Render a video in which real people enter, stay, leave and come back, from a simple script."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import av.container
import cv2
import numpy as np
import numpy.typing as npt

from .cast import Person


@dataclass(frozen=True)
class Appearance:
    person: int  # index into the cast
    start: float  # seconds
    end: float
    x: float  # horizontal centre, 0..1 of the frame width
    scale: float = 1.0  # size against the cast photo (further from or nearer to the camera)
    light: float = 1.0  # brightness factor (another room, another time of day)


@dataclass(frozen=True)
class Cut:
    """A hard cut: the whole frame shows one person, talking-head style, from start to end."""

    person: int
    start: float
    end: float


MARGIN_SECONDS = 0.6  # people slide in and out over half a second: who is where, unclear then
NEAR_PX = 70  # a face this close to a person's scripted position is theirs


def person_at(script: Sequence[Appearance | Cut], t: float, cx: float, width: int = 640) -> int | None:
    """The person the script put at time t near horizontal position cx, or None while unclear."""
    for item in script:
        if isinstance(item, Cut) and item.start + 0.3 <= t < item.end - 0.1:
            return item.person
        if (
            isinstance(item, Appearance)
            and item.start + MARGIN_SECONDS <= t < item.end - MARGIN_SECONDS
            and abs(cx - item.x * width) < NEAR_PX
        ):
            return item.person
    return None


# (person, t, sprite) -> the sprite to show at t: lets a test move a photo's mouth with a voice
Animate = Callable[[int, float, npt.NDArray[np.uint8]], npt.NDArray[np.uint8]]


def _background(width: int, height: int, seed: int) -> npt.NDArray[np.uint8]:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(60, 150, width, dtype=np.float32)[None, :, None]
    base = np.broadcast_to(ramp, (height, width, 3)) * np.array([1.0, 0.9, 0.8], np.float32)
    return np.clip(base + rng.normal(0, 6, (height, width, 3)), 0, 255).astype(np.uint8)


def _paste(frame: npt.NDArray[np.uint8], sprite: npt.NDArray[np.uint8], cx: int, top: int) -> None:
    h, w = sprite.shape[:2]
    x0 = cx - w // 2
    fx0, fy0 = max(0, x0), max(0, top)
    fx1, fy1 = min(frame.shape[1], x0 + w), min(frame.shape[0], top + h)
    if fx1 > fx0 and fy1 > fy0:
        frame[fy0:fy1, fx0:fx1] = sprite[fy0 - top : fy1 - top, fx0 - x0 : fx1 - x0]


def _restyled(sprite: npt.NDArray[np.uint8], scale: float, light: float) -> npt.NDArray[np.uint8]:
    if scale != 1.0:
        sprite = cv2.resize(sprite, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    if light != 1.0:
        sprite = cv2.convertScaleAbs(sprite, alpha=light)
    return sprite


def render_frame(
    t: float,
    cast: Sequence[Person],
    script: Sequence[Appearance | Cut],
    background: npt.NDArray[np.uint8],
    animate: Animate | None = None,
) -> npt.NDArray[np.uint8]:
    height, width = background.shape[:2]
    for item in script:
        if isinstance(item, Cut) and item.start <= t < item.end:
            sprite = cast[item.person].image
            if animate is not None:
                sprite = animate(item.person, t, sprite)
            scale = min(width / sprite.shape[1], height / sprite.shape[0])
            frame = np.zeros_like(background)
            big = cv2.resize(sprite, None, fx=scale, fy=scale)
            _paste(frame, big, width // 2, (height - big.shape[0]) // 2)
            return frame
    frame = background.copy()
    for item in script:
        if not isinstance(item, Appearance) or not item.start <= t < item.end:
            continue
        sprite = cast[item.person].image
        if animate is not None:
            sprite = animate(item.person, t, sprite)
        sprite = _restyled(sprite, item.scale, item.light)
        # Slide in from the nearer edge over half a second, sway gently while in view, slide out.
        enter = min(1.0, (t - item.start) / 0.5)
        leave = min(1.0, (item.end - t) / 0.5)
        edge = -sprite.shape[1] if item.x < 0.5 else width + sprite.shape[1]
        home = item.x * width + 12 * math.sin(2 * math.pi * 0.3 * t + item.person)
        k = min(enter, leave)
        cx = int(edge + (home - edge) * k)
        _paste(frame, sprite, cx, height - sprite.shape[0] + 10)
    return frame


def render_video(
    path: str | Path,
    cast: Sequence[Person],
    script: Sequence[Appearance | Cut],
    *,
    size: tuple[int, int] = (640, 360),
    fps: int = 25,
    seed: int = 0,
    audio: npt.NDArray[np.float32] | None = None,
    audio_rate: int = 16_000,
    animate: Animate | None = None,
) -> float:
    """Write an H.264 MP4 (keyframe every second, no B-frames), with `audio` (mono float samples) as
    its AAC soundtrack when given; return its duration in seconds. `animate` changes a person's
    cast photo frame by frame (before it is scaled and lit)."""
    duration = max(item.end for item in script)
    background = _background(size[0], size[1], seed)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "veryfast", "g": str(fps), "bf": "0"})
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        sound = None if audio is None else _Soundtrack(container, audio, audio_rate)
        for i in range(int(round(duration * fps))):
            image = render_frame(i / fps, cast, script, background, animate)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
            if sound is not None:
                sound.write_until((i + 1) / fps)  # interleaved, as a camera would send it
        for packet in stream.encode():
            container.mux(packet)
        if sound is not None:
            sound.finish()
    return duration


class _Soundtrack:
    """Encodes mono float samples to AAC in step with the video."""

    def __init__(self, container: av.container.OutputContainer, samples: npt.NDArray[np.float32], rate: int) -> None:
        self._container = container
        self._stream = container.add_stream("aac", rate=rate, layout="mono")
        self._samples = np.clip(samples.astype(np.float32), -1, 1)
        self._rate = rate
        self._done = 0

    def write_until(self, t: float) -> None:
        end = min(len(self._samples), int(t * self._rate))
        if end <= self._done:
            return
        frame = av.AudioFrame.from_ndarray(self._samples[None, self._done : end], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = self._rate, self._done
        self._done = end
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def finish(self) -> None:
        self.write_until(len(self._samples) / self._rate)
        for packet in self._stream.encode(None):
            self._container.mux(packet)


def sampled_frames(path: Path, fps: float) -> list[tuple[float, npt.NDArray[np.uint8]]]:
    """(time, BGR frame) of a rendered video at `fps`, as the live sampler would take them, for
    tests and benchmarks that drive the face stages without a source."""
    out, next_t = [], 0.0
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        for f in c.decode(stream):
            t = float(f.pts * stream.time_base)
            if t + 1e-6 >= next_t:
                out.append((t, f.to_ndarray(format="bgr24")))
                next_t += 1 / fps
    return out
