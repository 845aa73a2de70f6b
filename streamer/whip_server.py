"""A WHIP endpoint: cameras, robots, browsers or OBS push to http://HOST:PORT/whip/<stream>.

POST an SDP offer (all candidates inside, no trickle) and get the answer back with 201 and a
Location; DELETE that Location to end the push. Each push is the live stream <stream> of the app
until it ends (DELETE, peer gone, connection failed), which closes its clip, not the process.
GET / serves a page that pushes the browser's own camera.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from importlib.resources import files
from typing import TYPE_CHECKING

from aiohttp import web
from aiortc import RTCSessionDescription

from .config import STREAM_NAME
from .errors import ShuttingDown, StreamerError
from .serving import run_serving
from .webrtc.peer import new_peer
from .webrtc.push import PushSource
from .webrtc.track_source import TrackSource

if TYPE_CHECKING:
    from .app import App, RunSummary
    from .faces.models import ModelPack

log = logging.getLogger(__name__)

MAX_OFFER_BYTES = 64 * 1024
SHUTDOWN_SECONDS = 1.0  # a handler still negotiating at stop gets this long


class WhipServer:
    """Takes pushes into a running `app` (after `app.wait_ready()`); `stop()` ends them all."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.cfg = app.cfg.webrtc
        self._pushes: dict[str, tuple[str, PushSource]] = {}  # stream -> (session id, source)
        web_app = web.Application(client_max_size=MAX_OFFER_BYTES)
        web_app.add_routes(
            [
                web.get("/", self._page),
                web.post("/whip/{stream}", self._post),
                web.delete("/whip/{stream}/{session}", self._delete),
            ]
        )
        self._runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=SHUTDOWN_SECONDS)
        self.port: int | None = None

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.cfg.whip_host, self.cfg.whip_port)
        try:
            await site.start()
        except OSError as e:
            raise StreamerError(f"cannot listen for WHIP on {self.cfg.whip_host}:{self.cfg.whip_port}: {e.strerror}") from None
        self.port = self._runner.addresses[0][1]
        if self.cfg.whip_token is None:
            log.warning("WHIP pushes need no token: anyone who reaches port %d can push", self.port)
        log.info("WHIP: push to http://%s:%d/whip/<stream>", self.cfg.whip_host, self.port)

    async def stop(self) -> None:
        await self._runner.cleanup()
        for name, (_, source) in list(self._pushes.items()):
            if self.app.sources.get(name) is source:
                await self.app.remove_source(name)
            else:
                await source.close()

    async def _page(self, _request: web.Request) -> web.Response:
        page = files("streamer.webrtc").joinpath("static/push.html").read_text(encoding="utf-8")
        return web.Response(text=page, content_type="text/html")

    def _authorize(self, request: web.Request) -> None:
        token = self.cfg.whip_token
        if token is None:
            return
        given = request.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            raise web.HTTPUnauthorized(text="a valid bearer token is needed", headers={"WWW-Authenticate": "Bearer"})

    async def _post(self, request: web.Request) -> web.Response:
        self._authorize(request)
        name = request.match_info["stream"]
        if not STREAM_NAME.match(name):
            raise web.HTTPBadRequest(text="stream names are letters, digits, '_' or '-'")
        if request.content_type != "application/sdp":
            raise web.HTTPUnsupportedMediaType(text="the body must be an SDP offer (application/sdp)")
        offer = await request.text()
        if "m=video" not in offer:
            raise web.HTTPBadRequest(text="the offer has no video")
        # No await from this check to the reservation: two pushes racing for one name cannot both pass.
        if name in self._pushes or name in self.app.sources:
            raise web.HTTPConflict(text=f"stream {name!r} is in use")
        session = secrets.token_urlsafe(12)
        cfg = self.app.cfg
        source = PushSource(
            name, fps=cfg.sources.fps, defaults=cfg.sources, on_close=self._released,
            audio=cfg.voices.enabled, audio_buffer_seconds=cfg.voices.buffer_seconds,
        )  # fmt: skip
        self._pushes[name] = (session, source)
        pc = new_peer(self.cfg.ice_servers)
        source.attach(pc)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        except (ValueError, AssertionError) as e:  # how aiortc refuses an offer (its SDP parser asserts)
            await source.close()
            raise web.HTTPBadRequest(text=f"cannot use this offer: {e or 'malformed SDP'}") from None
        except BaseException:
            await source.close()
            raise
        try:
            self.app.add_source(source)
        except ValueError:  # a camera of that name started while we negotiated
            await source.close()
            raise web.HTTPConflict(text=f"stream {name!r} is in use") from None
        except ShuttingDown as e:
            await source.close()
            raise web.HTTPServiceUnavailable(text=str(e)) from None
        log.info("%s: push from %s", name, request.remote)
        return web.Response(
            status=201,
            text=pc.localDescription.sdp,
            content_type="application/sdp",
            headers={"Location": f"/whip/{name}/{session}"},
        )

    async def _delete(self, request: web.Request) -> web.Response:
        self._authorize(request)
        name, session = request.match_info["stream"], request.match_info["session"]
        push = self._pushes.get(name)
        if push is None or not hmac.compare_digest(push[0], session):
            raise web.HTTPNotFound(text="no such push")
        source = push[1]
        if self.app.sources.get(name) is source:
            await self.app.remove_source(name)
        else:
            await source.close()
        return web.Response(text="push ended")

    def _released(self, source: TrackSource) -> None:
        if self._pushes.get(source.name, (None, None))[1] is source:
            del self._pushes[source.name]


async def run_with_whip(app: App, pack: ModelPack | None = None) -> RunSummary:
    """Run `app` and take WHIP pushes from the moment it is ready until it stops."""
    server = WhipServer(app)
    return await run_serving(app, app.run(pack), server.start, server.stop)
