"""The language-model path in the whole streamer: a composed video (real faces from the shipped
photos, the bundled two-person conversation, real decoding, detection, voices and ASR) cut into
10 s clips, against a real llama.cpp server, the same server killed mid-run, and an endpoint that
never answers. The graph's own memories of every clip must be there whatever the model does."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from support.llm_server import LlamaServer, start_server
from support.ports import free_port

from memory import Memory, MemoryConfig, NodeKind
from streamer.app import App
from streamer.captions.worker import ClipMemoryStats
from streamer.config import Config
from streamer.demo.cast import Person
from streamer.demo.compose import Cut, render_video
from streamer.demo.speech import floor_holders, load_conversation
from streamer.faces.models import ModelPack
from streamer.metrics import llm_metrics
from streamer.progress import Progress

pytestmark = pytest.mark.timeout(900)

A, B, STILL = 0, 1, 2  # speaker90's face, speaker91's face, a face that never speaks
HEADS = {"speaker90": A, "speaker91": B}
STREAM = "heads"
TAG = re.compile(r"<(face|voice|character)_(\d+)>")


@dataclass
class Run:
    db: Path
    app: App
    stats: ClipMemoryStats


@pytest.fixture(scope="module")
def video(cast: list[Person], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The conversation once, each speaker on screen while holding the floor, a silent face before."""
    conv = load_conversation()
    spans = floor_holders(conv.turns)
    script = [Cut(STILL, 0.0, spans[0].start)]
    script += [Cut(HEADS[s.speaker], s.start, spans[i + 1].start if i + 1 < len(spans) else conv.duration) for i, s in enumerate(spans)]
    path = tmp_path_factory.mktemp("llm_video") / "talking_heads.mp4"
    render_video(path, cast, script, audio=conv.samples)
    return path


def _run(video: Path, folder: Path, pack: ModelPack, memories: dict[str, Any],
         during: Callable[[App], Awaitable[None]] | None = None) -> Run:  # fmt: skip
    cfg = Config.model_validate({"cameras": [{"name": STREAM, "url": str(video)}], "mqtt": {"enabled": False},
                                 "memory": {"db": str(folder / "memory.db"), "interval_seconds": 10.0},
                                 "memories": memories})  # fmt: skip
    app = App(cfg, realtime=False, progress=Progress(enabled=False))

    async def main() -> None:
        running = asyncio.create_task(app.run(pack))
        if during is not None:
            await app.wait_ready()
            await during(app)
        await running

    asyncio.run(main())
    assert app.clip_memories is not None
    return Run(folder / "memory.db", app, app.clip_memories.stats)


def _model_memories(db: Path) -> tuple[dict[int, dict[str, Any]], dict[int, list[tuple[int, str]]]]:
    """The clips by index, and per clip index the model's memories (text node, text), episodic and semantic."""
    model: dict[int, list[tuple[int, str]]] = {}
    with Memory(MemoryConfig(db=str(db))) as memory:
        clips = {c["index"]: c for c in memory.clips(STREAM)}
        index_of = {c["id"]: i for i, c in clips.items()}
        for n in memory.nodes(include_inactive=True):
            if (found := memory.provenance(n.id)) is not None:
                assert found[0] is not None and n.kind in (NodeKind.EPISODIC, NodeKind.SEMANTIC)
                model.setdefault(index_of[found[0]], []).append((n.id, memory.text(n.id) or ""))
    return clips, model


def _assert_graph_memories_whole(db: Path, run: Run) -> list[int]:
    """Every memory each clip.closed event carried is stored, as the graph wrote it; returns the clips' indices."""
    with Memory(MemoryConfig(db=str(db))) as memory:
        closed = [e for e in memory.events_after(0, 100_000) if e.type == "clip.closed"]
        assert len(closed) >= 3 and run.stats.clips == len(closed)  # 30 s of video in 10 s clips
        assert closed[0].data["text"] is not None and all(e.data["memories"] for e in closed[:3])
        for e in closed:
            for m in e.data["memories"]:
                assert memory.text(m["id"]) == m["text"] and memory.provenance(m["id"]) is None
                assert sorted(dst for src, dst, _ in memory.edges(m["id"]) if src == m["id"]) == sorted(m["nodes"])
        return [e.data["clip"] for e in closed]


def test_each_clip_gets_the_models_memories_with_provenance(video: Path, pack: ModelPack, llama: LlamaServer, tmp_path: Path) -> None:
    run = _run(video, tmp_path, pack, {"llm_url": llama.url, "llm_model": "smollm2", "max_tokens": 128, "timeout_seconds": 300, "drain_seconds": 900})
    indices = _assert_graph_memories_whole(run.db, run)
    clips, model = _model_memories(run.db)
    assert run.stats.clips == run.stats.done == len(indices) and run.stats.dropped == run.stats.failed == 0
    assert sorted(model) == sorted(indices), run.stats  # every clip has memories from the model (asked twice at most)
    with Memory(MemoryConfig(db=str(run.db))) as memory:
        # tags the model was given, by kind: `<voice_2>` where node 2 is a face is the model's slip and links nothing
        given = {i: (lambda m: {("face", n) for n in m["faces"]} | {("voice", n) for n in m["voices"]})(memory.clip_memories(STREAM, i))
                 for i in clips}  # fmt: skip
        people = {i: {n for _, n in tags} for i, tags in given.items()}
        for index, texts in model.items():
            for m, text in texts:
                found = memory.provenance(m)
                assert found is not None
                clip_id, source = found
                assert clip_id == clips[index]["id"]
                assert source.model == "smollm2" and source.endpoint == f"127.0.0.1:{llama.port}"
                assert clips[index]["end_wall"] <= source.wall_time
                linked = sorted(dst for src, dst, _ in memory.edges(m) if src == m)
                named = {int(n) for kind, n in TAG.findall(text) if (kind, int(n)) in given[index]}
                assert set(linked) <= people[index] and named <= set(linked), (text, linked)
    print(f"model memories per clip: {[len(model[i]) for i in sorted(model)]}; text only: {run.stats.text_only}")


