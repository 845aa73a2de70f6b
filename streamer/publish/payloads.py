"""JSON payloads of the feed. Their shapes are the schema files in `schemas/` (checked by the tests)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from memory.records import MemoryEvent, Node, NodeKind

from ..sources.state import SourceStats

SCHEMA_DIR = Path(__file__).with_name("schemas")
IDENTITY_KINDS = (NodeKind.FACE, NodeKind.VOICE)  # the nodes with a retained topic; episodic/semantic grow without bound
NODE_ID_KEYS = ("node", "from", "into")  # event data keys that name nodes, as an id or a list of ids


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def node_payload(node: Node, crop_jpeg: bytes | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": node.id,
        "kind": node.kind.value,
        "label": node.label,
        "status": node.status.value,
        "created": node.created_wall,
        "first_seen": node.first_seen_wall,
        "last_seen": node.last_seen_wall,
        "streams": list(node.streams),
        "observations": node.n_observations,
        "embeddings": node.n_embeddings,
    }
    if crop_jpeg is not None:
        payload["crop_jpeg"] = base64.b64encode(crop_jpeg).decode()
    return payload


def event_node_ids(event: MemoryEvent) -> set[int]:
    """The nodes an event changed, whose retained topics must follow."""
    if event.type == "node.forgotten":
        return event_removed_ids(event)
    ids: set[int] = set()
    for key in NODE_ID_KEYS:
        value = event.data.get(key)
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, int) and not isinstance(v, bool):
                ids.add(v)
    return ids


def event_removed_ids(event: MemoryEvent) -> set[int]:
    """The nodes an event removed (merged away, expired, forgotten), whose retained topics it clears."""
    if event.type == "node.forgotten":
        return {*event.data.get("nodes", []), *event.data.get("former", [])}
    if event.type == "node.merged":
        return {v for v in event.data.get("from", []) if isinstance(v, int)}
    if event.type == "node.expired" and isinstance(event.data.get("node"), int):
        return {event.data["node"]}
    return set()


def event_character_ids(event: MemoryEvent) -> set[int]:
    """The characters an event changed, whose retained topics must follow."""
    forgotten = event.type == "node.forgotten" and event.data.get("character") is not None
    return {event.data["character"]} if event.type == "character.updated" or forgotten else set()


def event_dissolved_ids(event: MemoryEvent) -> set[int]:
    """The characters an event dissolved (no faces and no voices left), whose retained topics it clears."""
    gone = event.type == "character.updated" and not event.data.get("faces") and not event.data.get("voices")
    return {event.data["character"]} if gone else event_character_ids(event) if event.type == "node.forgotten" else set()


def source_status(stats: SourceStats) -> dict[str, Any]:
    """A source's counters as the `status` argument of Publisher.publish_stream_status."""
    return {
        "state": stats.state.value,
        "fps_in": round(stats.fps_in, 2),
        "fps_analysed": round(stats.fps_sampled, 2),
        "frames_decoded": stats.frames_decoded,
        "dropped_frames": stats.dropped,
        "decode_errors": stats.decode_errors,
        "reconnects": stats.reconnects,
        "last_frame_time": stats.last_frame_wall,
        "last_error": stats.last_error,
        "audio": stats.audio_state.value,
        "audio_seconds": round(stats.audio_seconds, 1),
        "audio_dropped_seconds": round(stats.audio_dropped_seconds, 1),
        "audio_decode_errors": stats.audio_decode_errors,
    }


def stream_status_payload(stream: str, status: dict[str, Any], wall_time: float) -> dict[str, Any]:
    return {"stream": stream, "time": wall_time, **status}


def faces_payload(stream: str, faces: list[dict[str, Any]], wall_time: float) -> dict[str, Any]:
    return {"stream": stream, "time": wall_time, "faces": faces}
