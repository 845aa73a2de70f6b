"""The API server: the JSON API (/api), its OpenAPI description and MCP over streamable HTTP (/mcp) on
one aiohttp app and port, bound to 127.0.0.1 unless told otherwise.

Off localhost a bearer token is required (the server refuses to start without one); with a token set,
every request needs it. Edits need a token in any case. While it runs, texts written by the live run
get their sentence vectors in the background, so a search seldom waits for them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from memory.query import MemoryQuery

from ..errors import StreamerError
from ..serving import run_serving
from ..gallery.live import LiveGallery
from .asgi import asgi_handler
from .edits import Editor
from .mcp import build_mcp
from .routes import Routes, auth_middleware, error_middleware

if TYPE_CHECKING:
    from ..app import App, RunSummary

log = logging.getLogger(__name__)

INDEX_EVERY_SECONDS = 10.0
SHUTDOWN_SECONDS = 1.0


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token(host: str, token: str | None) -> None:
    """StreamerError when the API would answer the network without a token."""
    if not is_loopback(host) and not token:
        raise StreamerError(f"the API on {host} would be open to the network: give it a token (--api-token or STREAMER_API_TOKEN)")


class ApiServer:
    def __init__(self, query: MemoryQuery, host: str, port: int, token: str | None, editor: Editor | None = None) -> None:
        check_token(host, token)
        self.query = query
        self.host, self.port = host, port
        self.token = token
        self.editor = editor
        self._stopping = asyncio.Event()
        self._mcp_task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self._indexer: asyncio.Task[None] | None = None
        self._index_stop = asyncio.Event()

    async def start(self) -> None:
        from mcp.server.streamable_http_manager import StreamableHTTPASGIApp  # noqa: PLC0415
        from mcp.server.transport_security import TransportSecuritySettings  # noqa: PLC0415

        mcp = build_mcp(self.query)
        # on localhost the SDK's DNS-rebinding guard stays on; elsewhere the token guards the port
        security = None if is_loopback(self.host) else TransportSecuritySettings(enable_dns_rebinding_protection=False)
        mcp.streamable_http_app(streamable_http_path="/mcp", json_response=True, stateless_http=True, transport_security=security)
        self._mcp_up = asyncio.Event()
        self._mcp_task = asyncio.create_task(self._mcp_lifetime(mcp.session_manager), name="api-mcp")
        await asyncio.wait({self._mcp_task, asyncio.create_task(self._mcp_up.wait())}, return_when=asyncio.FIRST_COMPLETED)
        if self._mcp_task.done():
            self._mcp_task.result()  # it failed to start: say why
        web_app = web.Application(middlewares=[auth_middleware(self.token), error_middleware])
        web_app.add_routes(Routes(self.query, self.editor, self.token).table())
        web_app.add_routes(LiveGallery(self.query, self.token).routes())
        web_app.router.add_route("*", "/mcp", asgi_handler(StreamableHTTPASGIApp(mcp.session_manager)))
        self._runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=SHUTDOWN_SECONDS)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.host, self.port).start()
        except OSError as e:
            await self.stop()
            raise StreamerError(f"cannot serve the API on {self.host}:{self.port}: {e.strerror or e}") from None
        self.port = self._runner.addresses[0][1]
        self._indexer = asyncio.create_task(self._index(), name="api-index")
        log.info("memory API on http://%s:%d/api (OpenAPI at /api/openapi.json, MCP at /mcp)", self.host, self.port)

    async def _mcp_lifetime(self, manager: Any) -> None:
        """The SDK's session manager lives in one task from start to stop (its task group must)."""
        async with manager.run():
            self._mcp_up.set()
            await self._stopping.wait()

    async def stop(self) -> None:
        if self._indexer is not None:
            # not cancelled: a cancel would leave its thread embedding with a query about to be closed
            self._index_stop.set()
            await asyncio.gather(self._indexer, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        self._stopping.set()
        if self._mcp_task is not None:
            await asyncio.gather(self._mcp_task, return_exceptions=True)

    async def _index(self) -> None:
        while not self._index_stop.is_set():
            try:
                await asyncio.to_thread(self.query.index_texts)
            except Exception:  # a busy or damaged file: searches still work by words; try again later
                log.warning("API: embedding new texts failed; retrying in %.0f s", INDEX_EVERY_SECONDS, exc_info=True)
            try:
                await asyncio.wait_for(self._index_stop.wait(), INDEX_EVERY_SECONDS)
            except asyncio.TimeoutError:
                pass


async def run_with_api(
    app: App, host: str, port: int, token: str | None, run: Callable[[App], Awaitable[RunSummary]]
) -> RunSummary:
    """Run `app` (through `run`: app.run, or with WHIP pushes) and answer on the API from the moment it is
    ready until it stops; edits go through the app's memory thread."""

    async def edit(fn: Callable[..., Any]) -> Any:
        return await app.worker.call(fn)

    serving: list[tuple[ApiServer, MemoryQuery]] = []  # the file exists only once the app is ready

    async def start() -> None:
        check_token(host, token)
        query = MemoryQuery(app.cfg.memory.db)
        serving.append((ApiServer(query, host, port, token, edit), query))
        await serving[0][0].start()

    async def stop() -> None:
        for server, query in serving:
            await server.stop()
            query.close()

    return await run_serving(app, run(app), start, stop)
