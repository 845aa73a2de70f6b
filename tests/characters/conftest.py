"""Characters from the memory library: real face embeddings (tests/memory's bank), speech turns
embedded like the bundled speaker model's, and synchrony scores as the streamer reports them."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "memory"))  # the memory tests' real-face bank and scene
sys.path.insert(0, str(Path(__file__).parent))  # this folder's helpers (talk), whatever the import mode

from realfaces import FaceBank  # noqa: E402
from scenario import Clock, Scene  # noqa: E402

from memory import Memory, MemoryConfig  # noqa: E402


@pytest.fixture(scope="session")
def bank() -> FaceBank:
    return FaceBank()


@pytest.fixture
def cfg(tmp_path: Path) -> MemoryConfig:
    return MemoryConfig(db=str(tmp_path / "memory.db"))


@pytest.fixture
def scene(cfg: MemoryConfig, bank: FaceBank) -> Iterator[Scene]:
    clock = Clock()
    with Memory(cfg, clock=clock) as memory:
        yield Scene(memory, clock, bank)
