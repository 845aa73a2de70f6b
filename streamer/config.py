"""The one config model: every setting, its default and its bounds live here.

Precedence, lowest first: these defaults, a YAML file (`--config`), environment variables
(`STREAMER_<SECTION>__<KEY>`, e.g. `STREAMER_MEMORY__DB=/data/memory.db`), command-line flags.
`configs/default.yaml` is these defaults written out (a test keeps them equal).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from memory.config import MemoryConfig, StrictModel

from .captions.config import MemoriesConfig
from .errors import ConfigError
from .voices.config import AsrConfig, VoicesConfig

STREAM_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")  # safe as one MQTT topic segment
ENV_PREFIX = "STREAMER_"


class ModelConfig(StrictModel):
    model_dir: str | None = Field(
        None, description="Folder of an insightface pack (buffalo_l, antelopev2, ...). None: the bundled buffalo_s pair."
    )
    providers: Literal["auto", "cpu", "cuda"] = Field("auto", description="onnxruntime execution provider.")
    threads: int | None = Field(
        None,
        ge=1,
        description="onnxruntime threads per face-model run. None: half the cores, at least one (two inference "
        "threads run at once; more threads per run would only hand work between busy cores).",
    )
    cache_dir: str | None = Field(
        "~/.cache/streamer",
        description="Where the face networks rewritten for speed are kept between runs (see streamer/faces/prelu.py). "
        "None: rewritten at every start.",
    )
    det_size: int = Field(
        640, ge=160, le=1280, multiple_of=32, description="Detector input size along the frame's longer side."
    )
    coarse_det_size: int = Field(
        320,
        ge=0,
        le=1280,
        multiple_of=32,
        description="Between full passes, detect at this smaller size while every tracked face is big enough; 0: never.",
    )
    full_detect_every_seconds: float = Field(
        1.0,
        gt=0,
        description="A full-size search of the whole frame at least this often, to catch new faces (small or still).",
    )
    full_detect_still_every_seconds: float = Field(
        3.0,
        gt=0,
        description="While nothing changed away from the tracked people since the last full-size search, the next "
        "one waits up to this long instead (a newcomer could only be where a tracked person's crop or body is).",
    )
    crop_det_size: int = Field(
        160,
        ge=0,
        le=640,
        multiple_of=32,
        description="Between searches, detect tracked faces on crops around them at this input size; 0: always search "
        "the whole frame.",
    )
    crop_scale: float = Field(2.0, ge=1.5, le=4.0, description="Side of a track's crop, in units of its face's longer side.")
    search_change_fraction: float = Field(
        0.02,
        ge=0,
        le=1,
        description="Search the whole frame at once when this fraction of it, outside the tracked faces' crops, changed "
        "since the last analysed frame (someone may have come in).",
    )
    coarse_min_face_px: int = Field(
        24, ge=8, description="Smallest tracked face, in pixels at the coarse size, that still allows a coarse pass."
    )
    det_threshold: float = Field(0.5, gt=0, lt=1, description="Lowest detection score reported as a face.")
    min_face_px: int = Field(20, ge=4, description="Faces smaller than this (shorter side, pixels) are ignored.")


class GateConfig(StrictModel):
    """Which faces are good enough to create or extend an identity (M3-Agent: 0.8 / 20 for buffalo_l)."""

    min_det_score: float | None = Field(
        None, ge=0, le=1, description="Detection score a face needs to shape an identity. None: the pack's default."
    )
    min_quality: float | None = Field(
        None, ge=0, description="L2 norm of the raw embedding a face needs to shape an identity. None: the pack's default."
    )


class TrackerConfig(StrictModel):
    min_iou: float = Field(0.3, gt=0, le=1, description="Least box overlap that continues a track.")
    max_gap_seconds: float = Field(1.0, gt=0, description="A track not seen for this long ends.")
    link_max_distance: float = Field(
        1.5,
        ge=0,
        description="A face that overlaps no track continues one whose face looks the same (min_appearance_similarity) "
        "and was at most this many face widths away: a face moving fast; 0: overlap only.",
    )
    reembed_every_seconds: float = Field(2.0, gt=0, description="A live track is embedded again at least this often.")
    quality_gain: float = Field(1.15, ge=1, description="Re-embed when det score x area grows by this factor.")
    min_self_similarity: float = Field(
        0.3,
        ge=-1,
        le=1,
        description="A new embedding below this cosine to its track's mean breaks the track: one the memory would "
        "not match to the track's identity (img_matching_threshold) does not belong in it.",
    )
    min_appearance_similarity: float = Field(
        0.7,
        ge=-1,
        le=1,
        description="Correlation of a face's grey thumbnail with the same track's previous one under which it is "
        "embedded again (someone else may stand there now).",
    )
    scene_cut_threshold: float = Field(
        30.0, gt=0, description="Mean absolute grey-level change (0-255) between sampled frames that counts as a cut."
    )


class EmbedderConfig(StrictModel):
    batch_size: int = Field(32, ge=1, le=512, description="Most faces per recognition batch.")
    max_wait_ms: float = Field(20.0, ge=0, description="Longest a due face waits for its batch to fill.")


class SourceDefaults(StrictModel):
    fps: float = Field(5.0, gt=0, le=60, description="Analysed frames per second, by timestamp (M3-Agent: 5).")
    files_at_once: int = Field(
        4, ge=1, description="Files (videos, photos) analysed at the same time; the rest wait their turn."
    )
    open_timeout_seconds: float = Field(5.0, gt=0, description="Give up opening a live source after this long.")
    read_timeout_seconds: float = Field(5.0, gt=0, description="Give up waiting for a packet after this long.")
    backoff_initial_seconds: float = Field(0.5, gt=0, description="First reconnect delay.")
    backoff_max_seconds: float = Field(30.0, gt=0, description="Reconnect delays double up to this.")
    queue_size: int = Field(4, ge=1, description="Decoded frames waiting for analysis; live sources drop the oldest.")
    frozen_after_seconds: float = Field(10.0, gt=0, description="A live feed that shows a still image this long is frozen.")
    frozen_max_diff: float = Field(1.0, ge=0, description="Mean absolute grey difference under which frames count as still.")


class CameraConfig(StrictModel):
    name: str = Field(description="Stable stream name, used in records and MQTT topics.")
    url: str = Field(description="File path, rtsp(s)://, http(s)://, or a device such as /dev/video0.")
    enabled: bool = True
    fps: float | None = Field(None, gt=0, le=60, description="Overrides sources.fps for this camera.")

    @field_validator("name")
    @classmethod
    def _name_is_topic_safe(cls, v: str) -> str:
        if not STREAM_NAME.match(v):
            raise ValueError("must be letters, digits, '_' or '-'")
        return v


class MqttConfig(StrictModel):
    enabled: bool = Field(True, description="Publish the memory feed over MQTT.")
    url: str | None = Field(None, description="mqtt://[user:pass@]host:port or mqtts://...; None: embedded broker.")
    prefix: str = Field("streamer", description="Topic prefix.")
    username: str | None = None
    password: str | None = Field(None, repr=False)
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    keepalive: int = Field(10, ge=1, description="Seconds; the last will fires within about 1.5x this.")
    embedded_port: int = Field(1883, ge=1, le=65535)
    publish_crops: bool = Field(False, description="Include base64 JPEG face crops in node payloads.")
    faces_max_hz: float = Field(
        2.0, gt=0, le=60, description="Each face track is sent at most this often; a change of its node is sent at once."
    )
    homeassistant: bool = Field(
        False, description="Home Assistant MQTT discovery: a people sensor per camera, presence and last seen per labelled person."
    )
    homeassistant_prefix: str = Field("homeassistant", description="Home Assistant's discovery prefix.")

    @field_validator("prefix", "homeassistant_prefix")
    @classmethod
    def _prefix_is_a_topic(cls, v: str) -> str:
        if not v or v.startswith("/") or v.endswith("/") or any(c in v for c in "+#\0"):
            raise ValueError("must be a topic without wildcards (+, #) or leading/trailing '/'")
        return v


class MetricsConfig(StrictModel):
    port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Serve Prometheus metrics on http://HOST:PORT/metrics (the usual choice: 9108); None: off, "
        "so several runs on one host never clash over a port.",
    )
    host: str = Field("127.0.0.1", description="Address the metrics endpoint binds; 0.0.0.0 exposes it to the network.")


class ProcessConfig(StrictModel):
    allocator: Literal["auto", "system"] = Field(
        "auto",
        description="auto: a `streamer run` with a live source, a worker with one and the memory service "
        "start themselves again under jemalloc where "
        "libjemalloc.so.2 is installed (RSS grew half as fast as under glibc over an hour on two cameras; "
        "BENCHMARKS.md, Soak); system: the C library's malloc.",
    )


class IceServer(StrictModel):
    urls: list[str] = Field(description="stun:, turn: or turns: URLs of one STUN or TURN server.")
    username: str | None = None
    credential: str | None = Field(None, repr=False)


class WebRtcConfig(StrictModel):
    whip_enabled: bool = Field(False, description="Accept camera pushes over WHIP at http://HOST:PORT/whip/<stream>.")
    whip_host: str = Field("127.0.0.1", description="Address the WHIP server listens on (0.0.0.0: every interface).")
    whip_port: int = Field(8080, ge=0, le=65535, description="WHIP server port (0: any free port).")
    whip_token: str | None = Field(
        None, repr=False, description="Bearer token a push must send; None: anyone who reaches the port may push."
    )
    ice_servers: list[IceServer] = Field(
        default_factory=list, description="STUN/TURN servers for WHIP and WHEP peers; none: host candidates only."
    )


class Config(StrictModel):
    models: ModelConfig = Field(default_factory=ModelConfig)
    gates: GateConfig = Field(default_factory=GateConfig)
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig)
    sources: SourceDefaults = Field(default_factory=SourceDefaults)
    cameras: list[CameraConfig] = Field(default_factory=list)
    memory: MemoryConfig = Field(default_factory=MemoryConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    webrtc: WebRtcConfig = Field(default_factory=WebRtcConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    process: ProcessConfig = Field(default_factory=ProcessConfig)
    voices: VoicesConfig = Field(default_factory=VoicesConfig)
    asr: AsrConfig = Field(default_factory=AsrConfig)
    memories: MemoriesConfig = Field(default_factory=MemoriesConfig)

    @field_validator("cameras")
    @classmethod
    def _unique_names(cls, v: list[CameraConfig]) -> list[CameraConfig]:
        names = [c.name for c in v]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"camera names must be unique, repeated: {', '.join(sorted(dup))}")
        return v


def _set_path(tree: dict[str, Any], path: list[str], value: Any) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, raw in environ.items():
        if key.startswith(ENV_PREFIX) and "__" in key:
            import yaml  # noqa: PLC0415 (only for a file or a setting from the environment: ~10 ms a start)

            path = key[len(ENV_PREFIX) :].lower().split("__")
            _set_path(tree, path, yaml.safe_load(raw) if raw else None)
    return tree


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _first_error(err: ValidationError) -> str:
    e = err.errors()[0]
    where = ".".join(str(p) for p in e["loc"]) or "config"
    return f"invalid config value {where}: {e['msg']}"


def load_config(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Config:
    """Defaults <- YAML file <- environment <- overrides (dotted keys, e.g. {"memory.db": "x.db"})."""
    tree: dict[str, Any] = {}
    if path is not None:
        import yaml  # noqa: PLC0415

        p = Path(path)
        try:
            loaded = yaml.safe_load(p.read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {p}") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {p} is not valid YAML: {str(e).splitlines()[0]}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {p} must hold a mapping of sections")
        tree = loaded
    tree = _deep_merge(tree, _env_overrides(dict(os.environ if environ is None else environ)))
    flat: dict[str, Any] = {}
    for dotted, value in (overrides or {}).items():
        _set_path(flat, dotted.split("."), value)
    tree = _deep_merge(tree, flat)
    try:
        return Config.model_validate(tree)
    except ValidationError as e:
        raise ConfigError(_first_error(e)) from None


def defaults_as_yaml() -> str:
    import yaml  # noqa: PLC0415

    return yaml.safe_dump(Config().model_dump(mode="json"), sort_keys=False)