def test_an_endpoint_killed_mid_run_loses_nothing_else(video: Path, pack: ModelPack, tmp_path: Path) -> None:
    server = start_server(tmp_path / "server.log")

    async def kill_after_first_answer(app: App) -> None:
        assert app.clip_memories is not None
        while app.clip_memories.stats.done < 1:
            await asyncio.sleep(0.1)
        await asyncio.to_thread(server.kill)

    try:
        run = _run(video, tmp_path, pack, {"llm_url": server.url, "llm_model": "smollm2", "max_tokens": 128, "timeout_seconds": 300,
                                           "retries": 2, "backoff_seconds": 0.1, "drain_seconds": 900}, kill_after_first_answer)  # fmt: skip
    finally:
        if server.proc.poll() is None:
            server.kill()
    indices = _assert_graph_memories_whole(run.db, run)
    clips, model = _model_memories(run.db)
    s = run.stats
    assert s.done >= 1 and s.failed >= 1 and s.done + s.failed + s.dropped == s.clips == len(indices), s
    assert 1 <= len(model) <= s.done
    print(f"killed mid-run: {s}")
    calls = run.app.clip_memories.calls.stats  # type: ignore[union-attr]
    assert calls.errors >= 3 * s.failed and calls.retries >= 2 * s.failed  # each failed clip was tried three times


def _against(handler: Callable[[web.Request], Awaitable[web.StreamResponse]], port: int, go: Callable[[], Run]) -> Run:
    """`go` (a whole run, on the streamer's own loop) while this test's loop serves `handler` as the endpoint."""

    async def main() -> Run:
        server = web.Application()
        server.router.add_post("/v1/chat/completions", handler)
        runner = web.AppRunner(server, shutdown_timeout=0.1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            return await asyncio.to_thread(go)
        finally:
            await runner.cleanup()

    return asyncio.run(main())


def test_an_answer_with_nothing_usable_is_asked_again_in_words(video: Path, pack: ModelPack, tmp_path: Path) -> None:
    port, asked = free_port(), []  # per request: whether it carried images

    async def blank_then_line(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        asked.append(any(isinstance(m["content"], list) for m in body["messages"]))
        text = "..." if len(asked) % 2 else "Episodic: two people talk at a table."  # odd requests: nothing usable
        return web.json_response({"model": "blank", "choices": [{"message": {"role": "assistant", "content": text}}]})

    cfg = {"llm_url": f"http://127.0.0.1:{port}/v1", "llm_model": "blank", "timeout_seconds": 30, "drain_seconds": 60}
    run = _against(blank_then_line, port, lambda: _run(video, tmp_path, pack, cfg))
    indices = _assert_graph_memories_whole(run.db, run)
    _, model = _model_memories(run.db)
    s = run.stats
    assert s.done == s.clips == len(indices) and s.empty == s.failed == 0, s
    assert sorted(model) == sorted(indices) and all(t == "two people talk at a table." for ms in model.values() for _, t in ms)
    assert len(asked) == 2 * s.clips and not any(asked[1::2]), asked  # each clip asked twice, the second time in words only


def test_an_endpoint_that_never_answers_times_out_without_stalling_the_run(video: Path, pack: ModelPack, tmp_path: Path) -> None:
    port = free_port()
    pending: list[tuple[int, int]] = []  # per request: frames analysed when it came, when its client gave up
    app_box: list[App] = []

    async def never(request: web.Request) -> web.StreamResponse:
        frames = lambda: app_box[0].analyzers[STREAM].stats.frames if STREAM in app_box[0].analyzers else -1  # noqa: E731
        came = frames()
        while request.transport is not None and not request.transport.is_closing():
            await asyncio.sleep(0.05)
        pending.append((came, frames()))
        return web.Response(status=503)

    cfg = {"llm_url": f"http://127.0.0.1:{port}/v1", "llm_model": "any", "timeout_seconds": 2.0, "retries": 1,
           "backoff_seconds": 0.1, "drain_seconds": 60}  # fmt: skip
    run = _against(never, port, lambda: _run(video, tmp_path, pack, cfg, lambda app: _noted(app, app_box)))
    indices = _assert_graph_memories_whole(run.db, run)
    clips, model = _model_memories(run.db)
    s, calls = run.stats, run.app.clip_memories.calls.stats  # type: ignore[union-attr]
    assert model == {} and s.done == 0 and s.failed + s.dropped == s.clips == len(indices), s
    print(f"never answers: {s}, {calls}")
    assert calls.timeouts == calls.requests == 2 * s.failed and calls.retries == s.failed
    # while a request hung, frames went on being analysed: the model never holds up the video
    assert any(gave_up > came >= 0 for came, gave_up in pending), pending
    metrics = {m.name: m.samples[0].value for m in llm_metrics(run.app.clip_memories)}
    assert metrics["streamer_llm_timeouts"] == calls.timeouts and metrics["streamer_llm_failed_clips"] == s.failed
    assert metrics["streamer_llm_dropped_clips"] == s.dropped and metrics["streamer_llm_clips_done"] == 0


async def _noted(app: App, box: list[App]) -> None:
    box.append(app)
