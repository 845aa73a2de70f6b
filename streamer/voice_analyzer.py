"""Per-stream analysis of audio: VAD -> speaker turns -> speaker embedding -> identify -> transcribe.

The voice counterpart of `analyzer.StreamAnalyzer`. All of it is blocking work, so each stream's
voice path runs in its own thread, reading the source's bounded audio buffer; memory calls go
through the memory thread like the faces' do, and transcription through one shared ASR worker.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from memory.records import SpeakerEvidence, SpeechTurn

from .characters.speakers import SpeakerSync
from .characters.sync import TurnAudio
from .memory_port import MemoryPort
from .native_memory import release_free_memory
from .records import SAMPLE_RATE, AudioChunk
from .sources.audio_buffer import AudioBuffer
from .voices.asr import Transcriber, asr_model_dir
from .voices.chunk_times import CHUNK_TIMES_SLACK_SECONDS, ChunkTimes
from .voices.config import AsrConfig, VoicesConfig
from .voices.models import silero_file
from .voices.speaker import SpeakerEmbedder, speaker_model_file
from .voices.turns import TurnSplitter
from .voices.vad import SpeechSegment, StreamingVad, load_silero

log = logging.getLogger(__name__)

GET_TIMEOUT_SECONDS = 0.2  # how often an idle voice thread looks at its stop flag


@dataclass
class VoiceStats:
    """A stream's voice health, for the stats line, the stream status and Prometheus."""

    speech_seconds: float = 0.0
    turns: int = 0
    turns_with_node: int = 0
    audio_seconds: float = 0.0  # audio the voice path has analysed
    vad_seconds: float = 0.0  # processing time per stage, summed
    embed_seconds: float = 0.0
    nodes: set[int] = field(default_factory=set)  # voice identities heard on this stream


@dataclass
class _Pending:
    stream: str
    track_id: int
    samples: npt.NDArray[np.float32]


