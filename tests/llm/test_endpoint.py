"""The client against a real llama.cpp server with a text-only model (SmolLM2-135M): images are
refused, so it goes on text only and says so once."""

from __future__ import annotations

import asyncio
import logging

import pytest
from support.llm_server import LlamaServer

from streamer.captions.client import ChatClient
from streamer.captions.config import MemoriesConfig
from streamer.captions.prompt import ClipContext, Turn, build_messages, parse_reply

CTX = ClipContext("door", 0, 1_700_000_000.0, 1_700_000_010.0, [("<face_3>", b"\xff\xd8 not really a JPEG")], ["<voice_1>"],
                  [Turn(0.5, 2.0, "<voice_1>", "Good morning, shall we start?")])  # fmt: skip


def test_a_text_only_endpoint_is_sent_text_after_refusing_images(llama: LlamaServer, caplog: pytest.LogCaptureFixture) -> None:
    client = ChatClient(MemoriesConfig(llm_url=llama.url + "/v1", llm_model="smollm2", max_tokens=96, timeout_seconds=300))
    text = build_messages(CTX, [], images=False)

    async def twice() -> list[tuple[str, str, bool]]:
        try:
            return [await client.complete(build_messages(CTX, [b"\xff\xd8 frame"], images=True), text) for _ in range(2)]
        finally:
            await client.close()

    with caplog.at_level(logging.WARNING, logger="streamer.captions.client"):
        answers = asyncio.run(twice())
    assert [(model, images) for _, model, images in answers] == [("smollm2", False)] * 2
    assert all(reply.strip() for reply, _, _ in answers)
    assert all(parse_reply(reply).episodic or parse_reply(reply).semantic for reply, _, _ in answers)
    assert client.text_only and client.stats.requests == 3  # images once, then text only
    assert client.stats.errors == 0 and client.stats.retries == 0
    refused = [r.getMessage() for r in caplog.records if "refused images" in r.getMessage()]
    assert len(refused) == 1 and refused[0].startswith(f"127.0.0.1:{llama.port} refused images (HTTP 500")
