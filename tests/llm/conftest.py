"""Fixtures of the language-model tests: a real llama.cpp server (see support.llm_server).
SmolLM2-135M's text is fluent but does not follow the facts given, so the tests check the plumbing
and what is stored, not the prose."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.llm_server import LlamaServer, start_server


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    server = start_server(tmp_path_factory.mktemp("llama") / "server.log")
    yield server
    if server.proc.poll() is None:
        server.kill()
