"""The worker thread of a source: open with PyAV, demux video and audio, decode, sample, hand on.

Everything here blocks, so it runs in its own thread; it talks to the loop only through its sink,
and to the voice path through its audio buffer.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Protocol

import av
import av.container
import av.error
import av.stream
import av.video.stream

from .grey_ring import GreyRing
from ..config import SourceDefaults
from ..errors import SourceError
from ..records import Frame
from ..scene import scene_thumbnail
from ..source_urls import NETWORK_PREFIXES, parse_device
from .audio_buffer import AudioBuffer
from .audio_chunker import AudioChunker
from .audio_track import AudioTrack
from .bgr import BgrConverter
from .clock import StreamClock
from .frozen import FrozenDetector
from .nonref import NonRefSkip
from .rate import Backoff, RateMeter
from .sampler import TimestampSampler
from .state import SourceState, SourceStats

log = logging.getLogger(__name__)

LIVE_DECODE_THREADS = 2  # a live camera's decoder delays frames by about this many minus one
DEFAULT_FRAME_STEP = 1 / 25  # frame duration assumed when a stream declares no rate
FILE_THREADS_MIN_CORES = 3  # files decode with frame threads on machines with at least this many cores


class ReaderSink(Protocol):
    def set_state(self, state: SourceState) -> None: ...
    def emit(self, frame: Frame) -> None: ...
    def end(self, error: SourceError | None) -> None: ...


def one_line(err: BaseException) -> str:
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return text.strip().splitlines()[0]


def media_noun(audio: bool) -> str:
    return "media file" if audio else "video file"


def open_container(url: str, *, live: bool, defaults: SourceDefaults) -> av.container.InputContainer:
    if not live:
        return av.open(url, mode="r")
    device = parse_device(url)
    options: dict[str, str] = {}
    if url.startswith(NETWORK_PREFIXES):
        # FFmpeg's own socket timeout (microseconds) plus PyAV's interrupt timeouts below: without
        # both, a hung server blocks open or read forever.
        options["timeout"] = str(int(defaults.read_timeout_seconds * 1e6))
    if url.startswith(("rtsp://", "rtsps://")):
        options["rtsp_transport"] = "tcp"  # no UDP loss, and it passes NAT and firewalls
    return av.open(
        device.name if device else url,
        mode="r",
        format=device.format if device else None,
        options=options,
        timeout=(defaults.open_timeout_seconds, defaults.read_timeout_seconds),
    )


def probe_file(path: str, *, audio: bool = False) -> float | None:
    """Open a file once to fail early with a clear line; returns its duration in seconds if known.
    With `audio`, a file with only audio (a recording) is a source too."""
    noun = media_noun(audio)
    try:
        with av.open(path, mode="r") as container:
            has_video, has_audio = bool(container.streams.video), bool(container.streams.audio)
            duration = container.duration / av.time_base if container.duration is not None else None
    except (av.error.FFmpegError, OSError) as e:
        raise SourceError(f"cannot open {noun} {path}: {one_line(e)}") from None
    if not has_video and not (audio and has_audio):
        missing = "no video and no audio stream" if audio else "no video stream"
        raise SourceError(f"cannot open {noun} {path}: {missing}")
    return duration


def start_of(streams: list[av.stream.Stream]) -> float | None:
    """The earliest start time (seconds) the container declares for `streams`; None if any is unknown."""
    starts = [float(s.start_time * s.time_base) for s in streams if s.start_time is not None and s.time_base]
    return min(starts) if starts and len(starts) == len(streams) else None


class AvReader:
    """Runs in the source's thread until the file ends or `stop` is set; a live source reconnects forever.

    With an `audio` buffer, the first audio track is demuxed and decoded in the same loop as the
    video (one open, one set of timeouts and reconnects); without one, audio is never demuxed.
    """

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
        audio: AudioBuffer | None = None,
        grey: GreyRing | None = None,
    ) -> None:
        self.name, self.url, self.live, self.realtime = name, url, live, realtime
        self.defaults, self.stats, self.sink, self.stop = defaults, stats, sink, stop
        self.audio = audio
        self.grey = grey
        self._sampler = TimestampSampler(fps)
        self._clock = StreamClock(live=live)
        chunker = AudioChunker(name, self._clock, live=live)
        self._audio_track = None if audio is None else AudioTrack(name, chunker, stats)
        self._frozen = FrozenDetector(defaults.frozen_after_seconds, defaults.frozen_max_diff)
        self._backoff = Backoff(defaults.backoff_initial_seconds, defaults.backoff_max_seconds)
        self._fps_in, self._fps_sampled = RateMeter(), RateMeter()
        self._pace_origin: float | None = None  # monotonic time of t=0 when paced in real time
        self._to_bgr = BgrConverter()
        self._flowing = False  # this connection has delivered its first frame (or audio, without video)

    def run(self) -> None:
        try:
            self._run_live() if self.live else self._run_file()
        except Exception as e:  # a bug must end the iterator loudly, not leave the reader waiting forever
            log.exception("%s: reader failed", self.name)
            self.sink.end(SourceError(f"{self.name}: reader failed: {one_line(e)}"))
        finally:
            self._end_audio()

    def _run_file(self) -> None:
        noun = media_noun(self.audio is not None)
        try:
            container = open_container(self.url, live=False, defaults=self.defaults)
        except (av.error.FFmpegError, OSError) as e:
            self._fail(f"cannot open {noun} {self.url}: {one_line(e)}")
            return
        with container:
            try:
                self._play(container)
            except (av.error.FFmpegError, OSError) as e:
                self._fail(f"cannot read {noun} {self.url}: {one_line(e)}")
                return
        if not self.stop.is_set():
            self._end_audio()  # the voice path knows the audio is complete before the frames end
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
        self._end_audio()
        self.sink.end(SourceError(message))

    def _end_audio(self) -> None:
        if self.audio is not None:
            self.audio.close()

    def _play(self, container: av.container.InputContainer) -> None:
        video = container.streams.video[0] if container.streams.video else None
        audio = self._audio_track.open(container) if self._audio_track else None
        if video is None and audio is None:
            raise SourceError(self._no_media(container))
        step, skip = DEFAULT_FRAME_STEP, None
        if video is not None:
            rate = video.average_rate or video.guessed_rate
            step = float(1 / rate) if rate else DEFAULT_FRAME_STEP
            if self._tune_decoder(video, step):
                skip = NonRefSkip(video, self._sampler, self._clock, step)
        streams = [s for s in (video, audio) if s is not None]
        # Audio and video share the segment's offset only when audio is read; alone, video starts at 0 as ever.
        self._clock.new_segment(start_of(streams) if audio is not None else None)
        self._frozen.reset()
        self._fps_in.reset()
        self._fps_sampled.reset()
        self._flowing = False
        index = 0
        for packet in container.demux(*streams):
            if self.stop.is_set():
                return
            if audio is not None and packet.stream_index == audio.index:
                if not self._on_audio(packet, audio_only=video is None):
                    return
                continue
            if skip is not None:
                skip.before(packet)
            for frame in self._decoded(packet):
                if not self._on_frame(frame, index, step):
                    return
                index += 1
        if audio is not None:
            self._on_audio(None, audio_only=video is None)

    def _tune_decoder(self, video: av.video.stream.VideoStream, step: float) -> bool:
        """Threads for the decoder; True when frames nobody will see may be left undecoded."""
        video.thread_type = "AUTO"  # frame and slice threads: decoding is most of the reader's work
        if self.live:
            # each frame thread holds a frame back: on a many-core machine that would be ~0.6 s of delay
            video.codec_context.thread_count = LIVE_DECODE_THREADS
            return False
        if (os.cpu_count() or 1) < FILE_THREADS_MIN_CORES:
            # the inference threads keep so few cores busy: frame threads would only add their hand-offs
            # (28% more decoding CPU on 640x360 H.264 on two cores)
            video.thread_type = "NONE"
        # Grey frames follow the lips at the full frame rate: then every frame is seen.
        return self.grey is None and self._sampler.period >= 2 * step

    def _no_media(self, container: av.container.InputContainer) -> str:
        if self._audio_track is None:
            return "no video stream"
        if container.streams.audio:
            return "no video stream, and its audio cannot be decoded"
        return "no video and no audio stream"

    def _on_frame(self, frame: av.VideoFrame, index: int, step: float) -> bool:
        """One decoded frame; False when stopped meanwhile."""
        wall, now = time.time(), time.monotonic()
        self.stats.frames_decoded += 1
        self.stats.last_frame_wall = wall
        self.stats.fps_in = self._fps_in.tick(now)
        if not self._flowing:
            self._started()
        t = self._clock.t(frame.time, wall, step)
        if self.grey is not None:  # every frame, small and grey: lips move faster than the sampled rate
            self.grey.push_frame(t, frame)
        if not self._sampler.take(t):
            return True
        if self.realtime and not self._wait_until(t):
            return False
        image = self._to_bgr(frame)  # only sampled frames pay for the conversion
        self.stats.frames_sampled += 1
        self.stats.fps_sampled = self._fps_sampled.tick(now)
        if self.live:
            frozen = self._frozen.update(image, t)
            self.sink.set_state(SourceState.FROZEN if frozen else SourceState.LIVE)
        # The scene thumbnail too: made here, ahead of the analysis, not in its detection chain.
        self.sink.emit(Frame(self.name, index, t, wall, image, scene_thumbnail(image)))
        return True

    def _on_audio(self, packet: av.Packet | None, *, audio_only: bool) -> bool:
        """Decode one audio packet (None: flush at the end) into the buffer; False when stopped meanwhile.
        A live buffer drops its oldest audio rather than wait, so video never waits for the voice path."""
        assert self._audio_track is not None and self.audio is not None
        chunks = self._audio_track.decode(packet, time.time())
        if self._audio_track.failed:
            self.audio.close()
        for chunk in chunks:
            if audio_only and not self._flowing:
                self._started()
            if audio_only and self.realtime and not self._wait_until(chunk.t):
                return False
            if not self.audio.put(chunk):
                return False
            self.stats.audio_seconds += chunk.seconds
            self.stats.audio_dropped_seconds = self.audio.dropped_seconds
        return True

    def _started(self) -> None:
        """The first frame (or, without video, the first audio) of a connection."""
        self._flowing = True
        self._backoff.reset()
        self.sink.set_state(SourceState.LIVE)

    def _decoded(self, packet: av.Packet) -> Iterator[av.VideoFrame]:
        """Decoded frames; a packet or frame the decoder finds corrupt is skipped and counted."""
        try:
            frames = packet.decode()
        except av.error.FFmpegError as e:
            self.stats.decode_errors += 1
            log.debug("%s: skipped a bad packet: %s", self.name, one_line(e))
            return
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
