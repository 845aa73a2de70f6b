"""Fixtures for the MQTT feed tests: a real mosquitto and a real Memory (see helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.mosquitto import Mosquitto

from .helpers import MemoryRig


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[MemoryRig]:
    r = MemoryRig(tmp_path / "memory.db")
    yield r
    r.close()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "broker") as b:
        yield b
