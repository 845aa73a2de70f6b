"""`streamer tail`: subscribe to the feed and print one line per message (or one JSON object with --json)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from typing import Any, TextIO

from .config import MqttConfig
from .errors import PublishError
from .publish.client import Backoff, Connection, describe_failure
from .publish.mqtt_client import aiomqtt
from .publish.topics import Topics

log = logging.getLogger(__name__)


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def _decode(payload: bytes) -> Any:
    """The payload as JSON where it is JSON, else as text; None for an empty (cleared) payload."""
    if not payload:
        return None
    text = payload.decode(errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def json_line(topic: str, payload: bytes, retain: bool) -> str:
    return json.dumps({"topic": topic, "retain": retain, "payload": _decode(payload)}, ensure_ascii=False)


class TailFormatter:
    """Turns messages into readable lines; remembers node kinds and labels from the retained node
    topics (sent first on subscribe) so that events can say `face_3 (Alice)`."""

    def __init__(self, topics: Topics) -> None:
        self.topics = topics
        self._nodes: dict[int, dict[str, Any]] = {}

    def line(self, topic: str, payload: bytes, now: float) -> str:
        rel = self.topics.relative(topic)
        body = _decode(payload)
        parts = rel.split("/")
        if parts[:2] == ["memory", "events"] and isinstance(body, dict):
            return f"{_clock(body.get('time', now))} {rel} {self._event(body)}"
        if parts[:2] == ["memory", "nodes"] and len(parts) == 3 and parts[2].isdigit():
            return f"{_clock(now)} {rel} {self._node(int(parts[2]), body)}"
        if parts[0] == "streams" and len(parts) == 3 and isinstance(body, dict):
            text = self._faces(body) if parts[2] == "faces" else self._stream_status(body)
            return f"{_clock(now)} {rel} {text}"
        text = "(cleared)" if body is None else json.dumps(body) if isinstance(body, (dict, list)) else str(body)
        return f"{_clock(now)} {rel} {text}"

    def _name(self, node_id: Any) -> str:
        node = self._nodes.get(node_id) if isinstance(node_id, int) else None
        if node is None:
            return f"node_{node_id}"
        label = f" ({node['label']})" if node.get("label") else ""
        return f"{node.get('kind', 'node')}_{node_id}{label}"

    def _names(self, ids: Any) -> str:
        return ", ".join(self._name(i) for i in (ids if isinstance(ids, list) else [ids]))

    def _event(self, e: dict[str, Any]) -> str:
        kind, node = e.get("type", "?"), e.get("node")
        if isinstance(node, int) and "kind" in e:
            self._nodes.setdefault(node, {})["kind"] = e["kind"]
        if kind == "node.labelled" and isinstance(node, int):
            self._nodes.setdefault(node, {})["label"] = e.get("label")
        if kind in ("node.merged", "node.split"):
            what = f"{self._names(e.get('from'))} into {self._names(e.get('into'))}"
        elif kind == "node.forgotten":
            what = self._names(e.get("nodes"))
        elif kind == "clip.closed":
            what = str(e.get("text", ""))
        else:
            what = self._name(node) if node is not None else ""
        where = f" in {e['stream']}" if e.get("stream") else ""
        return f"#{e.get('seq')} {kind} {what}{where}".replace("  ", " ")

    def _node(self, node_id: int, body: Any) -> str:
        if not isinstance(body, dict):
            self._nodes.pop(node_id, None)
            return "(cleared)"
        self._nodes[node_id] = body
        streams = ", ".join(body.get("streams") or []) or "-"
        return f"{self._name(node_id)} {body.get('status')}, {body.get('observations')} observations, in {streams}"

    @staticmethod
    def _stream_status(s: dict[str, Any]) -> str:
        text = f"{s.get('state')} {s.get('fps_in', 0):.1f}/{s.get('fps_analysed', 0):.1f} fps"
        text += f", {s.get('dropped_frames', 0)} dropped"
        return text + (f", error: {s['last_error']}" if s.get("last_error") else "")

    def _faces(self, f: dict[str, Any]) -> str:
        faces = f.get("faces") or []
        return ", ".join(
            f"track {x.get('track')} {self._name(x['node']) if x.get('node') is not None else '?'}" for x in faces
        )


async def tail(cfg: MqttConfig, *, as_json: bool, out: TextIO = sys.stdout) -> None:
    """Prints the feed until cancelled; reconnects after a drop. Raises PublishError (one line) when
    the first connection fails, e.g. no streamer with an embedded broker is running."""
    connection = Connection.from_config(cfg)
    formatter = TailFormatter(Topics(cfg.prefix))
    backoff, connected_once = Backoff(), False
    while True:
        try:
            async with connection.client() as client:
                await client.subscribe(formatter.topics.everything, qos=1)
                connected_once = True
                backoff.reset()
                async for msg in client.messages:
                    payload = msg.payload if isinstance(msg.payload, bytes) else str(msg.payload or "").encode()
                    topic = str(msg.topic)
                    line = json_line(topic, payload, msg.retain) if as_json else formatter.line(topic, payload, time.time())
                    out.write(line + "\n")
                    out.flush()
        except aiomqtt.MqttError as exc:
            message, fatal = describe_failure(exc, connection.address)
            if fatal or not connected_once:
                raise PublishError(message) from None
            delay = backoff.next()
            log.warning("%s; retrying in %.1f s", message, delay)
            await asyncio.sleep(delay)
