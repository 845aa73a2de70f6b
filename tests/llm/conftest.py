"""Fixtures of the language-model tests: the memory tests' real faces and scene, and a real llama.cpp
server (see llm_server). SmolLM2-135M's text is fluent but does not follow the facts given, so the
tests check the plumbing and what is stored, not the prose."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "memory"))  # the memory tests' real-face bank and scene
sys.path.insert(0, str(Path(__file__).parents[1] / "characters"))  # people talking in front of a camera
sys.path.insert(0, str(Path(__file__).parent))  # this folder's helpers, whatever the import mode

from llm_server import LlamaServer, start_server  # noqa: E402
from realfaces import FaceBank  # noqa: E402
from scenario import Clock, Scene  # noqa: E402

from memory import Memory, MemoryConfig  # noqa: E402


@pytest.fixture(scope="session")
def bank() -> FaceBank:
    return FaceBank()


@pytest.fixture
def scene(tmp_path: Path, bank: FaceBank) -> Iterator[Scene]:
    clock = Clock()
    with Memory(MemoryConfig(db=str(tmp_path / "memory.db")), clock=clock) as memory:
        yield Scene(memory, clock, bank)


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    server = start_server(tmp_path_factory.mktemp("llama") / "server.log")
    yield server
    if server.proc.poll() is None:
        server.kill()
