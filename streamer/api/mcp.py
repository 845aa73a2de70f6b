"""MCP tools over the query layer, for a language-model agent: `streamer mcp --db PATH` (stdio) and
/mcp on the API port (streamable HTTP). Read-only: edits go through the HTTP API with its token.

Names and descriptions are written for a model choosing a tool: what the tool answers, what a
person may be called, and what comes back. Every answer is JSON with ids, streams and times (unix
seconds with ISO 8601 twins), so a follow-up question can name what came back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field

from memory.errors import MemoryGraphError
from memory.query import MemoryQuery

from .answers import jsonable, parse_time

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "A memory of the people a set of cameras and microphones has seen and heard: faces, voices, who said what, "
    "and per 30-second clip what happened. A person can be named by their label (e.g. 'Anna'), a tag from an "
    "earlier answer (<face_3>, <voice_7>, <character_2>) or a node id. Unlabelled people appear only as tags. "
    "Times are unix seconds, ISO 8601 or relative like -2h; answers give both unix and ISO times."
)
Person = Annotated[str, Field(description="the person: a label like 'Anna', a tag like <face_3> or <character_2>, or a node id")]
Since = Annotated[str | None, Field(description="from this time: ISO 8601, unix seconds, or relative like -30m, -2h, -1d; omit for no limit")]
Until = Annotated[str | None, Field(description="up to this time, same forms as since; omit for now")]


def build_mcp(query: MemoryQuery) -> Any:
    """The MCP server (an mcp.server.mcpserver.MCPServer) with the memory's tools."""
    from mcp.server.mcpserver import MCPServer  # noqa: PLC0415 (only those who serve MCP load the SDK)
    from mcp.server.mcpserver.exceptions import ToolError  # noqa: PLC0415

    server = MCPServer("streamer-memory", instructions=INSTRUCTIONS, log_level="WARNING")

    async def ask(fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return jsonable(await asyncio.to_thread(fn, *args))
        except (MemoryGraphError, ValueError) as e:  # an unknown person, a bad time: the model should read why
            raise ToolError(str(e)) from None

    def when(text: str | None) -> float | None:
        try:
            return parse_time(text)
        except ValueError as e:
            raise ToolError(str(e)) from None

    @server.tool(description="List everyone the memory knows: each person's tag, label (if named), character id and face/voice node ids. "
                             "Use it to find out who can be asked about, or to map a name to its tags.")  # fmt: skip
    async def list_people() -> dict[str, Any]:
        return {"people": await ask(query.people)}

    @server.tool(description="Who is in front of the cameras right now: the people present in each stream (camera), since when. "
                             "Answers 'who is here?', 'who is in front of me?', 'is anybody in the kitchen?'.")  # fmt: skip
    async def who_is_here(stream: Annotated[str | None, Field(description="only this stream (camera) name; omit for all")] = None) -> dict[str, Any]:
        return {"present": await ask(query.present, stream)}

    @server.tool(description="Who was seen (face) or heard (voice) during a time range, per person and stream, with first and last time. "
                             "Answers 'who was in the kitchen this morning?' or 'who came by in the last hour?'.")  # fmt: skip
    async def who_was_seen(
        since: Annotated[str, Field(description="start: ISO 8601, unix seconds, or relative like -1h, -1d")],
        until: Until = None,
        stream: Annotated[str | None, Field(description="only this stream (camera) name; omit for all")] = None,
    ) -> dict[str, Any]:
        start = when(since)
        if start is None:
            raise ToolError("since is required")
        return {"seen": await ask(query.seen_between, start, when(until), stream)}

    @server.tool(description="When and where a person was last seen (face on camera) and last heard (voice): stream, start and end "
                             "of that visit and how many seconds it lasted. Answers 'when did I last see Anna?'.")  # fmt: skip
    async def last_seen(person: Person) -> dict[str, Any]:
        return await ask(query.last_seen, person)  # type: ignore[no-any-return]

    @server.tool(description="What a person said: their transcribed speech turns with stream and times, oldest first. "
                             "Answers 'what did Anna say?' or 'what did she say this morning?'.")  # fmt: skip
    async def what_did_they_say(
        person: Person, since: Since = None, until: Until = None,
        limit: Annotated[int, Field(ge=1, le=1000, description="at most this many of the latest turns")] = 50,
    ) -> dict[str, Any]:  # fmt: skip
        return {"said": await ask(query.said, person, when(since), when(until), limit)}

    @server.tool(description="Who a person was with: the people who shared clips (30-second stretches of a stream) with them, "
                             "how many clips, and in how many both were on screen at the same time. Answers 'who was Anna with?'.")  # fmt: skip
    async def who_were_they_with(person: Person, since: Since = None, until: Until = None) -> dict[str, Any]:
        return {"companions": await ask(query.together, person, when(since), when(until))}

    @server.tool(description="Everything memory holds about one clip of a stream: episodic memories (who was there, who was "
                             "together, who said what), semantic memories about its people, the people and the speech. "
                             "Clip numbers come from search results and other answers (clip = stream seconds / 30).")  # fmt: skip
    async def clip_memories(
        stream: Annotated[str, Field(description="the stream (camera) name")],
        clip: Annotated[int, Field(ge=0, description="the clip number in that stream")],
    ) -> dict[str, Any]:
        return await ask(query.clip, stream, clip)  # type: ignore[no-any-return]

    @server.tool(description="Search memories and transcripts by words and by meaning (a paraphrase finds it: 'who likes tea' finds "
                             "'I drink tea every morning'). Returns the best matches with who they are about, stream, time and clip. "
                             "Use it for questions about topics, facts or things said rather than about a named person's whereabouts.")  # fmt: skip
    async def search_memory(
        query_text: Annotated[str, Field(description="words or a question in plain language")],
        limit: Annotated[int, Field(ge=1, le=100, description="at most this many results")] = 10,
    ) -> dict[str, Any]:
        return {"hits": await ask(query.search, query_text, limit)}

    return server


def run_stdio(db: str) -> None:
    """`streamer mcp --db PATH`: the tools over stdin/stdout until the client closes them."""
    import anyio  # noqa: PLC0415

    with MemoryQuery(db) as query:
        anyio.run(build_mcp(query).run_stdio_async)
