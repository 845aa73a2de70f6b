"""Prometheus metrics of a running App at http://HOST:PORT/metrics.

The endpoint is served on the App's own event loop, so the collector reads App state on the thread
that writes it: a scrape sees one consistent moment, and no extra thread touches the pipeline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from .analyzer import AnalyzerStats
from .errors import StreamerError
from .faces.embedder import BatchStats
from .sources import SourceState, SourceStats
from .voice_analyzer import TranscriptWorker, VoiceStats

if TYPE_CHECKING:
    from memory.link import LinkState

    from .captions.worker import ClipMemoryWriter

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_SECONDS = 5.0  # a client that sends no request within this is dropped
MAX_HEADER_LINES = 100


class _Stats(Protocol):
    stats: SourceStats


class _Voice(Protocol):
    stats: VoiceStats


class _Analyzer(Protocol):
    stats: AnalyzerStats


class Observed(Protocol):
    """What the collector reads of a running app (streamer.app.App), without importing it."""

    identities: int
    transcripts: TranscriptWorker | None
    clip_memories: ClipMemoryWriter | None
    collectors: list[Collector]  # more metrics from the app's owner (the bus's, in a worker or the memory service)

    @property
    def sources(self) -> Mapping[str, _Stats]: ...
    @property
    def analyzers(self) -> Mapping[str, _Analyzer]: ...
    @property
    def voices(self) -> Mapping[str, _Voice]: ...


class AppCollector(Collector):
    """Per-stream health and the shared embedder's work, read from the App at scrape time."""

    def __init__(self, app: Observed, embedder: BatchStats) -> None:
        self._app = app
        self._embedder = embedder

    def collect(self) -> Iterator[Metric]:
        app = self._app
        streams = [(name, src.stats, app.analyzers[name].stats) for name, src in app.sources.items()]
        labels = ["stream"]

        state = GaugeMetricFamily(
            "streamer_stream_state", "1 for the stream's current state, 0 for the others.", labels=["stream", "state"]
        )
        gauges = {
            "fps_in": GaugeMetricFamily("streamer_stream_fps_in", "Decoded frames per second, recently.", labels=labels),
            "fps_sampled": GaugeMetricFamily(
                "streamer_stream_fps_sampled", "Frames per second sampled for analysis, recently.", labels=labels
            ),
            "identities": GaugeMetricFamily(
                "streamer_stream_identities", "Distinct identities seen on the stream since it started.", labels=labels
            ),
            "last_frame": GaugeMetricFamily(
                "streamer_stream_last_frame_timestamp_seconds", "Unix time of the latest decoded frame.", labels=labels
            ),
        }
        counters = {
            "decoded": CounterMetricFamily("streamer_stream_frames_decoded", "Frames decoded.", labels=labels),
            "analysed": CounterMetricFamily("streamer_stream_frames_analysed", "Frames analysed.", labels=labels),
            "dropped": CounterMetricFamily(
                "streamer_stream_dropped_frames", "Sampled frames dropped because analysis was behind.", labels=labels
            ),
            "decode_errors": CounterMetricFamily(
                "streamer_stream_decode_errors", "Corrupt packets or frames skipped.", labels=labels
            ),
            "reconnects": CounterMetricFamily("streamer_stream_reconnects", "Reconnects of a live source.", labels=labels),
            "faces": CounterMetricFamily("streamer_stream_faces", "Faces detected in analysed frames.", labels=labels),
            "embedded": CounterMetricFamily("streamer_stream_faces_embedded", "Faces sent to the recognizer.", labels=labels),
        }
        # Summaries (count = frames analysed): rate(sum) / rate(count) is the mean per frame.
        stage = SummaryMetricFamily(
            "streamer_stream_stage_seconds", "Time per analysed frame in each stage.", labels=["stream", "stage"]
        )
        latency = SummaryMetricFamily(
            "streamer_stream_latency_seconds", "From a frame's decoding to the end of its analysis.", labels=labels
        )
        for name, src, an in streams:
            for s in SourceState:
                state.add_metric([name, s.value], float(src.state == s))
            gauges["fps_in"].add_metric([name], src.fps_in)
            gauges["fps_sampled"].add_metric([name], src.fps_sampled)
            gauges["identities"].add_metric([name], len(an.nodes))
            if src.last_frame_wall is not None:
                gauges["last_frame"].add_metric([name], src.last_frame_wall)
            for key, value in (
                ("decoded", src.frames_decoded),
                ("analysed", an.frames),
                ("dropped", src.dropped),
                ("decode_errors", src.decode_errors),
                ("reconnects", src.reconnects),
                ("faces", an.faces),
                ("embedded", an.embedded),
            ):
                counters[key].add_metric([name], value)
            for stage_name, seconds in (("detect", an.times.detect), ("embed", an.times.embed), ("match", an.times.match)):
                stage.add_metric([name, stage_name], an.frames, seconds)
            latency.add_metric([name], an.frames, an.latency)
        yield state
        yield from gauges.values()
        yield from counters.values()
        yield stage
        yield latency
        yield GaugeMetricFamily("streamer_identities", "Confirmed face identities in the memory.", value=app.identities)
        embed = self._embedder
        yield CounterMetricFamily("streamer_embed_batches", "Recognizer batches run.", value=embed.batches)
        yield CounterMetricFamily("streamer_embed_faces", "Faces embedded, all streams.", value=embed.faces)
        yield CounterMetricFamily("streamer_embed_seconds", "Time in recognizer batches.", value=embed.seconds)
        yield from _voice_metrics(app)
        yield from llm_metrics(app.clip_memories)


