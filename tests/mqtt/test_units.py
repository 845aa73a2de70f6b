"""The feed's pure parts: addresses, topics, payloads, schemas, rate limit, tail lines. No broker."""

from __future__ import annotations

import base64
import json
import time

import jsonschema
import pytest

from memory.records import MemoryEvent, Node, NodeKind, NodeStatus
from streamer.config import ConfigError, MqttConfig
from streamer.publish.client import Backoff, Connection, broker_address, redact_url
from streamer.publish.live import FaceRateLimit, LiveBuffer
from streamer.publish.payloads import (
    event_character_ids,
    event_dissolved_ids,
    event_node_ids,
    faces_payload,
    node_payload,
    source_status,
    stream_status_payload,
)
from streamer.sources.state import SourceState, SourceStats
from streamer.publish.topics import Topics
from streamer.tail import TailFormatter, json_line

from .helpers import SCHEMAS

pytestmark = pytest.mark.timeout(30)


def _event(seq: int, type_: str, stream: str | None = "door", **data: object) -> MemoryEvent:
    return MemoryEvent(seq, f"{seq:032x}", type_, 1_700_000_000.0 + seq, stream, dict(data))


def _node(**kw: object) -> Node:
    fields = dict(
        id=3, kind=NodeKind.FACE, status=NodeStatus.CONFIRMED, label="Alice", created_wall=1.0,
        first_seen_wall=1.0, last_seen_wall=2.0, n_observations=12, n_embeddings=5, streams=["door"],
    )  # fmt: skip
    fields.update(kw)
    return Node(**fields)  # type: ignore[arg-type]


def test_url_forms_and_credentials() -> None:
    a = broker_address(MqttConfig(url="mqtt://bob:s%40cret@broker.lan:1884"))
    assert (a.host, a.port, a.tls, a.username, a.password) == ("broker.lan", 1884, False, "bob", "s@cret")
    b = broker_address(MqttConfig(url="mqtts://broker.lan", username="amy", password="pw"))
    assert (b.port, b.tls, b.username, b.password) == (8883, True, "amy", "pw")
    c = broker_address(MqttConfig(url=None, embedded_port=2883))
    assert (c.host, c.port, c.tls) == ("127.0.0.1", 2883, False)


def test_password_never_in_text() -> None:
    a = broker_address(MqttConfig(url="mqtt://bob:hunter2@h:1"))
    assert "hunter2" not in str(a) and "hunter2" not in repr(a)
    assert str(a) == "mqtt://bob@h:1"
    assert redact_url("mqtt://bob:hunter2@h:1") == "mqtt://bob:***@h:1"
    with pytest.raises(ConfigError) as e:
        broker_address(MqttConfig(url="http://bob:hunter2@h:1"))
    assert "hunter2" not in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "cfg",
    [
        MqttConfig(url="mqtt://h:99999"),
        MqttConfig(url="tcp://h:1883"),
        MqttConfig(url="mqtt://h:1883/path"),
        MqttConfig(url="mqtt://h", ca_file="ca.pem"),  # TLS files need mqtts://
        MqttConfig(url="mqtts://h", ca_file="/nonexistent/ca.pem"),
    ],
)
def test_bad_settings_are_config_errors(cfg: MqttConfig) -> None:
    with pytest.raises(ConfigError):
        Connection.from_config(cfg)


@pytest.mark.parametrize("prefix", ["", "a/#", "a/+/b", "/a", "a/"])
def test_prefix_must_be_a_plain_topic(prefix: str) -> None:
    with pytest.raises(ValueError):
        MqttConfig(prefix=prefix)


def test_topics() -> None:
    t = Topics("home/streamer")
    assert t.status == "home/streamer/status"
    assert t.stream_status("door") == "home/streamer/streams/door/status"
    assert t.faces("door") == "home/streamer/streams/door/faces"
    assert t.events == "home/streamer/memory/events"
    assert t.node(7) == "home/streamer/memory/nodes/7"
    assert t.relative(t.node(7)) == "memory/nodes/7" and t.relative("other/x") == "other/x"


def test_backoff_doubles_to_a_cap_and_resets() -> None:
    b = Backoff(0.5, 3.0)
    assert [b.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    b.reset()
    assert b.next() == 0.5


def test_schemas_are_valid_json_schema() -> None:
    for s in SCHEMAS.values():
        jsonschema.Draft202012Validator.check_schema(s)


def test_node_payload_matches_schema_and_has_no_vectors() -> None:
    p = node_payload(_node())
    jsonschema.validate(p, SCHEMAS["node"])
    assert p["label"] == "Alice" and p["streams"] == ["door"] and "crop_jpeg" not in p
    with_crop = node_payload(_node(label=None), b"\xff\xd8jpeg")
    jsonschema.validate(with_crop, SCHEMAS["node"])
    assert base64.b64decode(with_crop["crop_jpeg"]) == b"\xff\xd8jpeg"
    with pytest.raises(jsonschema.ValidationError):  # gone nodes are cleared, never published
        jsonschema.validate(node_payload(_node(status=NodeStatus.MERGED)), SCHEMAS["node"])


def test_event_payloads_match_schema() -> None:
    for e in [
        _event(1, "node.created", node=3, kind="face"),
        _event(2, "node.merged", None, **{"from": [4, 5], "into": 3}),
        _event(3, "node.split", None, **{"from": 3, "into": [6, 7]}),
        _event(4, "clip.closed", clip=0, start=1.0, end=2.0, text="<face_3> was seen in camera 'door'", nodes=[3], memory=9,
               memories=[{"id": 9, "text": "<face_3> was seen in camera 'door'", "nodes": [3]},
                         {"id": 10, "text": '<character_1> says: "hi"', "nodes": [4]}]),
        _event(5, "person.appeared", node=3),
        _event(6, "character.updated", None, character=1, faces=[3], voices=[4], label="Alice"),
        _event(7, "character.updated", None, character=1, faces=[], voices=[], label=None),
    ]:
        jsonschema.validate(e.to_json_dict(), SCHEMAS["event"])
    for bad in (_event(8, "node.merged", into=3), _event(9, "character.updated", None, faces=[3], voices=[4], label=None)):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad.to_json_dict(), SCHEMAS["event"])


