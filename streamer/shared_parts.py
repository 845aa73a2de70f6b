"""The analysis parts a run's streams share, built once at start-up (face models and their inference
threads, the voice models and transcripts, the memory's port, the track ids), and each new stream's
analysers built from them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2

from .analyzer import StreamAnalyzer
from .characters.mouths import FaceTrail
from .characters.speakers import SpeakerSync
from .config import Config
from .faces.detector import FaceDetector
from .faces.embedder import FaceEmbedder
from .faces.models import ModelPack
from .memory_port import MemoryPort
from .sources import StreamSource

if TYPE_CHECKING:  # a run without voices never loads their code
    from .voice_analyzer import TranscriptWorker, VoiceAnalyzer, VoiceModelLoader

log = logging.getLogger(__name__)


def quality_gates(cfg: Config, pack: ModelPack) -> tuple[float, float]:
    """(min detection score, min embedding norm): the configured ones, else the model pack's."""
    g = cfg.gates
    return (
        g.min_det_score if g.min_det_score is not None else pack.gates[0],
        g.min_quality if g.min_quality is not None else pack.gates[1],
    )


@dataclass
class SharedParts:
    cfg: Config
    gates: tuple[float, float]
    detector: FaceDetector
    embedder: FaceEmbedder
    infer: ThreadPoolExecutor
    port: MemoryPort
    track_ids: Iterator[int]
    voice_models: VoiceModelLoader | None
    transcripts: TranscriptWorker | None
    notify: Callable[[], None]  # any thread: memory events were committed, publish them

    @classmethod
    def build(
        cls,
        cfg: Config,
        pack: ModelPack,
        port: MemoryPort,
        track_ids: Iterator[int],
        voice_models: VoiceModelLoader | None,
        notify: Callable[[], None],
        *,
        many: bool,
    ) -> SharedParts:
        """`many`: more than one stream may fill the embedder's batches (else it never waits for one)."""
        gates = quality_gates(cfg, pack)
        log.info("quality gates: detection >= %.2f, embedding norm >= %.1f", *gates)
        # Two threads: one camera's detection overlaps another's, or an embedding batch; with one, the
        # process never used more than one core (6 720p cameras fell behind at 104% CPU).
        infer = ThreadPoolExecutor(max_workers=2, thread_name_prefix="inference")
        # OpenCV's own worker threads only hand work between cores those two already keep busy, and
        # between calls they spin (174,000 sched_yield calls in a run of the slideshow, ~0.05-0.16 s
        # of CPU): each call runs in the thread that makes it, with the very same results.
        cv2.setNumThreads(1)
        embedder = FaceEmbedder(pack.recognizer, infer, cfg.embedder.batch_size, cfg.embedder.max_wait_ms if many else 0.0)
        detector = FaceDetector(pack.detector, cfg.models)
        transcripts = None
        if voice_models is not None and cfg.asr.enabled:
            from .voice_analyzer import TranscriptWorker  # noqa: PLC0415

            transcripts = TranscriptWorker(voice_models, cfg.asr, port, notify)
        return cls(cfg, gates, detector, embedder, infer, port, track_ids, voice_models, transcripts, notify)

    def for_stream(self, source: StreamSource) -> tuple[StreamAnalyzer, VoiceAnalyzer | None]:
        """A new stream's face analyser, and its voice analyser (not started) when it has sound."""
        # Sources that keep their frames small and grey (files and cameras with voices on) tell who speaks.
        grey = getattr(source, "grey_frames", None)
        trail = FaceTrail() if grey is not None and source.audio is not None else None
        if trail is not None:
            grey.region = trail.region  # the reader keeps only the region around the faces
        analyzer = StreamAnalyzer(
            source.name, self.cfg, self.gates, self.detector, self.embedder, self.port, self.infer, self.track_ids, trail
        )
        if source.audio is None or self.voice_models is None:
            return analyzer, None
        from .voice_analyzer import VoiceAnalyzer  # noqa: PLC0415

        voice = VoiceAnalyzer(
            source.name, source.audio, self.cfg.voices, self.voice_models, self.port, self.transcripts, self.notify,
            self.track_ids, None if trail is None else SpeakerSync(grey, trail),
        )  # fmt: skip
        return analyzer, voice
