"""The cameras that workers share: the `--config` file's (or the command line's with `--shared`), or
those in the key-value bucket `<prefix>_cameras`, where each key is a camera's name and its value
the rest of its config as JSON (`{"url": "rtsp://...", "fps": 5}`)."""

from __future__ import annotations

import json
import logging
import time
from typing import Protocol

from nats.js.kv import KeyValue
from pydantic import ValidationError

from ..config import CameraConfig
from ..errors import ConfigError
from ..source_urls import never_ends
from .connection import entries

log = logging.getLogger(__name__)

REFRESH_SECONDS = 5.0  # a camera added to the bucket is taken within this (plus a lease round)


class Catalog(Protocol):
    async def cameras(self) -> dict[str, CameraConfig]: ...


def shareable(cam: CameraConfig) -> bool:
    """Only live cameras are shared: a file is analysed once, by the worker it was given to."""
    return never_ends(cam.url)


class FixedCatalog:
    def __init__(self, cameras: list[CameraConfig]) -> None:
        files = [c.name for c in cameras if c.enabled and not shareable(c)]
        if files:
            raise ConfigError(
                f"shared cameras must be live (rtsp://, http://, /dev/video...); give files to a worker without --shared: {', '.join(files)}"
            )
        self._cameras = {c.name: c for c in cameras if c.enabled}

    async def cameras(self) -> dict[str, CameraConfig]:
        return self._cameras


class BucketCatalog:
    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv
        self._cameras: dict[str, CameraConfig] = {}
        self.refresh_seconds = REFRESH_SECONDS
        self._read_at: float | None = None
        self._rejected: set[tuple[str, bytes]] = set()  # reported once each

    async def cameras(self) -> dict[str, CameraConfig]:
        if self._read_at is None or time.monotonic() - self._read_at >= self.refresh_seconds:
            found = {}
            for key, e in (await entries(self._kv)).items():
                cam = self._parse(key, e.value or b"")
                if cam is not None and cam.enabled:
                    found[key] = cam
            self._cameras, self._read_at = found, time.monotonic()
        return self._cameras

    def _parse(self, key: str, value: bytes) -> CameraConfig | None:
        try:
            cam = CameraConfig(name=key, **json.loads(value))
            problem = None if shareable(cam) else "not a live camera"
        except (ValueError, TypeError, ValidationError) as e:
            cam, problem = None, str(e).splitlines()[0]
        if problem is None:
            return cam
        if (key, value) not in self._rejected:
            self._rejected.add((key, value))
            log.error("camera %s in the bucket skipped: %s", key, problem)
        return None
