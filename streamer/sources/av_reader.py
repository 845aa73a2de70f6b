"""The worker thread of a source: open with PyAV, decode, sample, hand sampled frames on.

Everything here blocks, so it runs in its own thread; it talks to the loop only through its sink.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Protocol

import av
import av.container
import av.error
import av.video

from ..config import SourceDefaults
from ..errors import SourceError
from ..records import Frame
from .state import SourceState, SourceStats
from .clock import StreamClock
from .frozen import FrozenDetector
from .rate import Backoff, RateMeter
from .sampler import TimestampSampler

log = logging.getLogger(__name__)

NETWORK_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://", "udp://", "tcp://", "srt://")
DEFAULT_FRAME_STEP = 1 / 25  # frame duration assumed when a stream declares no rate


class ReaderSink(Protocol):
    def set_state(self, state: SourceState) -> None: ...
    def emit(self, frame: Frame) -> None: ...
    def end(self, error: SourceError | None) -> None: ...


def one_line(err: BaseException) -> str:
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return text.strip().splitlines()[0]


def open_container(url: str, *, live: bool, defaults: SourceDefaults) -> av.container.InputContainer:
    if not live:
        return av.open(url, mode="r")
    options: dict[str, str] = {}
    if url.startswith(NETWORK_PREFIXES):
        # FFmpeg's own socket timeout (microseconds) plus PyAV's interrupt timeouts below: without
        # both, a hung server blocks open or read forever.
        options["timeout"] = str(int(defaults.read_timeout_seconds * 1e6))
    if url.startswith(("rtsp://", "rtsps://")):
        options["rtsp_transport"] = "tcp"  # no UDP loss, and it passes NAT and firewalls
    return av.open(
        url,
        mode="r",
        format="v4l2" if url.startswith("/dev/video") else None,
        options=options,
        timeout=(defaults.open_timeout_seconds, defaults.read_timeout_seconds),
    )


def probe_file(path: str) -> float | None:
    """Open a video file once to fail early with a clear line; returns its duration in seconds if known."""
    try:
        with av.open(path, mode="r") as container:
            has_video = bool(container.streams.video)
            duration = container.duration / av.time_base if container.duration is not None else None
    except (av.error.FFmpegError, OSError) as e:
        raise SourceError(f"cannot open video file {path}: {one_line(e)}") from None
    if not has_video:
        raise SourceError(f"cannot open video file {path}: no video stream")
    return duration


class AvReader:
    """Runs in the source's thread until the file ends or `stop` is set; a live source reconnects forever."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        live: bool,
        realtime: bool,
        fps: float,
        defaults: SourceDefaults,
        stats: SourceStats,
        sink: ReaderSink,
        stop: threading.Event,
    ) -> None:
        self.name, self.url, self.live, self.realtime = name, url, live, realtime
        self.defaults, self.stats, self.sink, self.stop = defaults, stats, sink, stop
        self._sampler = TimestampSampler(fps)
        self._clock = StreamClock(live=live)
        self._frozen = FrozenDetector(defaults.frozen_after_seconds, defaults.frozen_max_diff)
        self._backoff = Backoff(defaults.backoff_initial_seconds, defaults.backoff_max_seconds)
        self._fps_in, self._fps_sampled = RateMeter(), RateMeter()
        self._pace_origin: float | None = None  # monotonic time of t=0 when paced in real time

    def run(self) -> None:
        try:
            self._run_live() if self.live else self._run_file()
        except Exception as e:  # a bug must end the iterator loudly, not leave the reader waiting forever
            log.exception("%s: reader failed", self.name)
            self.sink.end(SourceError(f"{self.name}: reader failed: {one_line(e)}"))

    def _run_file(self) -> None:
        try:
            container = open_container(self.url, live=False, defaults=self.defaults)
        except (av.error.FFmpegError, OSError) as e:
            self._fail(f"cannot open video file {self.url}: {one_line(e)}")
            return
        with container:
            try:
                self._play(container)
            except (av.error.FFmpegError, OSError) as e:
                self._fail(f"cannot read video file {self.url}: {one_line(e)}")
                return
        if not self.stop.is_set():
            self.sink.end(None)

    def _run_live(self) -> None:
        while not self.stop.is_set():
            try:
                with open_container(self.url, live=True, defaults=self.defaults) as container:
                    self._play(container)
                reason = "stream ended"  # a live stream only ends when the camera goes away
            except (av.error.ExitError, av.error.TimeoutError):  # PyAV's interrupt: our timeouts fired
                reason = "timed out waiting for the source"
            except (av.error.FFmpegError, OSError) as e:
                reason = one_line(e)
            except Exception as e:  # unknown trouble is still no reason to give a camera up
                log.exception("%s: unexpected error", self.name)
                reason = one_line(e)
            if self.stop.is_set():
                return
            self.stats.last_error = reason
            self.stats.fps_in = self.stats.fps_sampled = 0.0
            self.sink.set_state(SourceState.RECONNECTING)
            delay = self._backoff.next()
            log.warning("%s: %s; reconnecting in %.1fs", self.name, reason, delay)
            if self.stop.wait(delay):
                return
            self.stats.reconnects += 1

    def _fail(self, message: str) -> None:
        self.stats.last_error = message
        self.sink.end(SourceError(message))

    def _play(self, container: av.container.InputContainer) -> None:
        if not container.streams.video:
            raise SourceError("no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        step = float(1 / rate) if rate else DEFAULT_FRAME_STEP
        self._clock.new_segment()
        self._frozen.reset()
        self._fps_in.reset()
        self._fps_sampled.reset()
        for index, frame in enumerate(self._decoded(container, stream)):
            wall, now = time.time(), time.monotonic()
            self.stats.frames_decoded += 1
            self.stats.last_frame_wall = wall
            self.stats.fps_in = self._fps_in.tick(now)
            if index == 0:
                self._backoff.reset()
                self.sink.set_state(SourceState.LIVE)
            t = self._clock.t(frame.time, wall, step)
            if not self._sampler.take(t):
                continue
            if self.realtime and not self._wait_until(t):
                return
            image = frame.to_ndarray(format="bgr24")  # only sampled frames pay for the conversion
            self.stats.frames_sampled += 1
            self.stats.fps_sampled = self._fps_sampled.tick(now)
            if self.live:
                frozen = self._frozen.update(image, t)
                self.sink.set_state(SourceState.FROZEN if frozen else SourceState.LIVE)
            self.sink.emit(Frame(self.name, index, t, wall, image))

    def _decoded(self, container: av.container.InputContainer, stream: av.video.VideoStream) -> Iterator[av.VideoFrame]:
        """Decoded frames; a packet or frame the decoder finds corrupt is skipped and counted."""
        for packet in container.demux(stream):
            if self.stop.is_set():
                return
            try:
                frames = packet.decode()
            except av.error.FFmpegError as e:
                self.stats.decode_errors += 1
                log.debug("%s: skipped a bad packet: %s", self.name, one_line(e))
                continue
            for frame in frames:
                if frame.is_corrupt:
                    self.stats.decode_errors += 1
                    continue
                yield frame

    def _wait_until(self, t: float) -> bool:
        """Real-time pacing by PTS; False when stopped meanwhile."""
        now = time.monotonic()
        if self._pace_origin is None:
            self._pace_origin = now - t
        delay = self._pace_origin + t - now
        return delay <= 0 or not self.stop.wait(delay)
