"""What a source is doing, and its counters."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class SourceState(str, enum.Enum):
    CONNECTING = "connecting"  # opening for the first time
    LIVE = "live"  # frames are coming
    RECONNECTING = "reconnecting"  # a live source lost its feed and is retrying
    FROZEN = "frozen"  # a live feed keeps showing the same picture
    ENDED = "ended"  # a file reached its end (or could not be read)
    STOPPED = "stopped"  # closed by its owner

    @property
    def terminal(self) -> bool:
        return self in (SourceState.ENDED, SourceState.STOPPED)


class AudioState(str, enum.Enum):
    NONE = "none"  # no audio track (or audio not asked for)
    OK = "ok"  # an audio track is being decoded
    FAILED = "failed"  # the track is there but cannot be decoded; video goes on without it


@dataclass
class SourceStats:
    """Written by the source's reader thread (the counters) and its loop (state, dropped); read anywhere."""

    state: SourceState = SourceState.CONNECTING
    frames_decoded: int = 0
    frames_sampled: int = 0
    dropped: int = 0  # sampled frames thrown away because the consumer was behind (live only)
    decode_errors: int = 0  # corrupt packets or frames skipped
    reconnects: int = 0
    last_frame_wall: float | None = None  # unix seconds of the last decoded frame
    last_error: str | None = None
    fps_in: float = 0.0  # decoded frames per second, recently
    fps_sampled: float = 0.0  # sampled frames per second, recently
    audio_state: AudioState = AudioState.NONE
    audio_seconds: float = 0.0  # audio delivered to the buffer, seconds at 16 kHz
    audio_decode_errors: int = 0  # damaged audio packets or frames skipped
    audio_dropped_seconds: float = 0.0  # oldest audio thrown away because the voice path was behind (live only)
