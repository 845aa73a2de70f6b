"""Fixtures: the memory of tests/query/asked.py, built once per module."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # this folder's helpers, whatever the import mode

from asked import Built, FaceBank, build  # noqa: E402


@pytest.fixture(scope="session")
def bank() -> FaceBank:
    return FaceBank()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, bank: FaceBank) -> Built:
    return build(tmp_path_factory.mktemp("query") / "memory.db", bank)
