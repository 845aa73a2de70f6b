"""Pull a stream from a WebRTC server over WHEP (`whep://host:port/path`), reconnecting like a camera."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from urllib.parse import urljoin

import aiohttp
from aiortc import RTCSessionDescription

from ..config import IceServer, SourceDefaults
from ..sources import SourceState
from ..sources.av_reader import one_line
from ..sources.base import AUDIO_BUFFER_SECONDS
from ..sources.rate import Backoff
from .peer import new_peer
from .track_source import TrackSource

log = logging.getLogger(__name__)

SCHEMES = {"whep://": "http://", "wheps://": "https://"}
DELETE_TIMEOUT_SECONDS = 1.0  # telling a server we left is a courtesy; close() must not wait on it


def is_whep_url(url: str) -> bool:
    return url.lower().startswith(tuple(SCHEMES))


def http_url(url: str) -> str:
    """The HTTP endpoint of a whep:// (http) or wheps:// (https) URL."""
    for scheme, http in SCHEMES.items():
        if url.lower().startswith(scheme):
            return http + url[len(scheme) :]
    raise ValueError(f"not a WHEP URL: {url}")


class WhepSource(TrackSource):
    """Receive-only offer (video and audio) posted to the server; the answer comes back in the reply.
    When the server goes away the source reconnects with backoff until closed, like an RTSP camera."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        fps: float,
        defaults: SourceDefaults,
        ice_servers: Sequence[IceServer] = (),
        audio: bool = True,
        audio_buffer_seconds: float = AUDIO_BUFFER_SECONDS,
    ) -> None:
        super().__init__(name, fps=fps, defaults=defaults, audio=audio, audio_buffer_seconds=audio_buffer_seconds)
        self.url = url
        self._endpoint = http_url(url)
        self._ice_servers = ice_servers
        self._backoff = Backoff(defaults.backoff_initial_seconds, defaults.backoff_max_seconds)

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self._defaults.open_timeout_seconds)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                reason = await self._pull(http)
                if self.received_video:
                    self._backoff.reset()
                self.stats.last_error = reason
                self.stats.fps_in = self.stats.fps_sampled = 0.0
                self.set_state(SourceState.RECONNECTING)
                delay = self._backoff.next()
                log.warning("%s: %s; reconnecting in %.1fs", self.name, reason, delay)
                await asyncio.sleep(delay)
                self.stats.reconnects += 1

    async def _pull(self, http: aiohttp.ClientSession) -> str:
        """One session with the server, from offer to loss; returns why it ended."""
        pc = new_peer(self._ice_servers)
        self.attach(pc)
        pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver("audio", direction="recvonly")
        resource: str | None = None
        try:
            await pc.setLocalDescription(await pc.createOffer())  # gathers every candidate: no trickle
            headers = {"Content-Type": "application/sdp"}
            async with http.post(self._endpoint, data=pc.localDescription.sdp, headers=headers) as reply:
                if reply.status not in (200, 201):
                    return f"server answered {reply.status} {reply.reason}"
                answer = await reply.text()
                if "Location" in reply.headers:
                    resource = urljoin(self._endpoint, reply.headers["Location"])
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            return await self.lost()
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            return one_line(e) if str(e) else f"{type(e).__name__} from {self._endpoint}"
        except ValueError as e:  # aiortc's word for an answer it cannot use
            return f"unusable answer: {one_line(e)}"
        finally:
            await self.detach()
            if resource is not None:
                await self._leave(http, resource)

    async def _leave(self, http: aiohttp.ClientSession, resource: str) -> None:
        try:
            async with http.delete(resource, timeout=aiohttp.ClientTimeout(total=DELETE_TIMEOUT_SECONDS)):
                pass
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            log.debug("%s: could not end the session at %s: %s", self.name, resource, e)