def test_character_payloads_and_topics() -> None:
    state = {"id": 2, "label": None, "faces": [3], "voices": [4], "first_seen": 1.0, "last_seen": 2.0, "streams": ["door"]}
    jsonschema.validate(state, SCHEMAS["character"])
    with pytest.raises(jsonschema.ValidationError):  # a dissolved character is cleared, never published empty
        jsonschema.validate({**state, "voices": []}, SCHEMAS["character"])
    assert Topics("home").character(2) == "home/memory/characters/2"
    updated = _event(1, "character.updated", None, character=2, faces=[3], voices=[4], label=None)
    dissolved = _event(2, "character.updated", None, character=2, faces=[], voices=[], label=None)
    assert event_character_ids(updated) == event_character_ids(dissolved) == {2}
    assert event_dissolved_ids(updated) == set() and event_dissolved_ids(dissolved) == {2}
    assert event_node_ids(updated) == set()  # character ids are not node ids


def test_event_node_ids() -> None:
    assert event_node_ids(_event(1, "node.merged", **{"from": [4, 5], "into": 3})) == {3, 4, 5}
    assert event_node_ids(_event(2, "person.left", node=9)) == {9}
    assert event_node_ids(_event(3, "clip.closed", text="x")) == set()


def test_live_payloads_match_schema() -> None:
    busy = SourceStats(state=SourceState.LIVE, frames_decoded=100, dropped=1, decode_errors=2, reconnects=3,
                       last_frame_wall=time.time(), last_error="eof", fps_in=25.0, fps_sampled=5.0)  # fmt: skip
    for stats in (SourceStats(), busy):
        jsonschema.validate(stream_status_payload("door", source_status(stats), time.time()), SCHEMAS["stream_status"])
    faces = [{"track": 7, "bbox": [1, 2, 30, 40], "node": None, "det_score": 0.9}]
    jsonschema.validate(faces_payload("door", faces, time.time()), SCHEMAS["faces"])


def test_face_rate_limit_per_track() -> None:
    limit = FaceRateLimit(max_hz=2.0)
    a, b = {"track": 1, "bbox": [0, 0, 1, 1], "node": None}, {"track": 2, "bbox": [0, 0, 1, 1], "node": None}
    assert limit.select("door", [a, b], now=0.0) == [a, b]
    assert limit.select("door", [a, b], now=0.2) == []
    named = {**a, "node": 5}
    assert limit.select("door", [named, b], now=0.3) == [named]  # a new identity goes out at once
    assert limit.select("door", [named, b], now=0.55) == [b]
    assert limit.select("hall", [a], now=0.55) == [a]  # streams are limited apart


def test_live_buffer_latest_status_wins_and_faces_are_bounded() -> None:
    buf = LiveBuffer()
    buf.put_status("door", b"1")
    buf.put_status("door", b"2")
    assert buf.take_status() == [("door", b"2")] and buf.take_status() == []
    buf.resend_all_status()
    assert buf.take_status() == [("door", b"2")]
    for i in range(1000):
        buf.put_faces("door", str(i).encode())
    faces = buf.take_faces()
    assert 0 < len(faces) < 1000 and faces[-1] == ("door", b"999")


def test_tail_lines() -> None:
    f = TailFormatter(Topics("streamer"))
    node = json.dumps(node_payload(_node(label=None))).encode()
    assert f.line("streamer/memory/nodes/3", node, 0.0).endswith("memory/nodes/3 face_3 confirmed, 12 observations, in door")
    ev = json.dumps(_event(42, "person.appeared", node=3).to_json_dict()).encode()
    assert f.line("streamer/memory/events", ev, 0.0).endswith(" memory/events #42 person.appeared face_3 in door")
    labelled = json.dumps(_event(43, "node.labelled", None, node=3, label="Alice").to_json_dict()).encode()
    f.line("streamer/memory/events", labelled, 0.0)
    merged = json.dumps(_event(44, "node.merged", None, **{"from": [4], "into": 3}).to_json_dict()).encode()
    assert f.line("streamer/memory/events", merged, 0.0).endswith("#44 node.merged node_4 into face_3 (Alice)")
    assert f.line("streamer/memory/nodes/4", b"", 0.0).endswith("memory/nodes/4 (cleared)")
    assert f.line("streamer/status", b"online", 0.0).endswith(" status online")
    status = json.dumps({"stream": "door", "time": 0, "state": "live", "fps_in": 25, "fps_analysed": 5}).encode()
    assert f.line("streamer/streams/door/status", status, 0.0).endswith("live 25.0/5.0 fps, 0 dropped")
    faces = json.dumps(faces_payload("door", [{"track": 7, "bbox": [0, 0, 1, 1], "node": 3}], 0.0)).encode()
    assert f.line("streamer/streams/door/faces", faces, 0.0).endswith("track 7 face_3 (Alice)")
    assert json.loads(json_line("streamer/status", b"online", True)) == {
        "topic": "streamer/status", "retain": True, "payload": "online"}  # fmt: skip
