"""Find and load a face model pack: a detector (SCRFD) and a recognizer (ArcFace), on onnxruntime."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from ..config import ModelConfig
from ..errors import ModelError
from ..onnx_options import session_options
from .bundled import BUNDLED_FILES, bundled_model_dir, check
from .networks import ArcFace, Scrfd, arcface_normalisation
from .prelu import fast_graph

log = logging.getLogger(__name__)

BUNDLED_RECOGNIZER = "w600k_mbf.onnx"
BUNDLED_ARCFACE_INPUT = (127.5, 127.5)  # w600k_mbf takes (x - 127.5) / 127.5 (see arcface_normalisation)

# Quality gates per pack (detection score, embedding norm). buffalo_l's are M3-Agent's; buffalo_s's
# were measured on real footage (see README, "Quality gates"). Unknown packs get buffalo_l's.
PACK_GATES: dict[str, tuple[float, float]] = {
    "buffalo_s": (0.6, 15.0),
    "buffalo_l": (0.8, 20.0),
    "antelopev2": (0.8, 20.0),
}


DOWNLOADABLE_PACKS = ("buffalo_l", "buffalo_m", "buffalo_s", "buffalo_sc", "antelopev2")


@dataclass
class ModelPack:
    name: str
    detector: Scrfd
    recognizer: ArcFace
    providers: list[str]

    @property
    def gates(self) -> tuple[float, float]:
        return PACK_GATES.get(self.name, PACK_GATES["buffalo_l"])


def choose_providers(setting: str) -> list[str]:
    available = ort.get_available_providers()
    if setting == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if setting == "cuda":
        raise ModelError("providers: cuda was asked for but onnxruntime has no CUDA provider (install onnxruntime-gpu)")
    return ["CPUExecutionProvider"]


def _download(root: Path) -> None:
    """Fill a missing folder named after one of insightface's packs with insightface's own download."""
    if root.name not in DOWNLOADABLE_PACKS:
        raise ModelError(f"model folder not found: {root}")
    from insightface.utils.storage import download

    log.info("model folder %s is missing: downloading insightface's %s pack", root, root.name)
    try:
        download(root.parent.name, root.name, root=str(root.parent.parent))
    except Exception as e:  # no network, or a partial file: say so in one line
        raise ModelError(f"model folder not found: {root}, and downloading {root.name} failed: {e}") from None


def threads_per_run(cfg: ModelConfig) -> int:
    """Two inference threads run at once (a frame's detection beside the last one's embedding, or
    another camera's): each gets half the cores. One thread per run on two cores used ~20% less CPU
    than onnxruntime's default of one per core, which hands every operator between busy cores."""
    return cfg.threads or max(1, (os.cpu_count() or 1) // 2)


def _session(graph: str | bytes, path: Path, options: ort.SessionOptions, providers: list[str]) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(graph, sess_options=options, providers=providers)
    except Exception as e:  # onnxruntime raises its own untyped errors for a corrupt file
        raise _unloadable(path, e) from None


def _load(path: Path, cfg: ModelConfig, providers: list[str], spin_wait: bool, bundled: bool) -> Scrfd | ArcFace | None:
    """The file as a detector or a recognizer; None for other networks of a pack (landmarks, age...).
    Only a recognizer runs with its PReLUs rewritten (streamer.faces.prelu): the bundled one is known
    by name, another pack's once a session has told what it is. spin_wait: the network as a plain
    insightface user runs it (onnxruntime's default threads, the file as it is: the baseline we
    compare against has no rewritten PReLU)."""
    options = session_options(threads=None if spin_wait else threads_per_run(cfg), spin_wait=spin_wait)
    rewrite = not spin_wait
    known = bundled and path.name == BUNDLED_RECOGNIZER
    session = _session(_fast_graph(path, cfg) if known and rewrite else str(path), path, options, providers)
    if Scrfd.fits(session):
        return Scrfd(session, path, cfg.det_threshold)
    if not ArcFace.fits(session):
        return None
    if rewrite and not known and (graph := _fast_graph(path, cfg)) != str(path):
        session = _session(graph, path, options, providers)
    return ArcFace(session, path, *(BUNDLED_ARCFACE_INPUT if bundled else arcface_normalisation(path)))


def _fast_graph(path: Path, cfg: ModelConfig) -> str | bytes:
    try:
        return fast_graph(path, cfg.cache_dir)
    except Exception as e:  # onnx's own errors for a file it cannot parse
        raise _unloadable(path, e) from None


def _unloadable(path: Path, e: Exception) -> ModelError:
    """One line, also for an error without a message."""
    return ModelError(f"cannot load face model {path.name}: {(str(e).splitlines() or [type(e).__name__])[0]}")


def load_pack(cfg: ModelConfig, *, spin_wait: bool = False) -> ModelPack:
    """The detector and recognizer of the configured pack. spin_wait=True keeps onnxruntime's
    default busy-waiting threads (what a plain insightface user, e.g. M3-Agent, runs with)."""
    providers = choose_providers(cfg.providers)
    if cfg.model_dir is None:
        root, name = bundled_model_dir(), "buffalo_s"
        check(root)  # a damaged install fails here with one line, not inside onnxruntime
        files = [root / f for f in BUNDLED_FILES]
    else:
        root = Path(cfg.model_dir).expanduser()
        name = root.name
        if not root.is_dir():
            _download(root)
        files = sorted(root.rglob("*.onnx"))  # some packs unzip into a nested folder of their name
    detector: Scrfd | None = None
    recognizer: ArcFace | None = None
    for path in files:
        if detector is not None and recognizer is not None:
            break
        model = _load(path, cfg, providers, spin_wait, bundled=cfg.model_dir is None)
        if isinstance(model, Scrfd) and detector is None:
            detector = model
        elif isinstance(model, ArcFace) and recognizer is None:
            recognizer = model
    if detector is None or recognizer is None:
        missing = "detection" if detector is None else "recognition"
        raise ModelError(f"no {missing} model (.onnx) found in {root}")
    log.info(
        "face models: pack %s (%s + %s) on %s",
        name,
        Path(detector.model_file).name,
        Path(recognizer.model_file).name,
        providers[0],
    )
    return ModelPack(name=name, detector=detector, recognizer=recognizer, providers=providers)
