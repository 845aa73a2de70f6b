"""The HTTP API on a memory built the way the streamer builds it (tests/query/asked.py): tokens, bad
parameters, unknown people, answers, edits through the memory's own thread, and a live writer."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from support.asked import ANNA_SAYS, Built
from support.realfaces import FaceBank
from support.scenario import Clock, Scene

from memory import Memory, MemoryConfig
from memory.query import MemoryQuery
from streamer.api.server import ApiServer, check_token
from streamer.errors import StreamerError
from streamer.memory_worker import MemoryWorker

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def built(original: Built) -> Built:
    return original  # each test that changes the memory works on a copy (_copy)


def _copy(built: Built, path: Path) -> Path:
    with sqlite3.connect(built.db) as src, sqlite3.connect(path) as dst:
        src.backup(dst)
    return path


@asynccontextmanager
async def serving(db: Path, token: str | None = TOKEN, editor: Any = None) -> AsyncIterator[Callable[..., Any]]:
    """The API on a free port; yields get(path, headers) -> (status, json)."""
    query = MemoryQuery(db)
    server = ApiServer(query, "127.0.0.1", 0, token, editor)
    await server.start()
    session = aiohttp.ClientSession()

    async def call(method: str, path: str, headers: dict[str, str] | None = AUTH, body: Any = None) -> tuple[int, Any]:
        async with session.request(method, f"http://127.0.0.1:{server.port}{path}", headers=headers, json=body) as r:
            return r.status, await r.json(content_type=None)

    try:
        yield call
    finally:
        await session.close()
        await server.stop()
        query.close()


def test_a_token_is_needed_when_set_and_off_localhost() -> None:
    with pytest.raises(StreamerError, match="open to the network: give it a token"):
        check_token("0.0.0.0", None)
    check_token("0.0.0.0", TOKEN)
    check_token("127.0.0.1", None)
    check_token("::1", None)


def test_wrong_or_missing_token_is_401(built: Built) -> None:
    async def main() -> None:
        async with serving(built.db) as call:
            for headers in (None, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}):
                for path in ("/api/people", "/api/people/Anna/last-seen", "/api/search?q=tea"):
                    status, body = await call("GET", path, headers)
                    assert (status, body) == (401, {"error": "a valid bearer token is needed"}), (path, headers)
                status, _ = await call("POST", "/mcp", headers, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
                assert status == 401
            status, people = await call("GET", "/api/people")
            assert status == 200 and [p["label"] for p in people][:2] == ["Anna", "Ben"]

    asyncio.run(main())


def test_bad_parameters_are_400_with_a_clear_message(built: Built) -> None:
    cases = {
        "/api/people/Anna/said?limit=many": "limit must be a whole number, not 'many'",
        "/api/people/Anna/said?limit=0": "limit must be between 1 and 1000, not 0",
        "/api/people/Anna/said?since=yesterday": "cannot read the time 'yesterday': give unix seconds, ISO 8601 (2026-05-01T09:30) or -30m, -2h, -1d",
        "/api/seen": "since is required (unix seconds, ISO 8601 or -30m, -2h, -1d)",
        "/api/seen?since=100&until=50": "the range ends (50.0) before it starts (100.0)",
        "/api/search": "q is required: the words or question to search for",
        "/api/search?q=tea&limit=1000": "limit must be between 1 and 100, not 1000",
        "/api/clips/kitchen/first": "index must be a whole number, not 'first'",
    }

    async def main() -> None:
        async with serving(built.db) as call:
            for path, message in cases.items():
                assert await call("GET", path) == (400, {"error": message}), path

    asyncio.run(main())


def test_unknown_people_and_clips_are_404(built: Built) -> None:
    async def main() -> None:
        async with serving(built.db) as call:
            for path in ("/api/people/Zoe/last-seen", "/api/people/%3Cface_999%3E/said", "/api/people/4242/together"):
                status, body = await call("GET", path)
                assert status == 404 and body["error"].startswith("nobody called "), path
            assert await call("GET", "/api/clips/kitchen/7") == (404, {"error": "no clip 7 of stream 'kitchen' in the memory"})

    asyncio.run(main())


def test_answers_carry_ids_streams_and_times(built: Built) -> None:
    async def main() -> None:
        async with serving(built.db) as call:
            status, last = await call("GET", "/api/people/anna/last-seen")
            assert status == 200 and last["person"]["character"] == built.character
            assert last["seen"]["stream"] == "kitchen" and last["seen"]["start"] == built.start and last["seen"]["start_iso"]
            _, said = await call("GET", f"/api/people/%3Cface_{built.anna_face}%3E/said")
            assert [u["text"] for u in said] == ANNA_SAYS and all(u["voice"] == built.anna_voice for u in said)
            _, together = await call("GET", "/api/people/Anna/together")
            assert [(c["person"]["label"], c["together"]) for c in together] == [("Ben", 1)]
            _, hits = await call("GET", "/api/search?q=who%20has%20family%20in%20Portugal")
            assert "Lisbon" in hits[0]["text"] and hits[0]["people"][0]["label"] == "Anna"
            assert all("vec" not in h and "embedding" not in h for h in hits)
            _, clip = await call("GET", "/api/clips/kitchen/0")
            assert clip["episodic"][0]["text"].startswith("Anna (<face_")
            status, doc = await call("GET", "/api/openapi.json", None)
            assert status == 200 and doc["openapi"].startswith("3.") and "/api/people/{person}/last-seen" in doc["paths"]

    asyncio.run(main())


def test_edits_go_through_the_memory_thread_and_emit_events(built: Built, tmp_path: Path) -> None:
    db = _copy(built, tmp_path / "edit.db")

    async def main() -> None:
        worker = MemoryWorker(Memory(MemoryConfig(db=str(db))))

        async def editor(fn: Callable[[Memory], Any]) -> Any:
            return await worker.call(fn)

        try:
            async with serving(db, None, editor) as call:  # no token: no edits
                assert await call("POST", f"/api/nodes/{built.cleo_face}/label", None, {"label": "Cleo"}) == (
                    403, {"error": "edits need a token: start the API with --api-token (or STREAMER_API_TOKEN)"})  # fmt: skip
            async with serving(db, TOKEN, editor) as call:
                assert (await call("POST", f"/api/nodes/{built.cleo_face}/label", None, {"label": "Cleo"}))[0] == 401
                status, body = await call("POST", f"/api/nodes/{built.cleo_face}/label", AUTH, {"label": "Cleo"})
                assert status == 200 and (body["node"], body["label"]) == (built.cleo_face, "Cleo")
                status, last = await call("GET", "/api/people/Cleo/last-seen")
                assert status == 200 and last["seen"]["stream"] == "door"  # the next question sees the edit
                assert (await call("POST", f"/api/nodes/{built.cleo_face}/label", AUTH, {"name": "Cleo"}))[1] == {
                    "error": "the body needs 'label' (str)"}  # fmt: skip
                status, body = await call("POST", "/api/characters/link", AUTH, {"face": built.anna_face, "voice": built.ben_face})
                assert status == 400 and "joins a face node to a voice node" in body["error"]
                assert (await call("POST", "/api/nodes/9999/merge", AUTH, {"other": built.cleo_face}))[0] == 404
                status, body = await call("POST", "/api/characters/unlink", AUTH, {"face": built.ben_face, "voice": built.ben_voice})
                assert status == 200 and body["character"] is None
        finally:
            await asyncio.to_thread(worker.close)
        with Memory(MemoryConfig(db=str(db))) as memory:
            types = [(e.type, e.data.get("node"), e.data.get("label")) for e in memory.events_after(0, 100_000)]
        assert ("node.labelled", built.cleo_face, "Cleo") in types
        assert any(t == "character.updated" for t, _, _ in types[-3:])

    asyncio.run(main())


def test_concurrent_questions_while_a_live_memory_writes(built: Built, bank: FaceBank, tmp_path: Path) -> None:
    db = _copy(built, tmp_path / "live.db")
    stop = threading.Event()
    shown: list[int] = []

    def live() -> None:  # a stranger keeps walking past the hall camera; the memory flushes as in a run
        clock = Clock(built.clock.now + 1000)
        with Memory(MemoryConfig(db=str(db)), clock=clock) as memory:
            scene = Scene(memory, clock, bank)
            person = bank.distinct()[4]
            while not stop.is_set():
                scene.show(person, 4, stream="hall")
                memory.tick()
                memory.flush()
                shown.append(1)

    async def main() -> None:
        async with serving(db) as call:
            paths = ["/api/people/Anna/last-seen", "/api/people/Anna/said", "/api/people/Anna/together", "/api/clips/kitchen/0"]
            expected = [await call("GET", p) for p in paths]
            writer = threading.Thread(target=live)
            writer.start()
            try:
                for _ in range(8):
                    answers = await asyncio.gather(*(call("GET", p) for p in paths * 3), call("GET", f"/api/seen?since={built.start}&stream=hall"))
                    assert list(answers[:-1]) == expected * 3  # what the writer does not touch reads the same
                    status, hall = answers[-1]
                    assert status == 200 and all(s["first"] <= s["last"] for s in hall)
            finally:
                stop.set()
                await asyncio.to_thread(writer.join)
            assert shown, "the writer wrote nothing while the questions ran"

    asyncio.run(main())
