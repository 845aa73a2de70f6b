"""Bounded buffers between the video pipeline and the publisher for the not-durable, latest-wins topics.

Callers never wait: a stream's status replaces the unsent one, and faces messages beyond the
buffer push out the oldest.
"""

from __future__ import annotations

from collections import deque
from typing import Any

FACES_BUFFER = 64  # messages; at 5 fps x 4 cameras that is about 3 s of backlog


class FaceRateLimit:
    """Keeps a track out of faces messages for 1/max_hz after it was sent, unless its node changed.
    Only the tracks of a stream's latest call are remembered, so the state stays as small as a frame."""

    def __init__(self, max_hz: float) -> None:
        self.interval = 1.0 / max_hz
        self._sent: dict[str, dict[int, tuple[float, Any]]] = {}  # stream -> track -> (time, node)

    def select(self, stream: str, faces: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
        before = self._sent.get(stream, {})
        after: dict[int, tuple[float, Any]] = {}
        due = []
        for face in faces:
            track, node = face["track"], face.get("node")
            last = before.get(track)
            if last is None or now - last[0] >= self.interval or last[1] != node:
                due.append(face)
                after[track] = (now, node)
            else:
                after[track] = last
        self._sent[stream] = after
        return due


class LiveBuffer:
    def __init__(self) -> None:
        self.status: dict[str, bytes] = {}  # stream -> latest status payload, kept to republish on reconnect
        self.unsent_status: set[str] = set()
        self.faces: deque[tuple[str, bytes]] = deque(maxlen=FACES_BUFFER)

    def put_status(self, stream: str, payload: bytes) -> None:
        self.status[stream] = payload
        self.unsent_status.add(stream)

    def put_faces(self, stream: str, payload: bytes) -> None:
        self.faces.append((stream, payload))

    def resend_all_status(self) -> None:
        self.unsent_status = set(self.status)

    def take_status(self) -> list[tuple[str, bytes]]:
        out = [(s, self.status[s]) for s in sorted(self.unsent_status)]
        self.unsent_status.clear()
        return out

    def take_faces(self) -> list[tuple[str, bytes]]:
        out = list(self.faces)
        self.faces.clear()
        return out
