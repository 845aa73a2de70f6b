"""A container's audio track in the reader thread: decode packets, skip damaged ones, give up on a
track that never decodes (the video goes on without it)."""

from __future__ import annotations

import logging

import av
import av.audio
import av.container
import av.error

from ..records import AudioChunk
from .audio_chunker import AudioChunker
from .state import AudioState, SourceStats

log = logging.getLogger(__name__)

# Damaged packets in a row, with not one frame decoded before them: the track cannot be decoded at all.
FAIL_AFTER_ERRORS = 20


class AudioTrack:
    """Decodes the first audio stream of each connection into chunks. Once failed, it stays failed
    for the life of the source, and says so once."""

    def __init__(self, name: str, chunker: AudioChunker, stats: SourceStats) -> None:
        self.name = name
        self.stats = stats
        self._chunker = chunker
        self._decoded_any = False
        self._errors_in_a_row = 0

    @property
    def failed(self) -> bool:
        return self.stats.audio_state == AudioState.FAILED

    def open(self, container: av.container.InputContainer) -> av.audio.AudioStream | None:
        """The audio stream to demux on this connection; None without one, or once failed."""
        if self.failed or not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        if stream.codec_context is None:  # PyAV's mark of a codec FFmpeg has no decoder for
            self._fail("FFmpeg has no decoder for its codec")
            return None
        self.stats.audio_state = AudioState.OK
        self._chunker.new_segment()
        return stream

    def decode(self, packet: av.Packet | None, wall: float) -> list[AudioChunk]:
        """The chunks of one packet; None at the end of a file flushes the decoder's and resampler's tail."""
        if self.failed:
            return []
        if packet is None:
            return self._chunker.chunks(None, wall)
        try:
            frames = packet.decode()
        except av.error.FFmpegError as e:
            self._error(str(e))
            return []
        chunks: list[AudioChunk] = []
        for frame in frames:
            if frame.is_corrupt:
                self._error("corrupt frame")
                continue
            self._decoded_any = True
            self._errors_in_a_row = 0
            chunks.extend(self._chunker.chunks(frame, wall))
        return chunks

    def _error(self, why: str) -> None:
        self.stats.audio_decode_errors += 1
        self._errors_in_a_row += 1
        log.debug("%s: skipped a bad audio packet: %s", self.name, why)
        if not self._decoded_any and self._errors_in_a_row >= FAIL_AFTER_ERRORS:
            self._fail(f"{self._errors_in_a_row} audio packets in a row failed to decode ({why})")

    def _fail(self, why: str) -> None:
        self.stats.audio_state = AudioState.FAILED
        log.warning("%s: audio track cannot be decoded, going on without it: %s", self.name, why)
