"""The HTTP JSON API: questions (GET) and edits (POST) under /api, described at /api/openapi.json.

Queries run in worker threads on the read-only query layer, so the event loop (and the live run on
it) never waits for SQLite. Errors are JSON {"error": "..."}: 400 for a bad parameter, 401 without
the token, 403 for an edit when no token is set, 404 for an unknown person, node or clip.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from memory.errors import MemoryGraphError, NodeNotFound, StoreError
from memory.query import MemoryQuery, QueryError

from . import edits
from .answers import jsonable, parse_time
from .edits import Editor
from .openapi import openapi

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PROTECTED = ("/api", "/mcp")


class EditRefused(Exception):
    """An edit the API does not take (HTTP 403)."""


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


def auth_middleware(token: str | None) -> Any:
    """With a token set, every request under /api and /mcp must carry it (Authorization: Bearer ...)."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token is not None and request.path.startswith(PROTECTED) and request.path != "/api/openapi.json":
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
                return _error(401, "a valid bearer token is needed", **{"WWW-Authenticate": "Bearer"})
        return await handler(request)

    return check


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except EditRefused as e:
        return _error(403, str(e))
    except NodeNotFound as e:  # people, nodes and clips
        return _error(404, str(e))
    except (QueryError, ValueError, MemoryGraphError) as e:
        if isinstance(e, StoreError):
            log.warning("API: %s", e)
            return _error(503, str(e))
        return _error(400, str(e))


def _int(request: web.Request, name: str, default: int | None = None, where: str = "query") -> int:
    raw = request.query.get(name) if where == "query" else request.match_info.get(name)
    if raw is None or raw == "":
        if default is None:
            raise QueryError(f"{name} is required")
        return default
    try:
        return int(raw)
    except ValueError:
        raise QueryError(f"{name} must be a whole number, not {raw!r}") from None


def _time(request: web.Request, name: str) -> float | None:
    return parse_time(request.query.get(name))


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except json.JSONDecodeError:
        raise QueryError("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise QueryError("the body must be a JSON object")
    return body


def _field(body: dict[str, Any], name: str, kind: type) -> Any:
    value = body.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise QueryError(f"the body needs {name!r} ({kind.__name__})")
    return value


class Routes:
    def __init__(self, query: MemoryQuery, editor: Editor | None, token: str | None) -> None:
        self.query = query
        self.editor = editor
        self.token = token

    def table(self) -> list[web.RouteDef]:
        return [
            web.get("/api/openapi.json", self._openapi),
            web.get("/api/people", self._people),
            web.get("/api/present", self._present),
            web.get("/api/seen", self._seen),
            web.get("/api/people/{person}/last-seen", self._last_seen),
            web.get("/api/people/{person}/said", self._said),
            web.get("/api/people/{person}/together", self._together),
            web.get("/api/clips/{stream}/{index}", self._clip),
            web.get("/api/search", self._search),
            web.post("/api/nodes/{node}/label", self._label),
            web.post("/api/nodes/{node}/merge", self._merge),
            web.post("/api/nodes/{node}/split", self._split),
            web.post("/api/characters/link", self._link),
            web.post("/api/characters/unlink", self._unlink),
            web.post("/api/forget", self._forget),
        ]

    async def _ask(self, fn: Callable[..., Any], *args: Any) -> web.Response:
        return web.json_response(jsonable(await asyncio.to_thread(fn, *args)))

    async def _openapi(self, _request: web.Request) -> web.Response:
        return web.json_response(openapi())

    async def _people(self, _request: web.Request) -> web.Response:
        return await self._ask(self.query.people)

    async def _present(self, request: web.Request) -> web.Response:
        return await self._ask(self.query.present, request.query.get("stream"))

    async def _seen(self, request: web.Request) -> web.Response:
        since = _time(request, "since")
        if since is None:
            raise QueryError("since is required (unix seconds, ISO 8601 or -30m, -2h, -1d)")
        return await self._ask(self.query.seen_between, since, _time(request, "until"), request.query.get("stream"))

    async def _last_seen(self, request: web.Request) -> web.Response:
        return await self._ask(self.query.last_seen, request.match_info["person"])

    async def _said(self, request: web.Request) -> web.Response:
        person, limit = request.match_info["person"], _int(request, "limit", 100)
        return await self._ask(self.query.said, person, _time(request, "since"), _time(request, "until"), limit)

    async def _together(self, request: web.Request) -> web.Response:
        return await self._ask(self.query.together, request.match_info["person"], _time(request, "since"), _time(request, "until"))

    async def _clip(self, request: web.Request) -> web.Response:
        return await self._ask(self.query.clip, request.match_info["stream"], _int(request, "index", where="path"))

    async def _search(self, request: web.Request) -> web.Response:
        text = request.query.get("q", "")
        if not text.strip():
            raise QueryError("q is required: the words or question to search for")
        return await self._ask(self.query.search, text, _int(request, "limit", 10))

    # --- edits ------------------------------------------------------------------------------------

    def _may_edit(self) -> None:
        if self.token is None:
            raise EditRefused("edits need a token: start the API with --api-token (or STREAMER_API_TOKEN)")
        if self.editor is None:
            raise EditRefused("this API is read-only")

    async def _edit(self, fn: Callable[..., Any], *args: Any) -> web.Response:
        assert self.editor is not None  # _may_edit
        return web.json_response(await self.editor(lambda memory: fn(memory, *args)))

    async def _label(self, request: web.Request) -> web.Response:
        self._may_edit()
        name = _field(await _body(request), "label", str).strip()
        if not name:
            raise QueryError("the label is empty")
        return await self._edit(edits.label, _int(request, "node", where="path"), name)

    async def _merge(self, request: web.Request) -> web.Response:
        self._may_edit()
        other = _field(await _body(request), "other", int)
        return await self._edit(edits.merge, _int(request, "node", where="path"), other)

    async def _split(self, request: web.Request) -> web.Response:
        self._may_edit()
        tracks = _field(await _body(request), "tracks", list)
        if not tracks or not all(isinstance(t, int) and not isinstance(t, bool) for t in tracks):
            raise QueryError("'tracks' must be a non-empty list of track ids")
        return await self._edit(edits.split, _int(request, "node", where="path"), tracks)

    async def _link(self, request: web.Request) -> web.Response:
        self._may_edit()
        body = await _body(request)
        return await self._edit(edits.link, _field(body, "face", int), _field(body, "voice", int))

    async def _forget(self, request: web.Request) -> web.Response:
        self._may_edit()
        target = _field(await _body(request), "target", str)
        return await self._edit(edits.forget, target)

    async def _unlink(self, request: web.Request) -> web.Response:
        self._may_edit()
        body = await _body(request)
        return await self._edit(edits.unlink, _field(body, "face", int), _field(body, "voice", int))
