"""Fixtures: a fresh copy of tests/query's memory (Anna and Ben talking, Cleo at the door) per test."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "query"))  # the memory to ask (asked.build)

from asked import Built, FaceBank, build  # noqa: E402


@pytest.fixture(scope="session")
def bank() -> FaceBank:
    return FaceBank()


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory, bank: FaceBank) -> Built:
    return build(tmp_path_factory.mktemp("forget") / "memory.db", bank)


@pytest.fixture
def built(original: Built, tmp_path: Path) -> Built:
    """A copy each test may change (forget is for good)."""
    db = tmp_path / "memory.db"
    shutil.copy(original.db, db)
    return Built(db, *[getattr(original, f) for f in list(Built.__dataclass_fields__)[1:]])
