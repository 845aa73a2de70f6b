"""Stream health through the App: a frozen live feed end to end, and the Prometheus endpoint."""

from __future__ import annotations

import asyncio
import json
import urllib.error
from pathlib import Path

import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streamer.app import App
from streamer.faces.models import ModelPack
from streamer.publish.payloads import SCHEMA_DIR, stream_status_payload
from streamer.sources import SourceState
from support.ports import free_port
from support.rtsp import RtspServer

from .live import analysed, live_config, running, scrape, state, until

pytestmark = pytest.mark.timeout(90, func_only=True)  # the session's clips and models are made under the global timeout


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of a scrape."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def state_metric(scraped: str, stream: str) -> list[str]:
    """The states the metric says the stream is in (exactly one, if all is well)."""
    out = samples(scraped)
    return [s.value for s in SourceState if out[("streamer_stream_state", (("state", s.value), ("stream", stream)))] == 1]


def test_still_feed_is_frozen_then_live_again(still_clip: Path, pack: ModelPack, tmp_path: Path) -> None:
    port = free_port()

    async def scenario() -> None:
        with RtspServer(file=still_clip) as server:
            cfg = live_config(
                tmp_path / "memory.db",
                [{"name": "hall", "url": server.url}],
                **{"sources.frozen_after_seconds": 2, "metrics.port": port},
            )
            async with running(App(cfg), pack) as app:
                await until(lambda: "hall" in app.sources and state(app, "hall") == "live", 20, "live")
                await until(lambda: state(app, "hall") == "frozen", 20, "frozen (the room is still from 3 s)")
                assert state_metric(await scrape(port), "hall") == ["frozen"]
                frames = analysed(app, "hall")
                await until(lambda: state(app, "hall") == "live", 20, "live again (someone walks in at 12 s)")
                assert state_metric(await scrape(port), "hall") == ["live"]
                assert analysed(app, "hall") > frames  # a frozen feed is still analysed
                assert app.sources["hall"].stats.reconnects == 0  # frozen is not a lost connection

    asyncio.run(scenario())


def test_metrics_endpoint_and_status(people_clip: Path, pack: ModelPack, tmp_path: Path) -> None:
    port = free_port()
    schema = json.loads((SCHEMA_DIR / "stream_status.schema.json").read_text())

    async def scenario() -> None:
        with RtspServer(file=people_clip) as server:
            cfg = live_config(tmp_path / "memory.db", [{"name": "door", "url": server.url}], **{"metrics.port": port})
            async with running(App(cfg), pack) as app:
                await until(lambda: app.analyzers["door"].stats.embedded > 0 and analysed(app, "door") >= 10, 40, "faces")
                stats = app.sources["door"].stats
                before = (stats.reconnects, stats.decode_errors)
                scraped = await scrape(port)
                after = (stats.reconnects, stats.decode_errors)
                out = samples(scraped)
                door = (("stream", "door"),)
                frames = out[("streamer_stream_frames_analysed_total", door)]
                assert frames >= 10
                assert out[("streamer_stream_frames_decoded_total", door)] >= frames
                assert out[("streamer_stream_faces_total", door)] > 0
                assert out[("streamer_stream_identities", door)] >= 1
                assert out[("streamer_stream_fps_in", door)] > 0
                # the counters are the source's own (a joined live stream may start on a damaged frame)
                assert before[0] <= out[("streamer_stream_reconnects_total", door)] <= after[0]
                assert before[1] <= out[("streamer_stream_decode_errors_total", door)] <= after[1]
                assert out[("streamer_stream_dropped_frames_total", door)] >= 0
                for stage in ("detect", "embed", "match"):
                    key = (("stage", stage), ("stream", "door"))
                    assert out[("streamer_stream_stage_seconds_count", key)] == frames  # one scrape, one moment
                    assert out[("streamer_stream_stage_seconds_sum", key)] > 0
                assert out[("streamer_stream_latency_seconds_sum", door)] > 0
                assert out[("streamer_embed_faces_total", ())] >= out[("streamer_stream_faces_embedded_total", door)] > 0
                assert out[("process_cpu_seconds_total", ())] > 0
                assert state_metric(scraped, "door") == ["live"]
                with pytest.raises(urllib.error.HTTPError, match="404"):
                    await scrape(port, "/nothing")

                status = app.stream_status(app.sources["door"])  # what the ticker publishes over MQTT
                jsonschema.validate(stream_status_payload("door", status, 0.0), schema)
                assert status["state"] == "live" and status["detect_ms"] > 0 and status["identities"] >= 1

    asyncio.run(scenario())
