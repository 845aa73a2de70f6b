"""A live source fed by one WHIP push: its stream ends when its peer is gone."""

from __future__ import annotations

import logging

from ..sources import SourceState
from .track_source import TrackSource

log = logging.getLogger(__name__)


class PushSource(TrackSource):
    """One push (made by the WHIP server), as a source of the app."""

    async def _run(self) -> None:
        reason = await self.lost()
        log.info("%s: push ended: %s", self.name, reason)
        self.stats.last_error = reason
        self.set_state(SourceState.ENDED)
        await self.detach()
        self._finish()