def _voice_metrics(app: Observed) -> Iterator[Metric]:
    """Audio health per stream (decoding, speech found, voice stages) and the shared ASR worker's work."""
    labels = ["stream"]
    audio = {
        "audio_seconds": CounterMetricFamily("streamer_stream_audio_decoded_seconds", "Audio decoded.", labels=labels),
        "audio_dropped_seconds": CounterMetricFamily(
            "streamer_stream_audio_dropped_seconds", "Audio dropped because the voice path was behind.", labels=labels
        ),
        "audio_decode_errors": CounterMetricFamily(
            "streamer_stream_audio_decode_errors", "Damaged audio packets skipped.", labels=labels
        ),
    }
    voice = {
        "speech_seconds": CounterMetricFamily("streamer_stream_speech_seconds", "Speech found in turns.", labels=labels),
        "turns": CounterMetricFamily("streamer_stream_speech_turns", "Speech turns analysed.", labels=labels),
        "audio_seconds": CounterMetricFamily(
            "streamer_stream_audio_analysed_seconds", "Audio the voice path has analysed.", labels=labels
        ),
    }
    stage = CounterMetricFamily(
        "streamer_stream_voice_stage_seconds", "Processing time of the voice path per stage.", labels=["stream", "stage"]
    )
    for name, src in list(app.sources.items()):
        for key, family in audio.items():
            family.add_metric([name], getattr(src.stats, key))
    for name, v in list(app.voices.items()):
        for key, family in voice.items():
            family.add_metric([name], getattr(v.stats, key))
        stage.add_metric([name, "vad"], v.stats.vad_seconds)
        stage.add_metric([name, "embed"], v.stats.embed_seconds)
    yield from audio.values()
    yield from voice.values()
    yield stage
    asr = app.transcripts
    if asr is not None:
        yield CounterMetricFamily("streamer_asr_seconds", "Time spent transcribing.", value=asr.seconds)
        yield CounterMetricFamily("streamer_asr_audio_seconds", "Speech transcribed.", value=asr.audio_seconds)
        yield CounterMetricFamily("streamer_asr_dropped_turns", "Turns left untranscribed: ASR was behind.", value=asr.dropped)
        yield GaugeMetricFamily("streamer_asr_backlog_turns", "Turns waiting for transcription.", value=asr.pending())


