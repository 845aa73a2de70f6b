"""Session-wide fixtures: the real bundled face models, the real people from the shipped photos,
memories built from real face embeddings (tests/support: realfaces, scenario, asked), and a real
PostgreSQL server for the tests that run on both stores (support.postgres)."""

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
from support.asked import Built, build_on
from support.postgres import PostgresServer, database_name, need_server
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


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer(need_server()) as server:
        yield server


@pytest.fixture
def cfg(request: pytest.FixtureRequest, tmp_path: Path) -> MemoryConfig:
    """A new memory: an SQLite file, or on PostgreSQL with `@pytest.mark.parametrize("cfg", STORES, indirect=True)`
    (support.postgres.STORES), which runs a test (or a module, as pytestmark) on both stores."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return MemoryConfig(db=str(tmp_path / "memory.db"))
    server: PostgresServer = request.getfixturevalue("postgres")
    return MemoryConfig(db=server.database())


@pytest.fixture
def scene(cfg: MemoryConfig, bank: FaceBank) -> Iterator[Scene]:
    """A memory on a fresh file, driven by hand with real faces (see support.scenario)."""
    clock = Clock()
    with Memory(cfg, clock=clock) as memory:
        yield Scene(memory, clock, bank)


@pytest.fixture(scope="module")
def original(request: pytest.FixtureRequest, bank: FaceBank) -> Built:
    """support.asked's memory (Anna and Ben talking, Cleo at the door), built once per module; on
    PostgreSQL too with `@pytest.mark.parametrize("original", STORES, indirect=True)`."""
    return build_on(getattr(request, "param", "sqlite"), request, bank)


@pytest.fixture
def built(original: Built, tmp_path: Path, request: pytest.FixtureRequest) -> Built:
    """A copy of it that a test may change (forget is for good)."""
    db: Path | str
    if isinstance(original.db, Path):
        db = tmp_path / "memory.db"
        shutil.copy(original.db, db)
    else:  # the server copies a database nobody is connected to
        server: PostgresServer = request.getfixturevalue("postgres")
        db = server.database(template=database_name(original.db))
    return Built(db, *[getattr(original, f) for f in list(Built.__dataclass_fields__)[1:]])