class TranscriptWorker:
    """One thread transcribing finished turns of every stream, off the hot path.

    The queue is bounded: when ASR cannot keep up, the oldest waiting turn is given up (its speech
    event goes out with no text) rather than letting audio or video wait."""

    def __init__(
        self, models: VoiceModelLoader, cfg: AsrConfig, memory: MemoryPort, on_events: Callable[[], None]
    ) -> None:
        self._models = models  # loaded by the first stream with sound, before any turn comes here
        self._cfg = cfg
        self._memory = memory
        self._on_events = on_events
        self._queue: queue.Queue[_Pending] = queue.Queue(cfg.queue_size)
        self._lock = threading.Lock()
        self._busy = 0  # turns taken off the queue and not yet stored
        self._stop = threading.Event()
        self.dropped = 0
        self.seconds = 0.0  # transcription time, summed
        self.audio_seconds = 0.0
        self._thread = threading.Thread(target=self._run, name="asr", daemon=True)
        self._thread.start()

    def submit(self, item: _Pending) -> None:
        while True:
            try:
                self._queue.put_nowait(item)
                return
            except queue.Full:
                try:
                    oldest = self._queue.get_nowait()
                except queue.Empty:
                    continue
                self.dropped += 1
                self._store([(oldest, None)])

    def pending(self) -> int:
        with self._lock:
            return self._queue.qsize() + self._busy

    def drain(self, timeout: float) -> None:
        """Blocking: until every submitted turn is stored, or `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self.pending() and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        """Blocking: stop after the current batch; turns still waiting keep no text."""
        self._stop.set()
        self._thread.join()
        left: list[tuple[_Pending, str | None]] = []
        while not self._queue.empty():
            left.append((self._queue.get_nowait(), None))
        self._store(left)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=GET_TIMEOUT_SECONDS)
            except queue.Empty:
                continue
            with self._lock:
                self._busy = 1
            batch = [first]
            seconds = len(first.samples) / SAMPLE_RATE
            while seconds < self._cfg.batch_seconds:  # short turns share one call: each costs a 30 s window
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                batch.append(item)
                seconds += len(item.samples) / SAMPLE_RATE
            with self._lock:
                self._busy = len(batch)
            started = time.perf_counter()
            try:
                transcriber = self._models.get().transcriber
                assert transcriber is not None, "a transcript worker runs with ASR on"
                texts = transcriber.transcribe([p.samples for p in batch])
            except Exception:  # one bad batch must not silence a stream that runs for days
                log.exception("speech recognition failed on %d turns; they keep no text", len(batch))
                texts = [None] * len(batch)
            self.seconds += time.perf_counter() - started
            self.audio_seconds += seconds
            self._store(list(zip(batch, texts)))
            release_free_memory()  # whisper's buffers for a 30 s window, tens of MB, go back at once
            with self._lock:
                self._busy = 0

    def _store(self, done: list[tuple[_Pending, str | None]]) -> None:
        if done and self._memory.transcribed([(p.track_id, text) for p, text in done]):
            self._on_events()


@dataclass
class VoiceModels:
    """The voice models, loaded once and shared by every stream (each call is self-contained)."""

    vad: ort.InferenceSession  # stateless: each stream's StreamingVad carries its own state
    embedder: SpeakerEmbedder
    transcriber: Transcriber | None


def load_voice_models(voices: VoicesConfig, asr: AsrConfig) -> VoiceModels:
    """Blocking (about a second): VAD, speaker model and, unless ASR is off, the transcriber."""
    embedder = SpeakerEmbedder(voices.speaker_model, voices.threads)
    return VoiceModels(load_silero(), embedder, Transcriber(asr) if asr.enabled else None)


class VoiceModelLoader:
    """The voice models, loaded when the first stream that has sound needs them, then shared: cameras
    without audio never pay for them (~150 MB with ASR). A missing or altered model file is reported
    at construction, as if they were loaded at start."""

    def __init__(self, voices: VoicesConfig, asr: AsrConfig) -> None:
        speaker_model_file(voices.speaker_model)
        silero_file()
        if asr.enabled:
            asr_model_dir(asr)
        self._voices = voices
        self._asr = asr
        self._lock = threading.Lock()
        self._models: VoiceModels | None = None

    @property
    def loaded(self) -> bool:
        return self._models is not None

    def get(self) -> VoiceModels:
        """Blocking: the models, loaded by the first caller (about a second) while any other waits."""
        with self._lock:
            if self._models is None:
                self._models = load_voice_models(self._voices, self._asr)
                log.info("voice models loaded: a stream has sound")
            return self._models


class VoiceAnalyzer:
    """One stream's voices, in a thread of its own: `start()`, then `finish()` at the end of the stream."""

    def __init__(
        self,
        stream: str,
        audio: AudioBuffer,
        cfg: VoicesConfig,
        models: VoiceModelLoader,
        memory: MemoryPort,
        transcripts: TranscriptWorker | None,
        on_events: Callable[[], None],
        track_ids: Iterator[int],
        speakers: SpeakerSync | None = None,
    ) -> None:
        self.stream = stream
        self.speakers = speakers  # who on screen moved their mouth with each turn (None: no video kept)
        self._track_ids = track_ids  # shared with the faces: a turn is a one-turn voice track
        self._audio = audio
        self._memory = memory
        self._transcripts = transcripts
        self._on_events = on_events
        self._cfg = cfg
        self._models = models
        self._turns: TurnSplitter | None = None  # from the first chunk of sound on
        self.chunk_times = ChunkTimes()
        self._chunk_times_kept = cfg.vad.max_segment_seconds + CHUNK_TIMES_SLACK_SECONDS
        self._stop = threading.Event()
        self.stats = VoiceStats()
        self.failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"voices-{stream}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def finish(self, timeout: float | None = None) -> None:
        """Blocking: analyse the audio left in the buffer (it is closed at the end of the source), then stop."""
        self._thread.join(timeout)

    def stop(self) -> None:
        """Blocking: stop soon, dropping audio not yet analysed (the source is going away)."""
        self._stop.set()
        self._thread.join()

    def _next_chunk(self) -> AudioChunk | None:
        """Blocking: the next chunk of sound; None once the source is done or the path is stopped."""
        while not self._stop.is_set():
            chunk = self._audio.get(GET_TIMEOUT_SECONDS)
            if chunk is not None or self._audio.done:
                return chunk
        return None

    def _run(self) -> None:
        try:
            chunk = self._next_chunk()
            if chunk is None:
                return  # no sound ever came (a camera without audio): nothing to load
            models = self._models.get()
            vad = StreamingVad(self._cfg.vad, models.vad)
            self._turns = TurnSplitter(self._cfg.turns, models.embedder)
            while chunk is not None:
                started = time.perf_counter()
                self.chunk_times.add(chunk.t, chunk.wall_time)
                segments = vad.feed(chunk.samples, chunk.t)
                self.stats.vad_seconds += time.perf_counter() - started
                self.stats.audio_seconds += len(chunk.samples) / SAMPLE_RATE
                for segment in segments:
                    self._segment(segment)
                # after this chunk's segments: one still open (flushed by a gap at the next chunk, too)
                # started after this chunk's time minus the longest segment
                self.chunk_times.forget_before(chunk.t - self._chunk_times_kept)
                if self.speakers is not None:
                    self._send_sync(self.speakers.ready(chunk.t_end))
                chunk = self._next_chunk()
            if not self._stop.is_set():
                for segment in vad.flush():
                    self._segment(segment)
                if self.speakers is not None:
                    self._send_sync(self.speakers.finish())
        except Exception as e:  # the voice path failing must never take the video with it
            log.exception("%s: voice analysis failed; faces go on", self.stream)
            self.failed = e

    def _segment(self, segment: SpeechSegment) -> None:
        assert self._turns is not None, "segments come after the first chunk"
        started = time.perf_counter()
        turns = self._turns.split(segment)
        self.stats.embed_seconds += time.perf_counter() - started
        release_free_memory()  # CAM++ on a 30 s turn takes ~130 MB for a moment (milliseconds to give back)
        if not turns:
            return
        records = [
            SpeechTurn(
                stream=self.stream,
                track_id=next(self._track_ids),
                t_start=turn.t_start,
                t_end=turn.t_end,
                wall_time=self.chunk_times.wall_at(turn.t_start),
                embedding=turn.embedding,
                good=turn.good,
                audio=turn.samples,  # kept only as a voice snippet, and only when asked (memory.voice_snippet_seconds)
            )
            for turn in turns
        ]
        nodes, new_events = self._memory.turns(records, self._transcripts is None)
        if new_events:
            self._on_events()
        if self.speakers is not None:
            for record, turn in zip(records, turns):
                self.speakers.add(TurnAudio(record.track_id, turn.t_start, turn.samples))
        if self._transcripts is not None:
            for record, turn in zip(records, turns):
                self._transcripts.submit(_Pending(self.stream, record.track_id, turn.samples))
        s = self.stats
        s.turns += len(turns)
        s.speech_seconds += sum(t.t_end - t.t_start for t in turns)
        s.turns_with_node += sum(n is not None for n in nodes)
        s.nodes.update(n for n in nodes if n is not None)

    def _send_sync(self, scored: list[tuple[int, dict[int, float]]]) -> None:
        for turn, sync in scored:
            log.debug("%s: turn %d mouth sync %s", self.stream, turn, {k: round(v, 2) for k, v in sync.items()})
            if self._memory.speaker_evidence(SpeakerEvidence(turn, sync)):
                self._on_events()


def voice_status(stats: VoiceStats | None, transcripts: TranscriptWorker | None) -> dict[str, Any]:
    """A stream's voice health, added to its status (see stream_status.schema.json)."""
    if stats is None:
        return {}
    return {
        "speech_seconds": round(stats.speech_seconds, 1),
        "turns": stats.turns,
        "voices": len(stats.nodes),
        "vad_ms_per_s": round(1000 * stats.vad_seconds / max(stats.audio_seconds, 1e-9), 2),
        "embed_ms_per_s": round(1000 * stats.embed_seconds / max(stats.audio_seconds, 1e-9), 2),
        "asr_backlog": 0 if transcripts is None else transcripts.pending(),
        "asr_dropped": 0 if transcripts is None else transcripts.dropped,
    }
