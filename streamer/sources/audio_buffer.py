"""A bounded, thread-safe hand-over of audio chunks from a reader to the voice path."""

from __future__ import annotations

import threading
from collections import deque

from ..records import AudioChunk


class AudioBuffer:
    """Holds at most `max_seconds` of audio. A live source never waits (`drop_oldest`: the oldest
    chunks make room and are counted in `dropped_seconds`); a file waits for room, so every
    sample reaches the consumer. `close()` marks the end of the audio; `done` is then true once
    the consumer has taken the rest.
    """

    def __init__(self, max_seconds: float, drop_oldest: bool) -> None:
        if max_seconds <= 0:
            raise ValueError(f"max_seconds must be positive, got {max_seconds}")
        self.max_seconds = max_seconds
        self.drop_oldest = drop_oldest
        self.dropped_seconds = 0.0
        self._chunks: deque[AudioChunk] = deque()
        self._seconds = 0.0  # audio held now
        self._closed = False
        self._changed = threading.Condition()

    @property
    def seconds(self) -> float:
        """Seconds of audio waiting for the consumer."""
        return self._seconds

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def done(self) -> bool:
        """Closed and drained: no chunk will ever come again."""
        with self._changed:
            return self._closed and not self._chunks

    def put(self, chunk: AudioChunk) -> bool:
        """From the reader. False when the buffer is closed (before or while waiting for room)."""
        with self._changed:
            if self.drop_oldest:
                while self._chunks and self._seconds + chunk.seconds > self.max_seconds:
                    old = self._chunks.popleft()
                    self._seconds -= old.seconds
                    self.dropped_seconds += old.seconds
            else:
                # An empty buffer takes any chunk, however long, so a waiting reader always gets in.
                self._changed.wait_for(
                    lambda: self._closed or not self._chunks or self._seconds + chunk.seconds <= self.max_seconds
                )
            if self._closed:
                return False
            self._chunks.append(chunk)
            self._seconds += chunk.seconds
            self._changed.notify_all()
            return True

    def get(self, timeout: float) -> AudioChunk | None:
        """From the consumer: the oldest chunk, or None after `timeout` seconds or once `done`."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._chunks or self._closed, timeout) or not self._chunks:
                return None
            chunk = self._chunks.popleft()
            self._seconds = max(0.0, self._seconds - chunk.seconds) if self._chunks else 0.0
            self._changed.notify_all()
            return chunk

    def close(self) -> None:
        """No more audio: wakes a reader waiting for room and a consumer waiting for chunks."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
