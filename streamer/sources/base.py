"""A source as the asyncio side sees it: sampled frames, its audio buffer, a state, counters."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from .grey_ring import GreyRing
from ..config import SourceDefaults
from ..errors import SourceError
from ..records import Frame
from .audio_buffer import AudioBuffer
from .av_reader import AvReader
from .handoff import Handoff
from .state import SourceState, SourceStats

log = logging.getLogger(__name__)

# close() waits this long for the reader thread; one stuck in a network read exits by itself
# within the read timeout, and touches nothing shared once stopped.
CLOSE_JOIN_SECONDS = 0.5
AUDIO_BUFFER_SECONDS = 30.0
FILE_AUDIO_AHEAD_SECONDS = 5.0  # a file's decoded audio waiting for the voice path, at most  # audio held for a voice path that is behind, before a live source drops it

StateCallback = Callable[[str, SourceState], None]


@dataclass(frozen=True)
class _End:
    error: SourceError | None = None


class Source:
    """One camera, microphone or file. Iterate `frames()` once for its sampled frames; `close()` ends it.

    A file ends (or raises SourceError before any frame if it cannot be read); a live source
    never raises and never ends by itself: it reconnects with backoff until closed.

    With `audio=True`, the audio decoded while `frames()` is iterated goes to `audio` (an
    AudioBuffer, None without audio): a file waits for the voice path (so whoever asks for audio
    must read it, or the file stalls once the buffer is full), a live source drops its oldest audio
    instead. A source with audio and no video yields no frames; its frames() still ends when a file does.
    """

    def __init__(
        self,
        name: str,
        url: str,
        *,
        live: bool,
        fps: float,
        defaults: SourceDefaults,
        realtime: bool = False,
        duration: float | None = None,
        on_state: StateCallback | None = None,
        audio: bool = False,
        audio_buffer_seconds: float = AUDIO_BUFFER_SECONDS,
    ) -> None:
        self.name = name
        self.url = url
        self.is_live = live
        self.duration = duration  # seconds, for a file's progress bar; None for live sources
        self.stats = SourceStats()
        self.on_state = on_state
        self._defaults = defaults
        # a camera does not wait for its viewer: live feeds (and files paced like one) drop the oldest
        self._drop_oldest = live or realtime
        # A file waits for its voice path instead of dropping audio; kept short, it also keeps the
        # reader (and the grey frames it keeps) from running far ahead of the speech being scored.
        held = audio_buffer_seconds if self._drop_oldest else min(audio_buffer_seconds, FILE_AUDIO_AHEAD_SECONDS)
        self.audio = AudioBuffer(held, drop_oldest=self._drop_oldest) if audio else None
        # with voices, every decoded frame is kept a while, small and grey, to see who speaks
        self.grey_frames = GreyRing() if audio else None
        self._stop = threading.Event()
        self._state_lock = threading.Lock()
        self._reader = AvReader(
            name,
            url,
            live=live,
            realtime=realtime,
            fps=fps,
            defaults=defaults,
            stats=self.stats,
            sink=self,
            stop=self._stop,
            audio=self.audio,
            grey=self.grey_frames,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handoff: Handoff[Frame | _End] | None = None
        self._thread: threading.Thread | None = None

    async def frames(self) -> AsyncIterator[Frame]:
        if self._thread is not None or self._stop.is_set():
            raise RuntimeError(f"{self.name}: frames() can be iterated only once")
        self._loop = asyncio.get_running_loop()
        self._handoff = Handoff(self._loop, self._defaults.queue_size, self._count_drop)
        self._thread = threading.Thread(target=self._reader.run, name=f"source-{self.name}", daemon=True)
        self._thread.start()
        try:
            while True:
                item = await self._handoff.get()
                if isinstance(item, _End):
                    if item.error is not None:
                        raise item.error
                    return
                yield item
        finally:
            await self.close()

    async def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self.set_state(SourceState.STOPPED)
        if self.audio is not None:
            self.audio.close()  # also frees a reader waiting for room in it
        if self._handoff is not None:
            self._handoff.close(_End())
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, CLOSE_JOIN_SECONDS)
            if self._thread.is_alive():
                log.debug("%s: reader still in a blocking call; it exits within its timeout", self.name)

    # ReaderSink: called from the reader thread.

    def set_state(self, state: SourceState) -> None:
        with self._state_lock:
            old = self.stats.state
            if state == old or old.terminal:
                return
            self.stats.state = state
        # A camera's state matters to whoever watches the log; a file's is just its progress bar.
        log.log(logging.INFO if self.is_live else logging.DEBUG, "%s: %s -> %s", self.name, old.value, state.value)
        if self.on_state is not None and self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self.on_state, self.name, state)
            except RuntimeError:  # loop closed
                pass

    def emit(self, frame: Frame) -> None:
        assert self._handoff is not None
        if self._drop_oldest:
            self._handoff.put_latest(frame)
        else:
            self._handoff.put_wait(frame)

    def end(self, error: SourceError | None) -> None:
        assert self._handoff is not None
        self.set_state(SourceState.ENDED)
        self._handoff.put_wait(_End(error))

    def _count_drop(self) -> None:
        self.stats.dropped += 1
