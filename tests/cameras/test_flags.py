"""The run command's flags for metrics and reloading reach the config."""

from __future__ import annotations

from pathlib import Path

from streamer.cli import build_parser, config_from_args, overrides_from_args


def test_metrics_port_flag_and_file_overrides(tmp_path: Path) -> None:
    config = tmp_path / "cameras.yaml"
    config.write_text("cameras:\n  - {name: door, url: rtsp://192.0.2.10/stream1}\nmetrics:\n  port: 9108\n")
    args = build_parser().parse_args(["run", "--config", str(config), "--metrics-port", "9200", "--no-reload"])
    assert args.no_reload
    cfg = config_from_args(args)
    assert cfg.metrics.port == 9200 and cfg.metrics.host == "127.0.0.1"
    assert [c.name for c in cfg.cameras] == ["door"]
    assert "cameras" not in overrides_from_args(args)  # a reload reads the cameras from the file again
