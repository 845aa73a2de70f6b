"""Session-wide fixtures: the real bundled face models and the real people from the shipped photos."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from streamer.config import ModelConfig
from streamer.demo.cast import Person, load_cast
from streamer.faces.detector import FaceDetector
from streamer.faces.models import ModelPack, load_pack


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
