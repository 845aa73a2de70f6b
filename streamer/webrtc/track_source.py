"""A live stream fed by the tracks of a WebRTC peer connection.

Video frames are sampled by their RTP timestamps like any camera's, audio goes to an AudioBuffer.
Everything runs on the event loop except the one costly step, converting a sampled frame to BGR.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

from ..config import SourceDefaults
from ..records import Frame
from ..sources import SourceState, SourceStats
from ..sources.audio_buffer import AudioBuffer
from ..sources.audio_chunker import AudioChunker
from ..sources.base import AUDIO_BUFFER_SECONDS
from ..sources.bgr import BgrConverter
from ..sources.clock import StreamClock
from ..sources.frozen import FrozenDetector
from ..sources.rate import RateMeter
from ..sources.sampler import TimestampSampler
from .audio import read_audio

log = logging.getLogger(__name__)

FRAME_STEP = 1 / 30  # nominal frame step, used only when RTP timestamps jump back


class TrackSource(abc.ABC):
    """The StreamSource of one WebRTC stream. `attach(pc)` before the remote description is set, so
    no track is missed; `lost()` says when that peer is gone (connection failed or closed, video
    ended, or no video within the open/read timeouts). Subclasses decide in `_run` what then happens:
    a push ends its stream, a pull reconnects.

    With `audio` (the default: a WebRTC peer always sends its audio), the peer's audio goes to
    `audio`, an AudioBuffer that drops its oldest chunks when nobody keeps up; None without.
    """

    is_live = True
    duration: float | None = None

    def __init__(
        self,
        name: str,
        *,
        fps: float,
        defaults: SourceDefaults,
        on_close: Callable[[TrackSource], None] | None = None,
        audio: bool = True,
        audio_buffer_seconds: float = AUDIO_BUFFER_SECONDS,
    ) -> None:
        self.name = name
        self.stats = SourceStats()
        self.audio = AudioBuffer(audio_buffer_seconds, drop_oldest=True) if audio else None
        self.on_close = on_close
        self._defaults = defaults
        self._sampler = TimestampSampler(fps)
        # RTP timestamps of audio and video start at unrelated random values: each gets its own offset.
        self._clock = StreamClock(live=True, shared_pts=False)
        self._audio_chunker = AudioChunker(name, self._clock, live=True)
        self._frozen = FrozenDetector(defaults.frozen_after_seconds, defaults.frozen_max_diff)
        self._to_bgr = BgrConverter()
        self._fps_in, self._fps_sampled = RateMeter(), RateMeter()
        # None marks the end; live video drops the oldest frame when the pipeline is behind.
        self._queue: asyncio.Queue[Frame | None] = asyncio.Queue(defaults.queue_size)
        self._pc: RTCPeerConnection | None = None
        self._peer_tasks: set[asyncio.Task[None]] = set()
        self._lost = asyncio.Event()
        self._lost_reason = ""
        self._got_video = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._closed = False

    # -- the StreamSource side

    async def frames(self) -> AsyncIterator[Frame]:
        if self._runner is not None or self._closed:
            raise RuntimeError(f"{self.name}: frames() can be iterated only once")
        self._runner = asyncio.create_task(self._run(), name=f"webrtc-{self.name}")
        try:
            while (frame := await self._queue.get()) is not None:
                yield frame
        finally:
            await self.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.set_state(SourceState.STOPPED)
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        await self.detach()
        if self.audio is not None:
            self.audio.close()
        self._finish()
        if self.on_close is not None:
            self.on_close(self)

    @abc.abstractmethod
    async def _run(self) -> None:
        """What to do with peers until closed: end after one (a push) or reconnect (a pull)."""

    # -- peers

    @property
    def received_video(self) -> bool:
        """Whether the current (or last) peer sent any video."""
        return self._got_video.is_set()

    def attach(self, pc: RTCPeerConnection) -> None:
        """Take this peer's tracks from now on; the last peer must have been detached."""
        self._pc = pc
        self._lost.clear()
        self._got_video.clear()
        self._clock.new_segment()
        self._frozen.reset()
        self._fps_in.reset()
        self._fps_sampled.reset()
        self._audio_chunker.new_segment()

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if pc is not self._pc:
                return
            if track.kind == "video":
                self._spawn(self._read_video(track), "video")
            elif track.kind == "audio":
                self._spawn(read_audio(track, self._audio_chunker, self.audio, self.stats), "audio")

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc is self._pc and pc.connectionState in ("failed", "closed"):
                self._lose(f"peer connection {pc.connectionState}")

        self._spawn(self._first_video_watch(), "watch")

    async def lost(self) -> str:
        """Wait until the attached peer is gone; returns why."""
        await self._lost.wait()
        return self._lost_reason

    async def detach(self) -> None:
        """Stop reading the current peer and close its connection."""
        pc, self._pc = self._pc, None
        tasks, self._peer_tasks = self._peer_tasks, set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if pc is not None:
            await pc.close()

    def set_state(self, state: SourceState) -> None:
        old = self.stats.state
        if state == old or old.terminal:
            return
        self.stats.state = state
        log.info("%s: %s -> %s", self.name, old.value, state.value)

    def _finish(self) -> None:
        """End frames(): the end mark goes in even when the queue is full of frames nobody will read."""
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    def _lose(self, reason: str) -> None:
        if not self._lost.is_set():
            self._lost_reason = reason
            self._lost.set()

    def _spawn(self, coro: Coroutine[Any, Any, None], what: str) -> None:
        self._peer_tasks.add(asyncio.create_task(coro, name=f"webrtc-{self.name}-{what}"))

    async def _first_video_watch(self) -> None:
        try:
            await asyncio.wait_for(self._got_video.wait(), self._defaults.open_timeout_seconds)
        except TimeoutError:
            self._lose(f"no video within {self._defaults.open_timeout_seconds:g} s")

    # -- media

    async def _read_video(self, track: MediaStreamTrack) -> None:
        index = 0
        while True:
            # Before the first frame the open timeout runs (in the watch task); after it, the read timeout.
            timeout = self._defaults.read_timeout_seconds if self._got_video.is_set() else None
            try:
                frame = await asyncio.wait_for(track.recv(), timeout)
            except MediaStreamError:
                self._lose("the peer ended its video")
                return
            except TimeoutError:
                self._lose(f"no video for {self._defaults.read_timeout_seconds:g} s")
                return
            assert isinstance(frame, av.VideoFrame)
            wall, now = time.time(), time.monotonic()
            self.stats.frames_decoded += 1
            self.stats.last_frame_wall = wall
            self.stats.fps_in = self._fps_in.tick(now)
            if not self._got_video.is_set():
                self._got_video.set()
                self.stats.last_error = None
                self.set_state(SourceState.LIVE)
            t = self._clock.t(frame.time, wall, FRAME_STEP)
            if self._sampler.take(t):
                image, frozen = await asyncio.to_thread(self._convert, frame, t)
                self.stats.frames_sampled += 1
                self.stats.fps_sampled = self._fps_sampled.tick(now)
                self.set_state(SourceState.FROZEN if frozen else SourceState.LIVE)
                self._offer(Frame(self.name, index, t, wall, image))
            index += 1

    def _convert(self, frame: av.VideoFrame, t: float) -> tuple[npt.NDArray[np.uint8], bool]:
        image = self._to_bgr(frame)  # one frame at a time: each conversion is awaited
        return image, self._frozen.update(image, t)

    def _offer(self, frame: Frame) -> None:
        if self._closed:
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.stats.dropped += 1
        self._queue.put_nowait(frame)
