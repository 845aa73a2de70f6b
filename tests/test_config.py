from pathlib import Path

import pytest
import yaml

from streamer.config import Config, defaults_as_yaml, load_config
from streamer.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_default_yaml_matches_the_model() -> None:
    shipped = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    assert shipped == yaml.safe_load(defaults_as_yaml())


def test_example_camera_config_is_valid() -> None:
    cfg = load_config(ROOT / "configs" / "cameras.example.yaml", environ={})
    assert [c.name for c in cfg.cameras] == ["door", "kitchen", "lobby-recording"]
    assert cfg.cameras[1].fps == 3


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("memory:\n  db: from-file.db\n  img_matching_threshold: 0.4\nsources:\n  fps: 2\n")
    cfg = load_config(f, {"sources.fps": 3}, environ={"STREAMER_MEMORY__DB": "from-env.db"})
    assert cfg.memory.db == "from-env.db"
    assert cfg.memory.img_matching_threshold == 0.4
    assert cfg.sources.fps == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("memory:\n  img_matching_threshold: 2\n", "invalid config value memory.img_matching_threshold: Input should be less than or equal to 1"),
        ("memroy:\n  db: x\n", "invalid config value memroy: Extra inputs are not permitted"),
        ("cameras:\n  - {name: 'a b', url: x.mp4}\n", "invalid config value cameras.0.name: Value error, must be letters, digits, '_' or '-'"),
        ("cameras:\n  - {name: a, url: x.mp4}\n  - {name: a, url: y.mp4}\n", "invalid config value cameras: Value error, camera names must be unique, repeated: a"),
        ("[1, 2]\n", "must hold a mapping of sections"),
    ],
)
def test_bad_values_give_one_line(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(f, environ={})
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_config_file() -> None:
    with pytest.raises(ConfigError, match="config file not found: nope.yaml"):
        load_config("nope.yaml", environ={})


def test_password_not_in_repr() -> None:
    cfg = Config.model_validate({"mqtt": {"password": "hunter2"}})
    assert "hunter2" not in repr(cfg)
