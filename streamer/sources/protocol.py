"""What the app needs of a source: files, cameras (Source) and WebRTC pushes alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from ..records import Frame
from .audio_buffer import AudioBuffer
from .state import SourceStats


class StreamSource(Protocol):
    name: str
    is_live: bool
    duration: float | None
    stats: SourceStats
    audio: AudioBuffer | None  # None: no audio wanted, or the source has none

    def frames(self) -> AsyncIterator[Frame]: ...

    async def close(self) -> None: ...
