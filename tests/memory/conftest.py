from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # this folder's helpers (realfaces, scenario), whatever the import mode

from realfaces import FaceBank  # noqa: E402
from scenario import Clock, Scene  # noqa: E402

from memory import Memory, MemoryConfig  # noqa: E402


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
