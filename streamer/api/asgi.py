"""Serve an ASGI application (the MCP SDK's streamable HTTP transport) from an aiohttp handler, so MCP
shares the API's port, token check and event loop instead of bringing a second web server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Asgi = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


def asgi_handler(app: Asgi) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        host, port = (request.transport.get_extra_info("sockname") or ("127.0.0.1", 0))[:2] if request.transport else ("127.0.0.1", 0)
        scope: Scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": request.method,
            "scheme": request.scheme, "path": request.path, "raw_path": request.raw_path.split("?")[0].encode(),
            "query_string": request.query_string.encode(), "root_path": "",
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in request.headers.items()],
            "client": (request.remote or "", 0), "server": (host, port),
        }  # fmt: skip
        delivered = False
        gone = asyncio.Event()  # set when the request is over; a transport that listens for a disconnect waits on it

        async def receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        response: web.StreamResponse | None = None

        async def send(message: Message) -> None:
            nonlocal response
            if message["type"] == "http.response.start":
                headers = CIMultiDict((k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", []))
                response = web.StreamResponse(status=message["status"], headers=headers)
                await response.prepare(request)
            elif message["type"] == "http.response.body" and response is not None:
                await response.write(message.get("body", b""))
                if not message.get("more_body", False):
                    await response.write_eof()

        try:
            await app(scope, receive, send)
        finally:
            gone.set()
        if response is None:
            return web.Response(status=500, text="the MCP transport gave no response")
        return response

    return handle
