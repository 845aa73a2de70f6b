"""Speaker embeddings: CAM++ (3D-Speaker) on onnxruntime over Kaldi fbank features."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import kaldi_native_fbank as knf
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from ..errors import ModelError
from ..onnx_options import session_options
from ..records import SAMPLE_RATE
from .models import CAMPP_FILE, CAMPP_SHA256, verify

log = logging.getLogger(__name__)

EMBEDDING_DIM = 192
MIN_SAMPLES = 400  # one 25 ms fbank frame
# Audio put into one model run: what a run holds grows with it (a 30 s segment's 39 sliding
# windows in one batch took ~385 MB for a moment, four windows ~33 MB), and smaller runs were not slower.
RUN_SAMPLES = 6 * SAMPLE_RATE


def _fbank_options() -> knf.FbankOptions:
    # The features CAM++ was trained on (3D-Speaker: torchaudio's Kaldi fbank, 80 bins, no dither).
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = SAMPLE_RATE
    opts.frame_opts.dither = 0.0
    opts.frame_opts.snip_edges = True
    opts.frame_opts.window_type = "povey"
    opts.mel_opts.num_bins = 80
    opts.mel_opts.low_freq = 20
    opts.mel_opts.high_freq = 0
    opts.energy_floor = 0.0
    return opts


def speaker_model_file(model_path: str | Path | None = None) -> Path:
    """The speaker model to load (the bundled one when None, its hash checked); ModelError if it is not there."""
    if model_path is None:
        return verify(CAMPP_FILE, CAMPP_SHA256, "reinstall the streamer package")
    path = Path(model_path).expanduser()
    if not path.is_file():
        raise ModelError(f"speaker model not found: {path}")
    return path


class SpeakerEmbedder:
    """`embed(samples)` -> (192,) unit vector; `embed_many` batches equal-length inputs in one run."""

    def __init__(self, model_path: str | Path | None = None, threads: int = 1) -> None:
        path = speaker_model_file(model_path)
        try:
            self._session = ort.InferenceSession(
                str(path), sess_options=session_options(threads=threads), providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime raises its own untyped errors for a corrupt file
            raise ModelError(f"cannot load speaker model {path.name}: {str(e).splitlines()[0]}") from None
        self._fbank_opts = _fbank_options()
        # One run at a time for every stream: a 30 s turn holds ~130 MB while it runs, and cameras
        # hearing one room finish their turns together (the model's real-time factor is ~0.02).
        self._lock = threading.Lock()
        self.dim = int(self._session.get_outputs()[0].shape[-1])
        log.info("speaker model: %s (%d-d, %d thread(s))", path.name, self.dim, threads)

    def features(self, samples: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """(T, 80) log-mel features with the utterance mean removed (CAM++'s input normalisation)."""
        if len(samples) < MIN_SAMPLES:
            raise ValueError(f"speaker embedding needs at least {MIN_SAMPLES} samples, got {len(samples)}")
        fbank = knf.OnlineFbank(self._fbank_opts)
        fbank.accept_waveform(SAMPLE_RATE, np.ascontiguousarray(samples, dtype=np.float32))
        fbank.input_finished()
        feats = np.stack([fbank.get_frame(i) for i in range(fbank.num_frames_ready)]).astype(np.float32)
        return feats - feats.mean(axis=0, keepdims=True)

    def embed(self, samples: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return self.embed_many([samples])[0]

    def embed_many(self, batch: list[npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
        """(n, d) unit vectors. Inputs of equal length run batched, up to RUN_SAMPLES of audio a run;
        others one by one."""
        out = np.empty((len(batch), self.dim), dtype=np.float32)
        by_length: dict[int, list[int]] = {}
        for i, samples in enumerate(batch):
            by_length.setdefault(len(samples), []).append(i)
        with self._lock:
            for length, same in by_length.items():
                per_run = max(1, RUN_SAMPLES // max(length, 1))
                for k in range(0, len(same), per_run):
                    idx = same[k : k + per_run]
                    feats = np.stack([self.features(batch[i]) for i in idx])
                    out[idx] = self._session.run(["embs"], {"feats": feats})[0]
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out
