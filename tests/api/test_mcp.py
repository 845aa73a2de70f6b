"""An agent's view: MCP clients from the `mcp` SDK, over stdio (`streamer mcp --db`) and over streamable
HTTP on the API port, asking a memory built by the whole streamer from a composed video with real
faces (the shipped photos) and a real recorded conversation (the demo's script). While that run
writes the file, HTTP questions come in concurrently and every answer is consistent."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from memory import Memory
from memory.query import MemoryQuery
from streamer.api.server import ApiServer, run_with_api
from streamer.app import App
from streamer.config import Config
from streamer.demo.cast import Person
from streamer.demo.compose import Appearance, Cut, render_video
from streamer.demo.run import TALK_AT, TALK_FROM, A, B, E, F, demo_script  # E is the first speaker of the recording: Diane
from streamer.demo.talking import talking_mouths
from streamer.demo.speech import load_conversation
from streamer.faces.detector import FaceDetector
from streamer.faces.models import ModelPack
from streamer.memory_worker import MemoryWorker

pytestmark = pytest.mark.timeout(900)

TOKEN = "agent-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TOOLS = {"list_people", "who_is_here", "who_was_seen", "last_seen", "what_did_they_say", "who_were_they_with", "clip_memories", "search_memory"}


@dataclass(frozen=True)
class Run:
    db: Path
    script: list[Appearance | Cut]
    answers: list[tuple[str, int, Any]]  # (path, status, body) of questions asked while the run wrote the file


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def run(cast: list[Person], detector: FaceDetector, pack: ModelPack, tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("ask")
    conversation = load_conversation()
    script, audio, talk = demo_script(conversation)  # the demo's video: lips that move with their own voices
    mouths = talking_mouths(cast, detector, conversation, dict(zip((E, F), conversation.speakers)), lambda t: TALK_FROM + (t - TALK_AT) % talk)
    video = folder / "demo.mp4"
    render_video(video, cast, script, audio=audio, audio_rate=conversation.rate, animate=mouths)
    db = folder / "memory.db"
    cfg = Config.model_validate({"cameras": [{"name": "demo", "url": str(video)}], "memory": {"db": str(db)}, "mqtt": {"enabled": False}})
    port = _free_port()
    answers: list[tuple[str, int, Any]] = []

    async def ask_meanwhile(done: asyncio.Event) -> None:
        paths = ["/api/people", "/api/present", "/api/seen?since=0", "/api/search?q=Chicago"]
        async with aiohttp.ClientSession(headers=AUTH) as session:
            while not done.is_set():
                try:
                    bodies = await asyncio.gather(*(_get(session, port, p) for p in paths))
                except aiohttp.ClientConnectionError:  # not listening yet, or already gone
                    await asyncio.sleep(0.2)
                    continue
                answers.extend((p, status, body) for p, (status, body) in zip(paths, bodies))
                await asyncio.sleep(0.3)

    async def main() -> None:
        app = App(cfg)
        done = asyncio.Event()
        asking = asyncio.create_task(ask_meanwhile(done))
        try:
            await run_with_api(app, "127.0.0.1", port, TOKEN, lambda a: a.run(pack))
        finally:
            done.set()
            await asking

    asyncio.run(main())
    return Run(db, script, answers)


async def _get(session: aiohttp.ClientSession, port: int, path: str) -> tuple[int, Any]:
    async with session.get(f"http://127.0.0.1:{port}{path}") as r:
        return r.status, await r.json(content_type=None)


def _node_of(items: list[tuple[float, int | None]], spans: list[tuple[float, float]]) -> int:
    votes = Counter(n for t, n in items if n is not None and any(a <= t < b for a, b in spans))
    assert votes, spans
    return votes.most_common(1)[0][0]


@dataclass(frozen=True)
class Truth:
    face_a: int
    face_b: int
    face_e: int
    voice_e: int
    e_seen: tuple[float, float]  # wall times of the first and last face of E


def _truth(run: Run) -> Truth:
    with Memory(Config.model_validate({"memory": {"db": str(run.db)}}).memory) as memory:
        faces = [(f["t"], f["node"], f["wall_time"]) for f in memory.export_faces()]
        turns = [((v["t_start"] + v["t_end"]) / 2, v["node"]) for v in memory.export_voices()]
    spans = {p: [(i.start, i.end) for i in run.script if i.person == p] for p in (A, B, E)}
    face = {p: _node_of([(t, n) for t, n, _ in faces], s) for p, s in spans.items()}
    walls = [w for _, n, w in faces if n == face[E]]
    return Truth(face[A], face[B], face[E], _node_of(turns, spans[E]), (min(walls), max(walls)))


@pytest.fixture(scope="module")
def truth(run: Run) -> Truth:
    return _truth(run)


@pytest.fixture(scope="module")
def labelled(run: Run, truth: Truth) -> Path:
    """The user names E through the HTTP API (a write with the token): links E's face to E's voice (the
    evidence may have tied them already; a link by hand makes sure), labels it."""

    async def main() -> None:
        worker = MemoryWorker(Memory(Config.model_validate({"memory": {"db": str(run.db)}}).memory))
        query = MemoryQuery(run.db)

        async def editor(fn: Any) -> Any:
            return await worker.call(fn)

        server = ApiServer(query, "127.0.0.1", 0, TOKEN, editor)
        await server.start()
        base = f"http://127.0.0.1:{server.port}"
        try:
            async with aiohttp.ClientSession(headers=AUTH) as session:
                async with session.post(f"{base}/api/characters/link", json={"face": truth.face_e, "voice": truth.voice_e}) as r:
                    assert r.status == 200, await r.text()
                async with session.post(f"{base}/api/nodes/{truth.face_e}/label", json={"label": "Diane"}) as r:
                    assert r.status == 200 and (await r.json())["character"] is not None
        finally:
            await server.stop()
            query.close()
            await asyncio.to_thread(worker.close)

    asyncio.run(main())
    return run.db


def test_questions_during_the_run_were_answered_consistently(run: Run) -> None:
    assert len(run.answers) >= 8, "the API answered too few questions while the run wrote the file"
    assert all(status == 200 for _, status, _ in run.answers), [a for a in run.answers if a[1] != 200][:3]
    for path, _, body in run.answers:
        if path == "/api/people":  # one moment of the file: no node belongs to two people
            nodes = [n for p in body for n in p["faces"] + p["voices"]]
            assert len(nodes) == len(set(nodes)), body
        elif path.startswith("/api/seen"):
            assert all(s["first"] <= s["last"] and (s["seen"] or s["heard"]) for s in body)
    people = [len(body) for path, _, body in run.answers if path == "/api/people"]
    assert people[-1] >= 4 and max(people) > min(people)  # the answers followed the run as it went


async def _ask_all(client: Client) -> dict[str, Any]:
    """The questions an agent asks, tool by tool; returns their structured answers."""
    tools = await client.list_tools()
    names = {t.name: t.description or "" for t in tools.tools}
    assert TOOLS <= names.keys(), names
    assert all(len(names[t]) > 60 for t in TOOLS)  # descriptions a model can choose by

    async def call(tool: str, **arguments: Any) -> Any:
        result = await client.call_tool(tool, arguments)
        assert not result.is_error, (tool, result.content)
        return result.structured_content

    out = {
        "last_seen": await call("last_seen", person="Diane"),
        "said": await call("what_did_they_say", person="diane"),
        "people": await call("list_people"),
        "search": await call("search_memory", query_text="who grew up in Illinois"),
    }
    unknown = await client.call_tool("last_seen", {"person": "Zoe"})
    assert unknown.is_error and "nobody called 'Zoe'" in str(unknown.content)
    return out


def _check(answers: dict[str, Any], truth: Truth, run: Run, together: Any) -> None:
    last = answers["last_seen"]
    assert last["person"]["label"] == "Diane" and truth.face_e in last["person"]["faces"] and truth.voice_e in last["person"]["voices"]
    seen = last["seen"]
    assert seen["stream"] == "demo" and seen["end"] == pytest.approx(truth.e_seen[1], abs=0.5)
    talk = [c for c in run.script if isinstance(c, Cut) and c.person == E]
    assert seen["seconds"] == pytest.approx(talk[-1].end - talk[0].start, abs=2.0)  # the whole conversation, cut to and fro
    assert last["heard"]["stream"] == "demo" and talk[0].start - 1.0 <= last["heard"]["t_start"] < last["heard"]["t_end"] <= seen["t_end"] + 1.0
    said = " ".join(u["text"] for u in answers["said"]["said"]).lower()
    assert "new jersey" in said and "texas" not in said  # Diane's words, not Sheila's
    assert all(u["voice"] == truth.voice_e and u["stream"] == "demo" for u in answers["said"]["said"])
    top = answers["search"]["hits"][0]
    assert "chicago" in top["text"].lower() and top["match"] == "meaning"  # no word in common with the question
    companions = {c["person"]["tag"]: c for c in together["companions"]}
    assert f"<face_{truth.face_b}>" in companions and companions[f"<face_{truth.face_b}>"]["together"] >= 1


def test_an_agent_over_stdio_gets_right_answers(labelled: Path, truth: Truth, run: Run) -> None:
    async def main() -> tuple[dict[str, Any], Any]:
        server = StdioServerParameters(command=sys.executable, args=["-m", "streamer", "mcp", "--db", str(labelled), "-q"])
        async with Client(server) as client:
            answers = await _ask_all(client)
            together = (await client.call_tool("who_were_they_with", {"person": f"<face_{truth.face_a}>"})).structured_content
            return answers, together

    answers, together = asyncio.run(main())
    _check(answers, truth, run, together)


def test_an_agent_over_http_gets_right_answers_and_needs_the_token(labelled: Path, truth: Truth, run: Run) -> None:
    async def main() -> tuple[dict[str, Any], Any]:
        query = MemoryQuery(labelled)
        server = ApiServer(query, "127.0.0.1", 0, TOKEN)
        await server.start()
        url = f"http://127.0.0.1:{server.port}/mcp"
        try:
            async with httpx2.AsyncClient() as anonymous:
                assert (await anonymous.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).status_code == 401
            async with httpx2.AsyncClient(headers=AUTH) as http, Client(streamable_http_client(url, http_client=http)) as client:
                answers = await _ask_all(client)
                together = (await client.call_tool("who_were_they_with", {"person": str(truth.face_a)})).structured_content
                return answers, together
        finally:
            await server.stop()
            query.close()

    answers, together = asyncio.run(main())
    _check(answers, truth, run, together)
