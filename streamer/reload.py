"""Follow the config file's camera list while running: only cameras that were added, removed or
changed start or stop; the others go on untouched."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import CameraConfig, load_config
from .errors import ShuttingDown, StreamerError
from .opening import open_camera

if TYPE_CHECKING:
    from .app import App

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0

FileSignature = tuple[int, int, int] | None


def _signature(path: Path) -> FileSignature:
    """What tells a rewritten file apart, including one an editor replaced by renaming."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def _enabled(cameras: list[CameraConfig]) -> dict[str, CameraConfig]:
    return {c.name: c for c in cameras if c.enabled}


class CameraReloader:
    """Run `run()` as a task beside `App.run()`; it re-reads `path` when the file changes (polled) or on
    `request()` (SIGHUP). `overrides` are the command line's, applied again on every read."""

    def __init__(self, app: App, path: str | Path, overrides: dict[str, Any], poll_seconds: float = POLL_SECONDS) -> None:
        self._app = app
        self._path = Path(path)
        self._overrides = overrides
        self._poll = poll_seconds
        self._running = _enabled(app.cfg.cameras)  # what the file asked for and was started
        self._seen = _signature(self._path)
        self._wake = asyncio.Event()

    def request(self) -> None:
        """Reload now, changed or not (the SIGHUP handler)."""
        self._wake.set()

    async def run(self) -> None:
        await self._app.wait_ready()
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self._poll)
            except asyncio.TimeoutError:
                pass
            forced, signature = self._wake.is_set(), await asyncio.to_thread(_signature, self._path)
            self._wake.clear()
            if forced or signature != self._seen:
                self._seen = signature
                await self.reload()

    async def reload(self) -> None:
        try:
            cfg = await asyncio.to_thread(load_config, self._path, self._overrides)
        except (StreamerError, OSError) as e:
            log.error("reload ignored, %d cameras keep running: %s", len(self._running), e)
            return
        if cfg.model_dump(exclude={"cameras"}) != self._app.cfg.model_dump(exclude={"cameras"}):
            log.warning("reload: only the camera list follows the file; other settings change at restart")
        wanted = _enabled(cfg.cameras)
        gone = [name for name, cam in self._running.items() if wanted.get(name) != cam]
        new = [cam for name, cam in wanted.items() if self._running.get(name) != cam]
        for name in gone:
            await self._app.remove_source(name)
            del self._running[name]
        for cam in new:
            try:
                source = await asyncio.to_thread(open_camera, cam, self._app.cfg, realtime=self._app.realtime)
            except StreamerError as e:  # tried again at the next change of the file
                log.error("reload: camera %s not started: %s", cam.name, e)
                continue
            try:
                self._app.add_source(source)
            except ShuttingDown:
                await source.close()
                return
            self._running[cam.name] = cam
        if gone or new:
            log.info("reload: stopped %s, started %s", sorted(gone) or "none", sorted(c.name for c in new) or "none")
