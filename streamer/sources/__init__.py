"""Sources: files, cameras and microphones, decoded in worker threads; frames sampled by timestamp,
audio resampled into a bounded buffer."""

from .audio_buffer import AudioBuffer
from .base import Source, StateCallback
from .factory import open_source
from .protocol import StreamSource
from .state import AudioState, SourceState, SourceStats

__all__ = [
    "AudioBuffer",
    "AudioState",
    "Source",
    "SourceState",
    "SourceStats",
    "StateCallback",
    "StreamSource",
    "open_source",
]
