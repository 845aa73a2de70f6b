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
