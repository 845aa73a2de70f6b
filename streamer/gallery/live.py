"""The gallery served live at /gallery/ on the API's aiohttp app, from the same query layer.

With an API token set (always the case off localhost), every gallery request needs it. A browser
cannot send a bearer header when it follows a link, so `/gallery/?token=...` checks the token once
and keeps it in a cookie for this path only (HttpOnly, SameSite=Strict); requests carry either.
"""

from __future__ import annotations

import asyncio
import hmac
import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from memory.query import MemoryQuery, PersonNotFound

from .data import GalleryData
from .render import index_html, person_html, stylesheet

COOKIE = "streamer_gallery"
BASE = "/gallery/"
PAGE = re.compile(r"^(face|voice|character)_\d+$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class LiveGallery:
    def __init__(self, query: MemoryQuery, token: str | None) -> None:
        self.data = GalleryData(query)
        self.token = token

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/gallery", self._guarded(self._root)),
            web.get(BASE, self._guarded(self._index)),
            web.get(BASE + "gallery.css", self._guarded(self._css)),
            web.get(BASE + "crops/{crop:\\d+}.jpg", self._guarded(self._crop)),
            web.get(BASE + "voices/{node:\\d+}.wav", self._guarded(self._snippet)),
            web.get(BASE + "{page}.html", self._guarded(self._page)),
        ]

    def _allowed(self, request: web.Request) -> bool:
        if self.token is None:
            return True
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        offered = given.strip() if scheme.lower() == "bearer" else request.cookies.get(COOKIE, "")
        return hmac.compare_digest(offered.encode(), self.token.encode())

    def _guarded(self, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            given = request.query.get("token")
            if given is not None and self.token is not None and hmac.compare_digest(given.encode(), self.token.encode()):
                response = web.HTTPSeeOther(request.path)  # the token leaves the address bar (and the history)
                response.set_cookie(COOKIE, given, path="/gallery", httponly=True, samesite="Strict")
                raise response
            if not self._allowed(request):
                raise web.HTTPUnauthorized(text="the gallery needs the API token: open /gallery/?token=TOKEN",
                                           headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
            response = await handler(request)
            response.headers["Cache-Control"] = "no-store"  # personal data: nothing kept after forget
            return response

        return guarded

    async def _root(self, _request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(BASE)

    async def _index(self, _request: web.Request) -> web.StreamResponse:
        cards = await asyncio.to_thread(self.data.cards)
        return web.Response(text=index_html(cards), content_type="text/html")

    async def _css(self, _request: web.Request) -> web.StreamResponse:
        return web.Response(body=stylesheet(), content_type="text/css")

    async def _page(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["page"]
        if name == "index":
            return await self._index(request)
        if not PAGE.match(name):
            raise web.HTTPNotFound(text=f"no page {name}")
        try:
            page = await asyncio.to_thread(self.data.page, name)
        except PersonNotFound as e:
            raise web.HTTPNotFound(text=str(e)) from None
        return web.Response(text=person_html(page), content_type="text/html")

    async def _snippet(self, request: web.Request) -> web.StreamResponse:
        wav = await asyncio.to_thread(self.data.snippet, int(request.match_info["node"]))
        if wav is None:
            raise web.HTTPNotFound(text="no such voice snippet")
        return web.Response(body=wav, content_type="audio/wav")

    async def _crop(self, request: web.Request) -> web.StreamResponse:
        jpeg = await asyncio.to_thread(self.data.crop, int(request.match_info["crop"]))
        if jpeg is None:
            raise web.HTTPNotFound(text="no such crop")
        return web.Response(body=jpeg, content_type="image/jpeg")
