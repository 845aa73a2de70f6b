"""The feed's topic names, in one place (documented in the README, "MQTT feed")."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    prefix: str

    @property
    def status(self) -> str:
        return f"{self.prefix}/status"

    @property
    def events(self) -> str:
        return f"{self.prefix}/memory/events"

    @property
    def everything(self) -> str:
        return f"{self.prefix}/#"

    def stream_status(self, stream: str) -> str:
        return f"{self.prefix}/streams/{stream}/status"

    def faces(self, stream: str) -> str:
        return f"{self.prefix}/streams/{stream}/faces"

    def node(self, node_id: int) -> str:
        return f"{self.prefix}/memory/nodes/{node_id}"

    def character(self, character_id: int) -> str:
        return f"{self.prefix}/memory/characters/{character_id}"

    def relative(self, topic: str) -> str:
        """`streamer/memory/events` -> `memory/events`; topics outside the prefix are returned whole."""
        head = self.prefix + "/"
        return topic[len(head) :] if topic.startswith(head) else topic
