"""Session-wide fixtures: the real bundled face models, the real people from the shipped photos, and
memories built from real face embeddings (tests/support: realfaces, scenario, asked)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from memory import Memory, MemoryConfig

from streamer.config import ModelConfig
from streamer.demo.cast import Person, load_cast
from streamer.faces.detector import FaceDetector
from streamer.faces.models import ModelPack, load_pack
from support.asked import Built, build
from support.realfaces import FaceBank
from support.scenario import Clock, Scene


@pytest.fixture(scope="session")
def pack() -> ModelPack:
    # tools/gpu_check.sh runs the model tests on the GPU with STREAMER_TEST_PROVIDERS=cuda
    return load_pack(ModelConfig(providers=os.environ.get("STREAMER_TEST_PROVIDERS", "cpu")))  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def detector(pack: ModelPack) -> FaceDetector:
    return FaceDetector(pack.detector, ModelConfig())


@pytest.fixture(scope="session")
def cast(detector: FaceDetector) -> list[Person]:
    people = load_cast(detector)
    assert len(people) >= 8, "the shipped photos should give at least eight clear faces"
    return people


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def bank() -> FaceBank:
    """Detector + recogniser loaded once; embeddings are cached per (person, n, hard)."""
    return FaceBank()


@pytest.fixture
def cfg(tmp_path: Path) -> MemoryConfig:
    return MemoryConfig(db=str(tmp_path / "memory.db"))


@pytest.fixture
def scene(cfg: MemoryConfig, bank: FaceBank) -> Iterator[Scene]:
    """A memory on a fresh file, driven by hand with real faces (see support.scenario)."""
    clock = Clock()
    with Memory(cfg, clock=clock) as memory:
        yield Scene(memory, clock, bank)


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory, bank: FaceBank) -> Built:
    """support.asked's memory (Anna and Ben talking, Cleo at the door), built once per module."""
    return build(tmp_path_factory.mktemp("asked") / "memory.db", bank)


@pytest.fixture
def built(original: Built, tmp_path: Path) -> Built:
    """A copy of it that a test may change (forget is for good)."""
    db = tmp_path / "memory.db"
    shutil.copy(original.db, db)
    return Built(db, *[getattr(original, f) for f in list(Built.__dataclass_fields__)[1:]])
