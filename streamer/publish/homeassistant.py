"""Home Assistant's MQTT discovery (opt-in, `mqtt.homeassistant`): entities that appear by themselves.

- per camera: a sensor, the number of people present, with their names as attributes;
- per labelled person (a character, or a labelled face or voice tied to none): a presence binary
  sensor and a "last seen" timestamp sensor, one device per person.

Discovery configs are retained under `<homeassistant_prefix>/<component>/<node id>/<object id>/config`;
states are retained JSON under `<prefix>/homeassistant/...`, and every entity follows `<prefix>/status`
for availability. A person forgotten, merged away or folded into a character loses their entities:
an empty retained config is how discovery removes one. Those removals are decided from the events
themselves, so they happen even when the entity was announced before a restart.

Presence comes from person.appeared / person.left, as the memory announces them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from memory.records import MemoryEvent

from .feed import PersonState
from .payloads import event_node_ids
from .topics import Topics

Message = tuple[str, bytes, int, bool]  # topic, payload, qos, retain
ORIGIN = {"name": "live-memory-streamer"}


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


class HomeAssistant:
    def __init__(self, topics: Topics, discovery_prefix: str) -> None:
        self.topics = topics
        self.discovery = discovery_prefix
        self.node_id = re.sub(r"[^a-zA-Z0-9_-]", "_", topics.prefix)  # discovery's node id: one streamer
        self._present: dict[str, dict[int, str]] = {}  # stream -> node -> person key
        self._people: dict[str, PersonState] = {}  # labelled people announced in this session
        self._key_of: dict[int, str] = {}  # node -> person key, as last known
        self._cameras: set[str] = set()  # cameras announced in this session

    # --- topics ---------------------------------------------------------------------------------

    def _config_topic(self, component: str, object_id: str) -> str:
        return f"{self.discovery}/{component}/{self.node_id}/{object_id}/config"

    def camera_state_topic(self, stream: str) -> str:
        return f"{self.topics.prefix}/homeassistant/cameras/{stream}"

    def person_state_topic(self, key: str) -> str:
        return f"{self.topics.prefix}/homeassistant/people/{key}"

    def _common(self, unique: str, name: str, state_topic: str, device: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": name, "unique_id": f"{self.node_id}_{unique}", "object_id": f"{self.node_id}_{unique}",
            "state_topic": state_topic, "json_attributes_topic": state_topic, "availability_topic": self.topics.status,
            "payload_available": "online", "payload_not_available": "offline", "device": device, "origin": ORIGIN,
        }  # fmt: skip

    # --- cameras --------------------------------------------------------------------------------

    def camera(self, stream: str) -> list[Message]:
        """The camera's sensor, the first time a stream is met in this session."""
        if stream in self._cameras:
            return []
        self._cameras.add(stream)
        device = {"identifiers": [f"{self.node_id}_camera_{stream}"], "name": f"Camera {stream}", "model": "camera",
                  "manufacturer": ORIGIN["name"]}  # fmt: skip
        config = self._common(f"camera_{stream}_people", "People", self.camera_state_topic(stream), device) | {
            "value_template": "{{ value_json.count }}", "unit_of_measurement": "people", "state_class": "measurement",
            "icon": "mdi:account-group",
        }  # fmt: skip
        return [(self._config_topic("sensor", f"camera_{stream}_people"), _json(config), 1, True), self._camera_state(stream)]

    def _camera_state(self, stream: str) -> Message:
        keys = sorted(set(self._present.get(stream, {}).values()))
        names = sorted(self._name(k) for k in keys)
        return self.camera_state_topic(stream), _json({"count": len(keys), "names": names, "people": keys}), 1, True

    def _name(self, key: str) -> str:
        person = self._people.get(key)
        return person.label if person is not None and person.label else f"<{key}>"

    # --- people ---------------------------------------------------------------------------------

    def _person_configs(self, person: PersonState) -> list[Message]:
        device = {"identifiers": [f"{self.node_id}_{person.key}"], "name": person.label, "model": "person",
                  "manufacturer": ORIGIN["name"]}  # fmt: skip
        topic = self.person_state_topic(person.key)
        presence = self._common(f"{person.key}_presence", "Presence", topic, device) | {
            "device_class": "presence", "value_template": "{{ value_json.present }}", "payload_on": "ON", "payload_off": "OFF",
        }  # fmt: skip
        last_seen = self._common(f"{person.key}_last_seen", "Last seen", topic, device) | {
            "device_class": "timestamp", "value_template": "{{ value_json.last_seen }}",
        }  # fmt: skip
        return [(self._config_topic("binary_sensor", f"{person.key}_presence"), _json(presence), 1, True),
                (self._config_topic("sensor", f"{person.key}_last_seen"), _json(last_seen), 1, True)]  # fmt: skip

    def _person_state(self, person: PersonState) -> Message:
        streams = sorted(s for s, nodes in self._present.items() if person.key in nodes.values())
        payload = {"present": "ON" if streams else "OFF", "streams": streams, "last_seen": _iso(person.last_seen),
                   "label": person.label}  # fmt: skip
        return self.person_state_topic(person.key), _json(payload), 1, True

    def _remove(self, key: str) -> list[Message]:
        """Empty retained configs (and state): Home Assistant removes the entities."""
        self._people.pop(key, None)
        return [(self._config_topic("binary_sensor", f"{key}_presence"), b"", 1, True),
                (self._config_topic("sensor", f"{key}_last_seen"), b"", 1, True), (self.person_state_topic(key), b"", 1, True)]  # fmt: skip

    # --- what the publisher calls ---------------------------------------------------------------

    @staticmethod
    def nodes_of(events: list[MemoryEvent]) -> set[int]:
        """Every node a batch names, whose person the publisher looks up for `events`."""
        ids: set[int] = set()
        for e in events:
            d = e.data
            ids |= event_node_ids(e)
            if e.type == "character.updated":
                ids |= {*d["faces"], *d["voices"]}
            elif e.type == "node.forgotten":
                ids |= {*d["nodes"], *d["former"]}
        return ids

    def connected(self, people: dict[int, PersonState | None]) -> list[Message]:
        """A new session: every labelled person's entities and state, every known camera again."""
        self._people.clear()
        cameras, self._cameras = self._cameras, set()
        out = self._update(people, set())
        for stream in sorted(cameras | self._present.keys()):
            out += self.camera(stream)
        return out

    def events(self, events: list[MemoryEvent], people: dict[int, PersonState | None]) -> list[Message]:
        """Messages after a batch of events; `people` holds the person of every node they name, as of now."""
        removed: set[str] = set()
        cameras: set[str] = set()
        for e in events:
            d = e.data
            if e.type == "person.appeared" and e.stream is not None:
                person = people.get(d["node"])
                if person is not None:
                    self._present.setdefault(e.stream, {})[d["node"]] = person.key
                cameras.add(e.stream)
            elif e.type == "person.left" and e.stream is not None:
                self._present.get(e.stream, {}).pop(d["node"], None)
                cameras.add(e.stream)
            elif e.type == "node.merged":
                for gone in d["from"]:
                    removed |= self._lose(gone, cameras)
            elif e.type == "node.forgotten":
                for gone in (*d["nodes"], *d["former"]):
                    removed |= self._lose(gone, cameras)
                if d.get("character") is not None:
                    removed.add(f"character_{d['character']}")
            elif e.type == "character.updated":
                # its nodes are no longer lone people; a dissolved character is no person at all
                removed |= {f"face_{n}" for n in d["faces"]} | {f"voice_{n}" for n in d["voices"]}
                if not d["faces"] and not d["voices"]:
                    removed.add(f"character_{d['character']}")
        out: list[Message] = []
        for stream in sorted(cameras):
            out += self.camera(stream)
        return out + self._update(people, removed, cameras)

    def _lose(self, node: int, cameras: set[str]) -> set[str]:
        """A node that is no more (merged away, forgotten): out of every camera; its lone person's key."""
        for stream, nodes in self._present.items():
            if nodes.pop(node, None) is not None:
                cameras.add(stream)
        return {f"face_{node}", f"voice_{node}"}

    def _update(self, people: dict[int, PersonState | None], removed: set[str], cameras: Iterable[str] = ()) -> list[Message]:
        changed_cameras = set(cameras)
        for node, person in people.items():
            old = self._key_of.get(node)
            if person is None:
                self._key_of.pop(node, None)
            else:
                self._key_of[node] = person.key
            if old is not None and (person is None or old != person.key):
                removed.add(old)  # the node went, or joined a character: its old person may be gone
                for stream, nodes in self._present.items():
                    if node in nodes:
                        if person is None:
                            del nodes[node]
                        else:
                            nodes[node] = person.key
                        changed_cameras.add(stream)
        current = {p.key: p for p in people.values() if p is not None}
        still = set(self._key_of.values())
        out: list[Message] = []
        for key in sorted(k for k in removed if k not in still and k not in current):
            out += self._remove(key)
        for key, person in sorted(current.items()):
            if not person.label:
                if key in self._people:  # (labels are never taken back today, but a person without one has no entities)
                    out += self._remove(key)
                continue
            if key not in self._people:
                out += self._person_configs(person)
            self._people[key] = person
            out.append(self._person_state(person))
        keys_in = {k for s in changed_cameras for k in self._present.get(s, {}).values()}
        for key in sorted(keys_in - current.keys()):  # presence changed for people not in this batch's lookup
            if key in self._people:
                out.append(self._person_state(self._people[key]))
        out += [self._camera_state(s) for s in sorted(changed_cameras) if s in self._cameras]
        return out