def llm_metrics(writer: ClipMemoryWriter | None) -> Iterator[Metric]:
    """The optional language model's clip memories: clips answered, dropped, failed, and its calls."""
    if writer is None:
        return
    s, calls = writer.stats, writer.calls.stats
    for name, doc, value in (
        ("clips", "Closed clips handed to the language model's queue.", s.clips),
        ("clips_done", "Clips the language model answered.", s.done),
        ("memories", "Memories from the language model stored.", s.memories),
        ("dropped_clips", "Clips dropped: its queue was full, or they still waited at the end of the run.", s.dropped),
        ("failed_clips", "Clips left without an answer after every retry.", s.failed),
        ("empty_clips", "Clips the language model answered twice without a usable line.", s.empty),
        ("requests", "Requests sent to the endpoint.", calls.requests),
        ("timeouts", "Requests that timed out.", calls.timeouts),
        ("errors", "Requests refused or unreachable.", calls.errors),
        ("retries", "Requests tried again.", calls.retries),
    ):
        yield CounterMetricFamily(f"streamer_llm_{name}", doc, value=value)
    yield GaugeMetricFamily("streamer_llm_backlog_clips", "Clips waiting for the language model.", value=writer.backlog())
    yield GaugeMetricFamily("streamer_llm_text_only", "1 once the endpoint refused images.", value=float(s.text_only))


class StoreCollector(Collector):
    """The memory's connection to its PostgreSQL server: up or not, losses, statements replayed."""

    def __init__(self, link: LinkState) -> None:
        self._link = link

    def collect(self) -> Iterator[Metric]:
        link = self._link
        yield GaugeMetricFamily("streamer_memory_store_connected", "1 while the memory is connected to its database.",
                                value=float(link.connected))  # fmt: skip
        yield CounterMetricFamily("streamer_memory_store_connection_losses", "Times the connection to the database broke.",
                                  value=link.losses)  # fmt: skip
        yield CounterMetricFamily(
            "streamer_memory_store_replayed_statements",
            "Statements of open transactions written again after a lost connection.", value=link.replayed,
        )  # fmt: skip


async def serve_metrics(app: Observed, embedder: BatchStats, host: str, port: int) -> asyncio.Server:
    """Listen now (a taken port fails the start); scrapes are answered until the server is closed."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AppCollector(app, embedder))
    for collector in app.collectors:
        registry.register(collector)
    ProcessCollector(registry=registry)  # CPU seconds and memory of the whole process

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, headers, body = await asyncio.wait_for(_respond(reader, registry), REQUEST_TIMEOUT_SECONDS)
            head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n{headers}\r\n"
            writer.write(head.encode() + body)
            await writer.drain()
        except (asyncio.TimeoutError, ConnectionError, ValueError, asyncio.IncompleteReadError) as e:
            log.debug("metrics: dropped a client: %s", e)
        finally:
            writer.close()

    try:
        server = await asyncio.start_server(handle, host, port)
    except OSError as e:
        raise StreamerError(f"cannot serve metrics on {host}:{port}: {e.strerror or e}") from None
    log.info("Prometheus metrics on http://%s:%d/metrics", host, port)
    return server


async def _respond(reader: asyncio.StreamReader, registry: CollectorRegistry) -> tuple[str, str, bytes]:
    method, path, _ = (await reader.readline()).decode("latin-1").split(" ", 2)
    accept = ""
    for _ in range(MAX_HEADER_LINES):
        line = (await reader.readline()).decode("latin-1").strip()
        if not line:
            break
        key, _, value = line.partition(":")
        if key.strip().lower() == "accept":
            accept = value.strip()
    if method != "GET" or path.split("?")[0] not in ("/", "/metrics"):
        return "404 Not Found", "Content-Type: text/plain\r\n", b"try /metrics\n"
    encoder, content_type = choose_encoder(accept)
    return "200 OK", f"Content-Type: {content_type}\r\n", encoder(registry)
