from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from realfaces import FaceBank
from scenario import Clock, Scene

from memory import Memory, MemoryConfig


@pytest.fixture(scope="session")
def bank() -> FaceBank:
    """Detector + recogniser loaded once; embeddings are cached per (person, n, hard)."""
    return FaceBank()


@pytest.fixture
def cfg(tmp_path: Path) -> MemoryConfig:
    return MemoryConfig(db=str(tmp_path / "memory.db"))


@pytest.fixture
def scene(cfg: MemoryConfig, bank: FaceBank) -> Iterator[Scene]:
    clock = Clock()
    with Memory(cfg, clock=clock) as memory:
        yield Scene(memory, clock, bank)
